// The built-in code datasets a run names (`code-functions`, `code-functions-js`): stored once per
// seed, training and evaluation splits, every item's hidden tests as its evaluation-only answer.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ExperimentDb, evaluationAnswers, getDataset, listItems, openDatabase } from '../../../main/db/index.ts';
import { readHiddenCodeAnswer } from '../../../main/engine/tasks/code-tasks.ts';
import { CODE_EVAL, CODE_TRAIN } from '../../../main/engine/tasks/code-generators.ts';
import { ensureDataset } from '../../../main/runs/start.ts';

let db: ExperimentDb;
beforeEach(() => {
  db = openDatabase(':memory:');
});
afterEach(() => db.close());

describe('built-in code datasets', () => {
  it.each([
    ['code-functions', 'python'],
    ['code-functions-js', 'javascript'],
  ] as const)('%s is stored once per seed, its hidden tests as answers', (spec, language) => {
    const id = ensureDataset(db, spec, { difficulty: 2 }, 7);
    expect(ensureDataset(db, spec, { difficulty: 2 }, 7)).toBe(id);
    expect(ensureDataset(db, spec, { difficulty: 2 }, 8)).not.toBe(id);
    const info = getDataset(db, id)!;
    expect(info).toMatchObject({ name: `${spec}-s7`, source: `generator:${spec}`, itemCount: CODE_TRAIN + CODE_EVAL, evalCount: CODE_EVAL, labeledCount: CODE_TRAIN + CODE_EVAL });
    const [item] = listItems(db, id, { split: 'eval', limit: 1 }).items;
    const hidden = readHiddenCodeAnswer(evaluationAnswers(db, id, [item.idx]).get(item.idx) ?? null);
    expect(hidden).toMatchObject({ kind: 'code', language });
    expect(item.prompt).not.toContain(hidden!.tests.split('\n')[0]);
  });
});
