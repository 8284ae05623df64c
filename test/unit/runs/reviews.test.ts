// Reviewed labels for a run, and the columns that carry what the inspector shows: the map from
// a run's reviews to labels by dataset item (latest review wins), the checks that keep another
// dataset's reviews out, and token ids / label sources through recordStep, including a
// database written before they existed.
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ExperimentDb,
  createReview,
  createRun,
  getRun,
  importDataset,
  openDatabase,
  recordStep,
  rolloutsAtStep,
  samplesOfRollout,
  setRunConfig,
  updateReview,
} from '../../../main/db/index.ts';
import { MIGRATIONS } from '../../../main/db/schema.ts';
import { storedConfig } from '../../../main/runs/key-metric.ts';
import { parseStoredConfig, recordedRunConfig, reviewedLabels, setRunReviewsOf } from '../../../main/runs/start.ts';
import { tempDir } from '../db/helpers.ts';

let db: ExperimentDb;
let datasetId: number;
let otherDataset: number;

const items = (n: number) => Array.from({ length: n }, (_, i) => ({ prompt: `${i} + 1 = ?`, evalAnswer: String(i + 1) }));

function runWithGroups(dataset: number, labels: (string | null)[]) {
  const run = createRun(db, { name: 'r', method: 'ttrl', model: 'm', dataset: 'd', datasetId: dataset, config: { steps: 1 } });
  recordStep(db, run.id, 1, {
    rollouts: labels.map((pseudoLabel, i) => ({ itemIdx: i, prompt: `${i} + 1 = ?`, pseudoLabel, samples: [{ text: 'x', tokenIds: [i, 7, -1] }] })),
  });
  return { run, rollouts: rolloutsAtStep(db, run.id, 1) };
}

beforeEach(() => {
  db = openDatabase(':memory:');
  datasetId = importDataset(db, { name: 'a' }, items(4)).id;
  otherDataset = importDataset(db, { name: 'b' }, items(4)).id;
});
afterEach(() => db.close());

