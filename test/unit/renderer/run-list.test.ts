// The runs list's filters, sorting and durations (issue 15.9: date and duration, sorting,
// filtering by status / method / model / dataset, tags).
import { describe, expect, it } from 'vitest';
import type { RunView } from '../../../contract/index.ts';
import { DEFAULT_SORT, NO_FILTER, filterChoices, filterRuns, isFiltered, runDurationSeconds, sortRuns } from '../../../renderer/src/lib/run-list.ts';

const NOW = Date.parse('2026-12-04T12:00:00Z');

function run(id: number, over: Partial<RunView>): RunView {
  return {
    id,
    name: `run-${id}`,
    kind: 'local',
    method: 'ttrl',
    model: 'tiny-chars',
    dataset: 'arith',
    datasetId: 1,
    status: 'completed',
    error: null,
    createdAt: `2026-12-0${id}T10:00:00.000Z`,
    startedAt: null,
    finishedAt: null,
    currentStep: null,
    steps: 10,
    config: {},
    progress: null,
    keyMetric: { name: 'val/maj@16', value: null, best: null, bestStep: null },
    reviewCount: 0,
    tags: [],
    lastStepAt: null,
    stepsLostOnResume: null,
    ...over,
  };
}

const RUNS = [
  run(1, { name: 'Baseline', startedAt: '2026-12-01T10:00:00Z', finishedAt: '2026-12-01T10:02:05Z', keyMetric: { name: 'val/maj@16', value: 0.5, best: 0.5, bestStep: 10 }, tags: ['baseline'] }),
  run(2, { name: 'srt-long', method: 'srt', status: 'running', startedAt: '2026-12-04T11:59:00Z', tags: ['sweep'] }),
  run(3, { name: 'paused one', status: 'paused', model: '/models/qwen', startedAt: '2026-12-03T10:00:00Z', lastStepAt: '2026-12-03T10:00:30Z', reviewCount: 4, keyMetric: { name: 'val/maj@16', value: 0.75, best: 0.75, bestStep: 2 }, tags: ['baseline', 'sweep'] }),
  run(4, { name: 'never started', status: 'paused', dataset: 'gsm8k' }),
];

describe('run durations', () => {
  it('count from the first start to the finish, to now while training, to the last step while paused', () => {
    expect(runDurationSeconds(RUNS[0], NOW)).toBe(125);
    expect(runDurationSeconds(RUNS[1], NOW)).toBe(60);
    expect(runDurationSeconds(RUNS[2], NOW)).toBe(30);
    expect(runDurationSeconds(RUNS[3], NOW)).toBeNull();
  });
});

describe('filters', () => {
  it('by name or id, status, method, model, dataset and tag, together', () => {
    const ids = (f: Partial<typeof NO_FILTER>) => filterRuns(RUNS, { ...NO_FILTER, ...f }).map((r) => r.id);
    expect(ids({})).toEqual([1, 2, 3, 4]);
    expect(ids({ text: 'BASE' })).toEqual([1]);
    expect(ids({ text: '#3' })).toEqual([3]);
    expect(ids({ status: 'paused' })).toEqual([3, 4]);
    expect(ids({ method: 'srt' })).toEqual([2]);
    expect(ids({ model: '/models/qwen' })).toEqual([3]);
    expect(ids({ dataset: 'gsm8k' })).toEqual([4]);
    expect(ids({ tag: 'baseline' })).toEqual([1, 3]);
    expect(ids({ tag: 'sweep', status: 'paused' })).toEqual([3]);
    expect(isFiltered(NO_FILTER)).toBe(false);
    expect(isFiltered({ ...NO_FILTER, tag: 'sweep' })).toBe(true);
  });

  it('offer the values the runs have', () => {
    expect(filterChoices(RUNS)).toEqual({ methods: ['srt', 'ttrl'], models: ['/models/qwen', 'tiny-chars'], datasets: ['arith', 'gsm8k'], tags: ['baseline', 'sweep'] });
  });
});

describe('sorting', () => {
  const ids = (key: (typeof DEFAULT_SORT)['key'], descending: boolean) => sortRuns(RUNS, { key, descending }, NOW).map((r) => r.id);
  it('by date (newest first by default), name, duration, status, key metric and reviews; runs without a value last', () => {
    expect(ids(DEFAULT_SORT.key, DEFAULT_SORT.descending)).toEqual([4, 3, 2, 1]);
    expect(ids('created', false)).toEqual([1, 2, 3, 4]);
    expect(ids('name', false)).toEqual([1, 4, 3, 2]);
    expect(ids('duration', true)).toEqual([1, 2, 3, 4]);
    expect(ids('duration', false)).toEqual([3, 2, 1, 4]);
    expect(ids('status', false)).toEqual([2, 4, 3, 1]);
    expect(ids('metric', true)).toEqual([3, 1, 4, 2]);
    expect(ids('reviews', true)).toEqual([3, 4, 2, 1]);
  });
});
