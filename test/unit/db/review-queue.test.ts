// The review queue stays fast on a long run: 12,800 groups (200 steps of 64 prompts drawn
// 6 times each), every filter across all steps answered well under a person's notice. Each
// group's previous draw and review is one index seek (the migration 'indexes for the review queue'); without those indexes
// label-changed alone took seconds (a scan of the run per group).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExperimentDb, openDatabase } from '../../../main/db/database.ts';
import { importDataset } from '../../../main/db/datasets.ts';
import { QUEUE_FILTERS, agreeWithQueue, reviewQueue } from '../../../main/db/review-queue.ts';
import { createRun } from '../../../main/db/runs.ts';
import { recordStep } from '../../../main/db/steps.ts';

const STEPS = 200;
const GROUPS = 64;
let db: ExperimentDb;
let runId: number;

beforeAll(() => {
  db = openDatabase(':memory:');
  const items = 2_000;
  const d = importDataset(db, { name: 'big' }, Array.from({ length: items }, (_, i) => ({ prompt: `p${i}`, answer: String(i) })));
  runId = createRun(db, { name: 'long', method: 'ttrl', model: 'm', dataset: 'big', datasetId: d.id, config: {} }).id;
  for (let s = 1; s <= STEPS; s++) {
    recordStep(db, runId, s, {
      rollouts: Array.from({ length: GROUPS }, (_, g) => ({ itemIdx: (s * GROUPS + g) % items, prompt: 'p', pseudoLabel: String((s + g) % 7), majorityRatio: (g % 10) / 10, labelCorrect: g % 3 === 0 })),
    });
  }
}, 60_000);
afterAll(() => db.close());

describe('the review queue on a run with thousands of groups', () => {
  it('answers every filter across all steps, first and last page, in well under a second', () => {
    const base = { runId, confidentAbove: 0.7, lowConsensusBelow: 0.5 };
    const slowest: [string, number][] = [];
    for (const filter of QUEUE_FILTERS) {
      for (const offset of [0, 12_000]) {
        const t0 = performance.now();
        const page = db.read('queue', () => reviewQueue(db, { ...base, filter }, { offset, limit: 200 }));
        slowest.push([`${filter}@${offset}`, performance.now() - t0]);
        if (filter === 'all') expect(page.total).toBe(STEPS * GROUPS);
      }
    }
    // 10-60 ms each on a two-core machine (slower when it is shared); a scan of the run per group takes tens of seconds.
    expect(slowest.filter(([, ms]) => ms > 2_000)).toEqual([]);
    const changed = db.read('queue', () => reviewQueue(db, { ...base, filter: 'label-changed' }, { offset: 0, limit: 1 }));
    expect(changed.total).toBeGreaterThan(0);
    expect(changed.groups[0].drawnBefore).toBe(true);
  });

  it('agrees with thousands of groups in one transaction', () => {
    const asOf = db.read('queue', () => reviewQueue(db, { runId, filter: 'all', confidentAbove: 0.7, lowConsensusBelow: 0.5 }, { offset: 0, limit: 1 })).asOf!;
    const t0 = performance.now();
    const result = agreeWithQueue(db, { runId, filter: 'low-consensus', confidentAbove: 0.7, lowConsensusBelow: 0.5, asOf });
    expect(performance.now() - t0).toBeLessThan(3_000);
    const low = STEPS * Array.from({ length: GROUPS }, (_, g) => g % 10).filter((t) => t < 5).length;
    expect(result.agreed + result.noLabel + result.reviewedElsewhere).toBe(low);
    expect(result.agreed).toBeGreaterThan(1_000);
    const left = db.read('queue', () => reviewQueue(db, { runId, filter: 'low-consensus', confidentAbove: 0.7, lowConsensusBelow: 0.5 }, { offset: 0, limit: 1 }));
    expect(left).toMatchObject({ total: low, reviewed: result.agreed });
  });
});
