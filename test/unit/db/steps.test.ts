// Runs and steps: recordStep writes a step whole or not at all, refuses a step twice, and
// everything it wrote reads back (blobs included); metrics queries, rollback for resume,
// run status and reviews.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blobToFloat32, float32ToBlob } from '../../../main/db/blobs.ts';
import { DatabaseError, type ExperimentDb, openDatabase } from '../../../main/db/database.ts';
import { importDataset } from '../../../main/db/datasets.ts';
import { createReview, deleteReview, getReview, listReviews, updateReview } from '../../../main/db/reviews.ts';
import { createRun, deleteRun, getRun, listRuns, updateRunStatus } from '../../../main/db/runs.ts';
import {
  addAlert,
  deleteStepsAfter,
  getStep,
  lastCompletedStep,
  latestCheckpoint,
  listAlerts,
  listCheckpoints,
  listSteps,
  metricKeys,
  queryMetrics,
  recordStep,
  rolloutsAtStep,
  samplesOfRollout,
  stepTimeline,
} from '../../../main/db/steps.ts';
import { METRIC_KEYS, makeStep } from './step-fixture.ts';

let db: ExperimentDb;
let runId: number;
beforeEach(() => {
  db = openDatabase(':memory:');
  runId = createRun(db, { name: 'r', method: 'ttrl', model: 'tiny-arith', dataset: 'arithmetic', config: { steps: 10 } }).id;
});
afterEach(() => db.close());

