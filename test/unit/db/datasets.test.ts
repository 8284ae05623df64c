// Datasets: one-transaction import (a bad item mid-way stores nothing), paging and search, and
// the hidden labels kept out of every item query.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseError, type ExperimentDb, openDatabase } from '../../../main/db/database.ts';
import {
  type NewDatasetItem,
  deleteDataset,
  evaluationAnswers,
  getDataset,
  getItem,
  importDataset,
  listDatasets,
  listItems,
} from '../../../main/db/datasets.ts';
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

  it('deletes a dataset with its items', () => {
    const d = importDataset(db, { name: 'gone' }, [{ prompt: 'a' }, { prompt: 'b' }]);
    expect(deleteDataset(db, d.id)).toBe(true);
    expect(count('dataset_items')).toBe(0);
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
