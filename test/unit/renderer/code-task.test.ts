// The code task view's pure parts (issue 19): the execution matrix's rows by consensus set, the
// tests' columns with the top set's marked, and highlighting that escapes the code it marks up.
import { describe, expect, it } from 'vitest';
import type { CodeExecutionView, SampleView } from '../../../contract/index.ts';
import { highlightCode, matrixRows, outcomeCounts, testColumns } from '../../../renderer/src/lib/code-task.ts';

const execution: CodeExecutionView = {
  language: 'javascript',
  solutions: ['function f() { return 1; }', null, 'function f() { return 1; }'],
  tests: ['assert(f() === 1);', 'assert(f() !== 2);'],
  authors: [[0], [0, 2]],
  matrix: [
    ['pass', 'pass'],
    ['error', 'error'],
    ['pass', 'pass'],
  ],
  sets: [
    { solutions: [0, 2], tests: [0, 1], score: 4 },
    { solutions: [1], tests: [], score: 0 },
  ],
  top: 0,
  testRewards: [1, 1],
};
const sample = (idx: number, hiddenResult: string | null): SampleView => ({
  id: 100 + idx,
  idx,
  text: '',
  extractedAnswer: null,
  reward: idx / 10,
  advantage: -idx,
  usedForTraining: true,
  details: null,
  judge: null,
  tokens: [],
  hiddenResult,
});

describe('matrixRows', () => {
  it('orders the samples set by set, the top set first, with their cells and hidden results', () => {
    const rows = matrixRows(execution, [sample(0, 'pass'), sample(1, null), sample(2, 'fail')]);
    expect(rows.map((r) => [r.sample, r.set, r.top, r.firstOfSet, r.noCode, r.hidden])).toEqual([
      [0, 0, true, true, false, 'pass'],
      [2, 0, true, false, false, 'fail'],
      [1, 1, false, true, true, null],
    ]);
    expect(rows[1].cells).toEqual(['pass', 'pass']);
    expect(rows[2]).toMatchObject({ reward: 0.1, advantage: -1 });
  });
});

describe('testColumns and outcomeCounts', () => {
  it('marks the tests the top set passes, with their authors and credit', () => {
    expect(testColumns(execution)).toEqual([
      { test: 0, code: 'assert(f() === 1);', authors: [0], credit: 1, passedByTop: true },
      { test: 1, code: 'assert(f() !== 2);', authors: [0, 2], credit: 1, passedByTop: true },
    ]);
    expect(testColumns({ ...execution, top: null }).every((c) => !c.passedByTop)).toBe(true);
    expect(outcomeCounts(execution)).toEqual({ pass: 4, fail: 0, error: 2, timeout: 0 });
  });
});

describe('highlightCode', () => {
  it('gives the code back as pieces of text with their classes, markup characters as written', () => {
    const code = 'def f(a):\n    return "<b>&amp;" if a < 1 else \'x\'';
    const pieces = highlightCode(code, 'python');
    expect(pieces.map((p) => p.text).join('')).toBe(code);
    expect(pieces[0]).toEqual({ text: 'def', cls: 'hljs-keyword' });
    expect(pieces.find((p) => p.text.includes('<b>'))!.cls).toBe('hljs-string');
    expect(highlightCode('function g() { return 1; }', 'javascript').find((p) => p.text === 'function')!.cls).toBe('hljs-keyword');
  });
});
