// The task view of a code group (issue 19): what it draws, as pure functions. The execution
// matrix's rows are the samples ordered by consensus set (the top set first, as the rewards
// follow it), its columns the group's tests; code is highlighted by highlight.js (its core with
// the two languages the sandbox runs, so the bundle carries no other grammar).
import hljs from 'highlight.js/lib/core';
import javascript from 'highlight.js/lib/languages/javascript';
import python from 'highlight.js/lib/languages/python';
import type { CodeExecutionView, ExecutionOutcome, SampleView } from '../../../contract/index.ts';

hljs.registerLanguage('python', python);
hljs.registerLanguage('javascript', javascript);

/** A piece of highlighted code: its text and highlight.js's classes for it ('' for plain text). */
export interface CodePiece {
  text: string;
  cls: string;
}

const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&#x27;': "'", '&#39;': "'" };

/**
 * Code as pieces to render as text (never as markup): highlight.js's output read back, which is
 * only escaped text and nested `<span class="…">`, so the pieces join to the code exactly.
 */
export function highlightCode(code: string, language: CodeExecutionView['language']): CodePiece[] {
  const html = hljs.highlight(code, { language, ignoreIllegals: true }).value;
  const pieces: CodePiece[] = [];
  const stack: string[] = [];
  for (const m of html.matchAll(/<span class="([^"]*)">|<\/span>|[^<]+/g)) {
    if (m[1] !== undefined) stack.push(m[1]);
    else if (m[0] === '</span>') stack.pop();
    else pieces.push({ text: m[0].replace(/&(?:lt|gt|amp|quot|#x27|#39);/g, (e) => ENTITIES[e]), cls: stack.join(' ') });
  }
  return pieces;
}

/** How a cell reads: a symbol and a word (colour is never the only sign). */
export const OUTCOME_MARKS: Record<ExecutionOutcome, { symbol: string; word: string }> = {
  pass: { symbol: '✓', word: 'passes' },
  fail: { symbol: '✗', word: 'fails an assertion' },
  error: { symbol: '!', word: 'raises an error' },
  timeout: { symbol: '…', word: 'runs out of time' },
};

export interface MatrixRow {
  /** The sample's idx in its group (the matrix's row). */
  sample: number;
  /** Its consensus set (index into `sets`, 0 the highest score) and whether that is the top set. */
  set: number;
  top: boolean;
  /** Whether it starts a new set in the row order (the view draws a rule there). */
  firstOfSet: boolean;
  cells: ExecutionOutcome[];
  reward: number | null;
  advantage: number | null;
  /** Its function against the hidden tests (evaluation only); null where not checked. */
  hidden: string | null;
  /** Whether it wrote no code block (its row is all errors). */
  noCode: boolean;
}

/** The matrix's rows, set by set in score order (within a set, by sample). */
export function matrixRows(execution: CodeExecutionView, samples: readonly SampleView[]): MatrixRow[] {
  const byIdx = new Map(samples.map((s) => [s.idx, s]));
  return execution.sets.flatMap((set, k) =>
    set.solutions.map((s, j) => {
      const sample = byIdx.get(s);
      return {
        sample: s,
        set: k,
        top: execution.top === k,
        firstOfSet: j === 0,
        cells: execution.matrix[s] ?? [],
        reward: sample?.reward ?? null,
        advantage: sample?.advantage ?? null,
        hidden: sample?.hiddenResult ?? null,
        noCode: execution.solutions[s] === null,
      };
    }),
  );
}

export interface TestColumn {
  /** Index into the group's tests. */
  test: number;
  code: string;
  /** Samples (idx) that wrote it. */
  authors: number[];
  credit: number;
  /** Whether the top set passes it (it is one of the tests the top set agrees on). */
  passedByTop: boolean;
}

export function testColumns(execution: CodeExecutionView): TestColumn[] {
  const topTests = new Set(execution.top === null ? [] : execution.sets[execution.top].tests);
  return execution.tests.map((code, t) => ({ test: t, code, authors: execution.authors[t] ?? [], credit: execution.testRewards[t] ?? 0, passedByTop: topTests.has(t) }));
}

/** Counts of the matrix's cells by outcome, for the header line. */
export function outcomeCounts(execution: CodeExecutionView): Record<ExecutionOutcome, number> {
  const counts: Record<ExecutionOutcome, number> = { pass: 0, fail: 0, error: 0, timeout: 0 };
  for (const row of execution.matrix) for (const o of row) counts[o]++;
  return counts;
}