const count = (table: string): number => (db.sql.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('blobs', () => {
  it('round-trips float32 arrays, including views into larger buffers and special values', () => {
    const big = new Float32Array([9, 1.5, -2.25, NaN, Infinity, -0, 3.4e38, 9]);
    const view = big.subarray(1, 7);
    const back = blobToFloat32(float32ToBlob(view));
    expect(Array.from(back!)).toEqual(Array.from(view));
    expect(float32ToBlob(view).byteLength).toBe(24);
    expect(Array.from(blobToFloat32(float32ToBlob([1, 2]))!)).toEqual([1, 2]);
    expect(blobToFloat32(null)).toBeNull();
    expect(() => blobToFloat32(Buffer.alloc(5))).toThrow(/multiple of 4/);
  });
});

describe('recordStep', () => {
  it('writes a whole step and reads it back', () => {
    const rec = makeStep(0, 3, 4, 16);
    recordStep(db, runId, 0, {
      ...rec,
      checkpoint: { kind: 'best', path: '/ck/best', metric: 0.5 },
      alerts: [{ kind: 'collapse', message: 'entropy falling' }],
    });
    const detail = getStep(db, runId, 0)!;
    expect(detail.metrics).toEqual(rec.metrics);
    expect(detail.rollouts).toHaveLength(3);
    const [r] = detail.rollouts;
    expect(r).toMatchObject({ groupIdx: 0, itemIdx: 0, pseudoLabel: '0', majorityRatio: 0.75, labelCorrect: true, labeled: true });
    expect(r.voteCounts).toEqual({ '0': 1 });
    expect(r.samples).toHaveLength(4);
    const s = r.samples[1];
    const src = rec.rollouts![0].samples![1];
    expect(s).toMatchObject({ idx: 1, text: src.text, extractedAnswer: '0', reward: 1, advantage: 0.2, usedForTraining: false });
    expect(s.logprobs).toEqual(src.logprobs);
    expect(s.entropies).toEqual(src.entropies);
    expect(detail.checkpoints).toMatchObject([{ kind: 'best', path: '/ck/best', metric: 0.5 }]);
    expect(detail.alerts).toMatchObject([{ kind: 'collapse', message: 'entropy falling', step: 0 }]);
    expect(getRun(db, runId)).toMatchObject({ currentStep: 0, bestMetric: 0.5, bestStep: 0 });
    expect(getStep(db, runId, 1)).toBeUndefined();
  });

  it('keeps when each step was recorded and the tokens it processed (the charts\' wall-time and tokens axes)', () => {
    const before = Date.now();
    recordStep(db, runId, 0, { metrics: { 'val/maj@4': 0.5 } });
    recordStep(db, runId, 1, { ...makeStep(1), tokens: 1234 });
    recordStep(db, runId, 2, { ...makeStep(2), tokens: 999 });
    const timeline = stepTimeline(db, runId);
    expect(timeline.map((t) => [t.step, t.tokens])).toEqual([[0, null], [1, 1234], [2, 999]]);
    for (const t of timeline) {
      expect(t.recordedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Date.parse(t.recordedAt)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(t.recordedAt)).toBeLessThanOrEqual(Date.now() + 1000);
    }
    expect(stepTimeline(db, runId, 1).map((t) => t.step)).toEqual([2]);
  });

  it('refuses a step that is already recorded, and keeps the first', () => {
    recordStep(db, runId, 0, makeStep(0));
    expect(() => recordStep(db, runId, 0, makeStep(0))).toThrow(expect.objectContaining({ code: 'STEP_EXISTS' }));
    expect(count('steps')).toBe(1);
    expect(count('rollouts')).toBe(4);
    expect(count('samples')).toBe(32);
    expect(count('metrics')).toBe(METRIC_KEYS.length);
    expect(() => recordStep(db, 999, 0, {})).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => recordStep(db, runId, -1, {})).toThrow(DatabaseError);
  });

  it('leaves nothing of a step when an error is thrown mid-step', () => {
    recordStep(db, runId, 0, makeStep(0));
    const before = ['steps', 'metrics', 'rollouts', 'samples', 'checkpoints', 'alerts'].map(count);
    const rec = makeStep(1);
    // The third group's fifth sample throws while it is being written: metrics, two whole
    // groups and part of a third are already in the transaction by then.
    Object.defineProperty(rec.rollouts![2].samples![4], 'text', {
      get() {
        throw new Error('tokenizer exploded');
      },
    });
    expect(() => recordStep(db, runId, 1, { ...rec, checkpoint: { kind: 'last', path: '/ck' } })).toThrow('tokenizer exploded');
    // A constraint failure at the very end (an unknown checkpoint kind) rolls back the same way.
    const bad = { ...makeStep(1), checkpoint: { kind: 'middle' as 'last', path: '/x' } };
    expect(() => recordStep(db, runId, 1, bad)).toThrow(DatabaseError);
    expect(['steps', 'metrics', 'rollouts', 'samples', 'checkpoints', 'alerts'].map(count)).toEqual(before);
    expect(lastCompletedStep(db, runId)).toBe(0);
    expect(getRun(db, runId)?.currentStep).toBe(0);
    // And the step can then be written properly.
    recordStep(db, runId, 1, makeStep(1));
    expect(listSteps(db, runId)).toEqual([0, 1]);
  });

  it('answers metrics queries by keys and step range, and rollouts and samples by step', () => {
    for (let s = 0; s < 6; s++) {
      const metrics = { ...makeStep(s).metrics, 'val/avg@16': s === 3 ? NaN : s };
      recordStep(db, runId, s, { ...makeStep(s, 2, 3, 4), metrics });
    }
    expect(lastCompletedStep(db, runId)).toBe(5);
    expect(metricKeys(db, runId)).toEqual([...METRIC_KEYS, 'val/avg@16'].sort());
    const pts = queryMetrics(db, runId, { keys: ['actor/lr', 'val/avg@16'], fromStep: 2, toStep: 4 });
    expect(pts.map((p) => `${p.key}@${p.step}`)).toEqual(
      ['actor/lr@2', 'actor/lr@3', 'actor/lr@4', 'val/avg@16@2', 'val/avg@16@3', 'val/avg@16@4'],
    );
    expect(pts[4].value).toBeNaN();
    expect(queryMetrics(db, runId)).toHaveLength(6 * (METRIC_KEYS.length + 1));
    expect(queryMetrics(db, runId, { keys: [] })).toEqual([]);
    const groups = rolloutsAtStep(db, runId, 4);
    expect(groups.map((g) => g.prompt)).toEqual(['step 4 prompt 0: what is 0 + 4?', 'step 4 prompt 1: what is 1 + 4?']);
    expect(samplesOfRollout(db, groups[1].id).map((s) => s.extractedAnswer)).toEqual(['0', '5', '5']);
  });

  it('rolls a run back to a checkpoint so a resume can write the later steps again', () => {
    const val = (step: number, value: number) => ({ ...makeStep(step), metrics: { ...makeStep(step).metrics, 'val/maj@16': value } });
    const first = [{ kind: 'best', path: '/b0', metric: 0.2 }, { kind: 'last', path: '/l0' }] as const;
    recordStep(db, runId, 0, { ...val(0, 0.2), checkpoints: first });
    recordStep(db, runId, 1, makeStep(1));
    const best = { kind: 'best', path: '/b2', metric: 0.4 } as const;
    recordStep(db, runId, 2, { ...val(2, 0.4), checkpoint: best, alerts: [{ kind: 'k', message: 'm' }] });
    addAlert(db, runId, 'note', 'outside any step');
    expect(latestCheckpoint(db, runId, 'last')?.step).toBe(0);
    expect(getRun(db, runId)).toMatchObject({ bestStep: 2, bestMetric: 0.4, currentStep: 2 });
    expect(deleteStepsAfter(db, runId, 0, 'val/maj@16')).toBe(2);
    expect(listSteps(db, runId)).toEqual([0]);
    expect(getRun(db, runId)).toMatchObject({ bestStep: 0, bestMetric: 0.2, currentStep: 0 });
    expect(listCheckpoints(db, runId).map((c) => c.path)).toEqual(['/b0', '/l0']);
    expect(listAlerts(db, runId).map((a) => a.kind)).toEqual(['note']);
    expect(count('rollouts')).toBe(4);
    expect(count('samples')).toBe(32);
    recordStep(db, runId, 1, makeStep(1));
    expect(listSteps(db, runId)).toEqual([0, 1]);
  });

  it("records the run's best validation even where no checkpoint holds it (step 0, the base model)", () => {
    // Issue 15.10: the window showed "best 0.438 @ step 0" while the database's best was NULL.
    const val = (step: number, value: number) => ({ ...makeStep(step), metrics: { ...makeStep(step).metrics, 'val/maj@16': value } });
    recordStep(db, runId, 0, { ...val(0, 0.438), best: 0.438 });
    expect(getRun(db, runId)).toMatchObject({ bestStep: 0, bestMetric: 0.438 });
    recordStep(db, runId, 1, val(1, 0.3));
    recordStep(db, runId, 2, { ...val(2, 0.5), best: 0.5, checkpoint: { kind: 'best', path: '/b2', metric: 0.5 } });
    expect(getRun(db, runId)).toMatchObject({ bestStep: 2, bestMetric: 0.5 });
    // Rolled back past it: the best is recomputed from the validations that remain (the first of equals).
    recordStep(db, runId, 3, val(3, 0.438));
    deleteStepsAfter(db, runId, 1, 'val/maj@16');
    expect(getRun(db, runId)).toMatchObject({ bestStep: 0, bestMetric: 0.438 });
    deleteStepsAfter(db, runId, -1, 'val/maj@16');
    expect(getRun(db, runId)).toMatchObject({ bestStep: null, bestMetric: null });
  });
});

