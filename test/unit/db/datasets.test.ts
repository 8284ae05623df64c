// Datasets: one-transaction import (a bad item mid-way stores nothing), paging and search, and
// the hidden labels kept out of every item query.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseError, type ExperimentDb, openDatabase } from '../../../main/db/database.ts';
import {
  type NewDatasetItem,
  datasetUsage,
  deleteDataset,
  evaluationAnswers,
  getDataset,
  getItem,
  importDataset,
  listDatasets,
  listItems,
  setDatasetArchived,
} from '../../../main/db/datasets.ts';
import { createReview, listReviews } from '../../../main/db/reviews.ts';
import { createRun, getRun } from '../../../main/db/runs.ts';
import { deleteModel, getModel, listModels, upsertModel } from '../../../main/db/models.ts';

let db: ExperimentDb;
beforeEach(() => {
  db = openDatabase(':memory:');
});
afterEach(() => db.close());

const count = (table: string): number => (db.sql.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('datasets', () => {
  it('imports a dataset with its items and reads them back without the hidden labels', () => {
    const d = importDataset(db, { name: 'gsm', source: '/data/gsm.jsonl', fieldMapping: { prompt: 'q', answer: 'a' } }, [
      { prompt: 'What is 2+2?', answer: '4' },
      { prompt: 'What is 3+3?', answer: '6', split: 'eval', metadata: { level: 2 } },
      { prompt: 'Unlabeled' },
    ]);
    expect(d).toMatchObject({ name: 'gsm', source: '/data/gsm.jsonl', itemCount: 3, labeledCount: 2 });
    expect(d.fieldMapping).toEqual({ prompt: 'q', answer: 'a' });
    const { items, total } = listItems(db, d.id);
    expect(total).toBe(3);
    expect(items.map((i) => i.prompt)).toEqual(['What is 2+2?', 'What is 3+3?', 'Unlabeled']);
    for (const item of items) expect(Object.keys(item).sort()).toEqual(['datasetId', 'idx', 'metadata', 'prompt', 'split']);
    expect(getItem(db, d.id, 1)).toEqual({ datasetId: d.id, idx: 1, prompt: 'What is 3+3?', split: 'eval', metadata: { level: 2 } });
    expect(evaluationAnswers(db, d.id)).toEqual(new Map([[0, '4'], [1, '6']]));
    expect(evaluationAnswers(db, d.id, [1, 2])).toEqual(new Map([[1, '6']]));
    expect(listDatasets(db).map((x) => x.name)).toEqual(['gsm']);
  });

  it('stores nothing when the item source throws mid-way (a malformed line)', () => {
    function* parse(): Generator<NewDatasetItem> {
      for (let i = 0; i < 100; i++) {
        if (i === 57) throw new Error('line 58: not valid JSON');
        yield { prompt: `q${i}`, answer: String(i) };
      }
    }
    expect(() => importDataset(db, { name: 'broken' }, parse())).toThrow('line 58: not valid JSON');
    expect(getDataset(db, 'broken')).toBeUndefined();
    expect(count('datasets')).toBe(0);
    expect(count('dataset_items')).toBe(0);
  });

  it('stores nothing when an item is invalid, and refuses a duplicate name', () => {
    importDataset(db, { name: 'a' }, [{ prompt: 'x' }]);
    const bad = [{ prompt: 'ok' }, { prompt: '' }];
    expect(() => importDataset(db, { name: 'b' }, bad)).toThrow(/item 1 has no prompt/);
    const badSplit = [{ prompt: 'ok', split: 'test' as 'train' }];
    expect(() => importDataset(db, { name: 'b' }, badSplit)).toThrow(DatabaseError);
    expect(() => importDataset(db, { name: 'a' }, [{ prompt: 'y' }])).toThrow(/already exists/);
    expect(count('datasets')).toBe(1);
    expect(count('dataset_items')).toBe(1);
  });

  it('pages, filters by split and searches prompts literally', () => {
    const items = Array.from({ length: 25 }, (_, i) => ({
      prompt: i === 7 ? 'What is 50% of 10?' : `Problem ${i}`,
      split: (i % 5 === 0 ? 'eval' : 'train') as 'eval' | 'train',
    }));
    const d = importDataset(db, { name: 'p' }, items);
    const page = listItems(db, d.id, { offset: 10, limit: 5 });
    expect(page.total).toBe(25);
    expect(page.items.map((i) => i.idx)).toEqual([10, 11, 12, 13, 14]);
    expect(listItems(db, d.id, { split: 'eval' }).items.map((i) => i.idx)).toEqual([0, 5, 10, 15, 20]);
    expect(listItems(db, d.id, { search: 'problem 2' }).items.map((i) => i.idx)).toEqual([2, 20, 21, 22, 23, 24]);
    // % is the user's text, not a wildcard.
    expect(listItems(db, d.id, { search: '50%' }).items.map((i) => i.idx)).toEqual([7]);
    expect(listItems(db, d.id, { search: '5%' }).total).toBe(0);
  });

  it('deletes a dataset with its items when nothing depends on it', () => {
    const d = importDataset(db, { name: 'gone' }, [{ prompt: 'a' }, { prompt: 'b' }]);
    expect(datasetUsage(db, d.id)).toEqual({ runs: [], reviews: 0 });
    expect(deleteDataset(db, d.id)).toBe(true);
    expect(count('dataset_items')).toBe(0);
    expect(deleteDataset(db, d.id)).toBe(false);
  });

  it('refuses to delete a dataset runs or reviews depend on, naming them, and loses nothing', () => {
    const d = importDataset(db, { name: 'reviewed' }, [{ prompt: 'a', answer: '1' }, { prompt: 'b', answer: '2' }]);
    const run = createRun(db, { name: 'ttrl on reviewed', method: 'ttrl', model: 'tiny-chars', dataset: 'reviewed', datasetId: d.id, config: {} });
    createReview(db, { runId: run.id, datasetId: d.id, itemIdx: 1, verdict: 'override', label: '3' });
    const before = { items: count('dataset_items'), reviews: listReviews(db), run: getRun(db, run.id) };
    expect(datasetUsage(db, d.id)).toEqual({ runs: [{ id: run.id, name: 'ttrl on reviewed', status: 'queued' }], reviews: 1 });
    let err: unknown;
    try {
      deleteDataset(db, d.id);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DatabaseError);
    expect((err as DatabaseError).code).toBe('IN_USE');
    expect((err as Error).message).toBe(
      `Dataset "reviewed" is used by 1 run (#${run.id} "ttrl on reviewed") and 1 review; deleting it would destroy them. Archive it instead (hidden from pickers, everything keeps working).`,
    );
    // The database itself refuses, whatever code asks.
    expect(() => db.sql.prepare('DELETE FROM datasets WHERE id = ?').run(d.id)).toThrow(/in use by runs or reviews/);
    expect({ items: count('dataset_items'), reviews: listReviews(db), run: getRun(db, run.id) }).toEqual(before);
    expect(evaluationAnswers(db, d.id)).toEqual(new Map([[0, '1'], [1, '2']]));
  });

  it('a review of a dataset item alone keeps its dataset', () => {
    const d = importDataset(db, { name: 'item review' }, [{ prompt: 'a' }]);
    createReview(db, { datasetId: d.id, itemIdx: 0, verdict: 'override', label: '7' });
    expect(datasetUsage(db, d.id)).toEqual({ runs: [], reviews: 1 });
    expect(() => deleteDataset(db, d.id)).toThrow(/used by 1 review/);
    expect(listReviews(db)).toHaveLength(1);
  });

  it('archives a dataset out of the list of usable ones and restores it, keeping everything', () => {
    const kept = importDataset(db, { name: 'kept' }, [{ prompt: 'a' }]);
    const old = importDataset(db, { name: 'old' }, [{ prompt: 'b', answer: '2' }]);
    const run = createRun(db, { name: 'r', method: 'ttrl', model: 'm', dataset: 'old', datasetId: old.id, config: {} });
    createReview(db, { runId: run.id, datasetId: old.id, itemIdx: 0, verdict: 'agree' });
    const archived = setDatasetArchived(db, old.id, true);
    expect(archived.archivedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    // Archiving again keeps the first date.
    expect(setDatasetArchived(db, old.id, true).archivedAt).toBe(archived.archivedAt);
    expect(listDatasets(db, { archived: false }).map((x) => x.name)).toEqual(['kept']);
    expect(listDatasets(db).map((x) => [x.name, x.archivedAt !== null])).toEqual([['kept', false], ['old', true]]);
    // Everything that uses it keeps working: the run's dataset, its items and hidden labels, the review.
    expect(getRun(db, run.id)?.datasetId).toBe(old.id);
    expect(listItems(db, old.id).total).toBe(1);
    expect(evaluationAnswers(db, old.id)).toEqual(new Map([[0, '2']]));
    expect(listReviews(db, { datasetId: old.id })).toHaveLength(1);
    expect(setDatasetArchived(db, old.id, false).archivedAt).toBeNull();
    expect(listDatasets(db, { archived: false }).map((x) => x.name)).toEqual(['kept', 'old']);
    expect(getDataset(db, kept.id)?.archivedAt).toBeNull();
    expect(() => setDatasetArchived(db, 999, true)).toThrow(/No dataset 999/);
  });
});

describe('models', () => {
  it('adds, updates by name, lists and deletes', () => {
    const m = upsertModel(db, { name: 'tiny-arith', path: '/m/a', architecture: 'llama', parameterCount: 1234, dtype: 'f32' });
    upsertModel(db, { name: 'tiny-arith', path: '/m/b', architecture: 'llama', parameterCount: 1234, dtype: 'f16' });
    expect(getModel(db, m.id)).toMatchObject({ path: '/m/b', dtype: 'f16', parameterCount: 1234 });
    expect(listModels(db)).toHaveLength(1);
    expect(deleteModel(db, m.id)).toBe(true);
    expect(getModel(db, 'tiny-arith')).toBeUndefined();
  });
});