describe('reviewed labels', () => {
  it('override gives its label, agree the pseudo-label; the latest review of an item wins', () => {
    const { run, rollouts } = runWithGroups(datasetId, ['1', '5', null, '4']);
    createReview(db, { rolloutId: rollouts[0].id, verdict: 'agree' });
    createReview(db, { rolloutId: rollouts[1].id, verdict: 'override', label: '2' });
    // An override, then an agreement with a group that had no label: no label for item 2.
    createReview(db, { rolloutId: rollouts[2].id, verdict: 'override', label: '3' });
    createReview(db, { rolloutId: rollouts[2].id, verdict: 'agree' });
    // An agreement later edited into an override: the edit counts.
    const edited = createReview(db, { rolloutId: rollouts[3].id, verdict: 'agree' });
    updateReview(db, edited.id, { verdict: 'override', label: '40' });
    expect([...reviewedLabels(db, run.id, datasetId)].sort()).toEqual([
      [0, '1'],
      [1, '2'],
      [3, '40'],
    ]);
  });

  it("refuses a missing run and another dataset's reviews, naming them", () => {
    const { run } = runWithGroups(otherDataset, ['1']);
    expect(() => reviewedLabels(db, 999, datasetId)).toThrow(/no run 999/);
    expect(() => reviewedLabels(db, run.id, datasetId)).toThrow(/trained on dataset "d", not this run's/);
  });

  it('reviewsOf is a stored target setting, validated, and can be set on a recorded run', () => {
    const base = { model: 'tiny-chars', dataset: 'arithmetic' };
    expect(parseStoredConfig({ ...base, reviewsOf: 3 }, 'x').target.reviewsOf).toBe(3);
    expect(parseStoredConfig(base, 'x').target).not.toHaveProperty('reviewsOf');
    expect(() => parseStoredConfig({ ...base, reviewsOf: 'run 3' }, 'cfg')).toThrow(/cfg: reviewsOf must be a run id/);
    const { run } = runWithGroups(datasetId, ['1']);
    expect(setRunReviewsOf(db, run.id, 7).config).toEqual({ steps: 1, reviewsOf: 7 });
    expect(getRun(db, run.id)!.config).toEqual({ steps: 1, reviewsOf: 7 });
    expect(setRunReviewsOf(db, run.id, null).config).toEqual({ steps: 1 });
  });

  it('reads reviewsFrom, its earlier name, in config files and stored configs', () => {
    const base = { model: 'tiny-chars', dataset: 'arithmetic' };
    expect(parseStoredConfig({ ...base, reviewsFrom: 3 }, 'x').target.reviewsOf).toBe(3);
    expect(() => parseStoredConfig({ ...base, reviewsFrom: 3, reviewsOf: 4 }, 'run.json')).toThrow('run.json: give reviewsOf only (reviewsFrom is its earlier name)');
    const stored = { ...base, steps: 1, reviewsFrom: 5 };
    expect(storedConfig({ config: stored })).toEqual({ ...base, steps: 1, reviewsOf: 5 });
    expect(recordedRunConfig({ id: 9, config: stored }).target.reviewsOf).toBe(5);
    // Setting it again stores the new name only.
    const { run } = runWithGroups(datasetId, ['1']);
    setRunConfig(db, run.id, { steps: 1, reviewsFrom: 5 });
    expect(setRunReviewsOf(db, run.id, 6).config).toEqual({ steps: 1, reviewsOf: 6 });
  });
});

describe('token ids and label sources in the database', () => {
  it('round-trip through recordStep; label source defaults to vote', () => {
    const run = createRun(db, { name: 'r', method: 'ttrl', model: 'm', dataset: 'd', config: {} });
    recordStep(db, run.id, 1, {
      rollouts: [
        { prompt: 'p', pseudoLabel: '2', labelSource: 'review', samples: [{ text: 'a', tokenIds: Int32Array.from([1, 2, 2147483647, -5]).subarray(1) }, { text: 'b' }] },
        { prompt: 'q', pseudoLabel: '3' },
      ],
    });
    const [r, q] = rolloutsAtStep(db, run.id, 1);
    expect([r.labelSource, q.labelSource]).toEqual(['review', 'vote']);
    const [a, b] = samplesOfRollout(db, r.id);
    expect(a.tokenIds).toEqual(Int32Array.from([2, 2147483647, -5]));
    expect(b.tokenIds).toBeNull();
  });

  it('a database written before migration 2 upgrades: old samples have no token ids, old groups were votes', () => {
    const tmp = tempDir('autodidact-migrate-');
    try {
      const file = tmp.file('old.db');
      const old = openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) });
      // As that version wrote it: today's createRun reads columns and tables added since.
      const run = { id: Number(old.sql.prepare("INSERT INTO runs (name, method, model, dataset, config) VALUES ('r', 'ttrl', 'm', 'd', '{}')").run().lastInsertRowid) };
      old.sql.prepare("INSERT INTO steps (run_id, step) VALUES (?, 1)").run(run.id);
      const rid = old.sql.prepare("INSERT INTO rollouts (run_id, step, group_idx, prompt) VALUES (?, 1, 0, 'p')").run(run.id).lastInsertRowid;
      old.sql.prepare("INSERT INTO samples (rollout_id, idx, text) VALUES (?, 0, 't')").run(rid);
      old.close();

      const upgraded = openDatabase(file);
      expect(upgraded.schemaVersion()).toBe(MIGRATIONS.length);
      const [r] = rolloutsAtStep(upgraded, run.id, 1);
      expect(r.labelSource).toBe('vote');
      expect(samplesOfRollout(upgraded, r.id)[0].tokenIds).toBeNull();
      // The column refuses sources it does not know.
      expect(() => upgraded.sql.prepare("UPDATE rollouts SET label_source = 'guess'").run()).toThrow(Database.SqliteError);
      upgraded.close();
    } finally {
      tmp.remove();
    }
  });
});