describe('runs', () => {
  it('creates, lists newest first, moves through statuses and deletes with everything', () => {
    const second = createRun(db, { name: 'r2', method: 'srt', model: 'm', dataset: 'd', config: { tau: 0.5 } });
    expect(listRuns(db).map((r) => r.id)).toEqual([second.id, runId]);
    expect(getRun(db, runId)).toMatchObject({ status: 'queued', startedAt: null, currentStep: null });
    const started = updateRunStatus(db, runId, 'running');
    expect(started.startedAt).not.toBeNull();
    const failed = updateRunStatus(db, runId, 'failed', 'out of memory');
    expect(failed).toMatchObject({ status: 'failed', error: 'out of memory' });
    expect(failed.finishedAt).not.toBeNull();
    const resumed = updateRunStatus(db, runId, 'running');
    expect(resumed).toMatchObject({ status: 'running', error: null, finishedAt: null, startedAt: started.startedAt });
    expect(listRuns(db, { status: 'running' }).map((r) => r.id)).toEqual([runId]);
    expect(listRuns(db, { status: ['queued', 'failed'] }).map((r) => r.id)).toEqual([second.id]);
    expect(() => updateRunStatus(db, 999, 'running')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    recordStep(db, runId, 0, makeStep(0));
    expect(deleteRun(db, runId)).toBe(true);
    for (const t of ['steps', 'metrics', 'rollouts', 'samples']) expect(count(t)).toBe(0);
  });
});

describe('reviews', () => {
  it('creates, lists, updates and deletes reviews of rollouts and dataset items', () => {
    recordStep(db, runId, 0, makeStep(0));
    const [group] = rolloutsAtStep(db, runId, 0);
    const agree = createReview(db, { rolloutId: group.id, verdict: 'agree' });
    expect(agree).toMatchObject({ runId, rolloutId: group.id, verdict: 'agree', label: null });
    expect(() => createReview(db, { rolloutId: group.id, verdict: 'override' })).toThrow(/needs the label/);
    expect(() => createReview(db, { verdict: 'agree' })).toThrow(/needs a run/);
    expect(() => createReview(db, { runId: runId + 1, rolloutId: group.id, verdict: 'agree' })).toThrow(/belongs to run/);
    const ds = importDataset(db, { name: 'd' }, [{ prompt: 'q' }]);
    const onItem = createReview(db, { datasetId: ds.id, itemIdx: 0, verdict: 'override', label: '42', note: 'checked by hand' });
    expect(listReviews(db, { runId }).map((r) => r.id)).toEqual([agree.id]);
    expect(listReviews(db, { datasetId: ds.id, itemIdx: 0 }).map((r) => r.id)).toEqual([onItem.id]);
    expect(listReviews(db)).toHaveLength(2);
    const changed = updateReview(db, agree.id, { verdict: 'override', label: '7' });
    expect(changed).toMatchObject({ verdict: 'override', label: '7' });
    expect(changed.updatedAt).not.toBeNull();
    expect(() => updateReview(db, agree.id, { label: null })).toThrow(/needs the label/);
    expect(deleteReview(db, agree.id)).toBe(true);
    expect(getReview(db, agree.id)).toBeUndefined();
  });
});

describe('the loop sink', () => {
  it("carries a step's best validation to the run, step 0 included", async () => {
    const { toDbStep } = await import('../../../main/runs/sink.ts');
    const loopRecord = { step: 0, metrics: { 'val/maj@16': 0.438 }, groups: [], checkpoints: [], alerts: [], best: { metric: 'val/maj@16', value: 0.438 } };
    recordStep(db, runId, 0, toDbStep(loopRecord));
    expect(getRun(db, runId)).toMatchObject({ bestStep: 0, bestMetric: 0.438 });
  });
});
