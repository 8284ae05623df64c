// CodeT-style dual agreement over an execution matrix: every solution a policy wrote for a task
// run against every test it wrote for that task (Chen et al., "CodeT: Code Generation with
// Generated Tests", 2022; issue 19). No hidden test or reference solution is read here.
//
//   - Solutions that pass exactly the same tests form a consensus set; a set's score is
//     (#solutions in it) × (#tests they pass). The top set is the highest score (ties: more
//     solutions, then the set whose first solution came first); a set that passes no test
//     scores 0, and with every score 0 there is no top set.
//   - A solution earns its set's score (raw, and over the largest possible, k_solutions ×
//     k_tests, so rewards are in [0, 1] whatever k is).
//   - A test earns credit for passing every solution of the top set and failing the others: 0
//     if it fails a top-set solution, else the share of the other solutions it does not pass
//     (with no other solutions, 1: it agrees with everything written). Error and timeout count
//     as not passing.
//
// Unlike CURE (Gen-Verse/CURE), whose tester reward compares tests with ground-truth
// solutions, the top consensus set stands in for "correct" here.

/** One cell of the matrix: the test's asserts held, one failed, the program raised otherwise, or ran out of time. */
export type Outcome = 'pass' | 'fail' | 'error' | 'timeout';

export interface ConsensusSet {
  /** Indices of its solutions, ascending. */
  solutions: number[];
  /** Indices of the tests every one of them passes, ascending. */
  tests: number[];
  /** #solutions × #tests. */
  score: number;
}

export interface DualAgreement {
  /** Sets by score, highest first (ties as the top set's). */
  sets: ConsensusSet[];
  /** Index into `sets` of each solution's set. */
  setOf: number[];
  /** Index into `sets` of the top set (always 0 when there is one), or null when every set scores 0. */
  top: number | null;
  /** Whether another set has the top set's score. */
  tied: boolean;
  /** Per solution: its set's score. */
  solutionScores: number[];
  /** Per solution: its set's score over k_solutions × k_tests, in [0, 1]. */
  solutionRewards: number[];
  /** Per test: passes the whole top set × share of the other solutions it does not pass; 0 without a top set. */
  testRewards: number[];
}

/** Check the matrix is rectangular: `matrix[s][t]`, one row per solution. */
function shape(matrix: readonly (readonly Outcome[])[]): { solutions: number; tests: number } {
  const solutions = matrix.length;
  const tests = solutions > 0 ? matrix[0].length : 0;
  matrix.forEach((row, s) => {
    if (row.length !== tests) throw new Error(`execution matrix row ${s} has ${row.length} tests, row 0 has ${tests}`);
  });
  return { solutions, tests };
}

export function dualAgreement(matrix: readonly (readonly Outcome[])[]): DualAgreement {
  const { solutions: k, tests: m } = shape(matrix);
  const bySignature = new Map<string, ConsensusSet>();
  const order: ConsensusSet[] = [];
  const signatureOf: string[] = [];
  for (let s = 0; s < k; s++) {
    const passed: number[] = [];
    for (let t = 0; t < m; t++) if (matrix[s][t] === 'pass') passed.push(t);
    const key = passed.join(',');
    signatureOf.push(key);
    let set = bySignature.get(key);
    if (!set) {
      set = { solutions: [], tests: passed, score: 0 };
      bySignature.set(key, set);
      order.push(set);
    }
    set.solutions.push(s);
  }
  for (const set of order) set.score = set.solutions.length * set.tests.length;
  // Highest score, then more solutions, then first seen (order holds first appearance).
  const sets = order
    .map((set, i) => ({ set, i }))
    .sort((a, b) => b.set.score - a.set.score || b.set.solutions.length - a.set.solutions.length || a.i - b.i)
    .map((e) => e.set);
  const index = new Map(sets.map((set, i) => [set, i]));
  const setOf = signatureOf.map((key) => index.get(bySignature.get(key)!)!);
  const top = sets.length > 0 && sets[0].score > 0 ? 0 : null;
  const tied = top !== null && sets.length > 1 && sets[1].score === sets[0].score;
  const solutionScores = setOf.map((i) => sets[i].score);
  const most = k * m;
  const solutionRewards = solutionScores.map((x) => (most > 0 ? x / most : 0));

  const testRewards = new Array<number>(m).fill(0);
  if (top !== null) {
    const inTop = new Set(sets[top].solutions);
    const others = [...Array(k).keys()].filter((s) => !inTop.has(s));
    for (let t = 0; t < m; t++) {
      const passesTop = sets[top].solutions.every((s) => matrix[s][t] === 'pass');
      if (!passesTop) continue;
      testRewards[t] = others.length === 0 ? 1 : others.filter((s) => matrix[s][t] !== 'pass').length / others.length;
    }
  }
  return { sets, setOf, top, tied, solutionScores, solutionRewards, testRewards };
}

/** What a code step logs about one task's matrix (the hidden-test pass rate is the loop's: it reads hidden tests). */
export interface MatrixStats {
  /** Solutions in the top consensus set (0 without one). */
  consensusSize: number;
  /** Mean test reward: how well the tests separate the top set from the rest. */
  testDiscrimination: number;
  /** Share of solutions that ran: some test passed or failed on them rather than every cell an error or timeout. */
  runnableShare: number;
  /** Share of cells that ended in an error / a timeout. */
  errorShare: number;
  timeoutShare: number;
}

export function matrixStats(matrix: readonly (readonly Outcome[])[], agreement: DualAgreement): MatrixStats {
  const { solutions: k, tests: m } = shape(matrix);
  const cells = k * m;
  let errors = 0;
  let timeouts = 0;
  let runnable = 0;
  for (const row of matrix) {
    if (row.some((o) => o === 'pass' || o === 'fail')) runnable++;
    for (const o of row) {
      if (o === 'error') errors++;
      else if (o === 'timeout') timeouts++;
    }
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return {
    consensusSize: agreement.top === null ? 0 : agreement.sets[agreement.top].solutions.length,
    testDiscrimination: mean(agreement.testRewards),
    runnableShare: k ? runnable / k : 0,
    errorShare: cells ? errors / cells : 0,
    timeoutShare: cells ? timeouts / cells : 0,
  };
}

/** What a code group's programs did, kept with the group (the task view shows it). */
export interface ExecutionRecord {
  language: 'python' | 'javascript';
  /** Per response: the function it wrote, as run (null: no code block; its row is all errors). */
  solutions: (string | null)[];
  /** The group's tests, pooled, in order, and the responses that wrote each. */
  tests: string[];
  authors: number[][];
  /** `matrix[s][t]`: response s's function against test t. */
  matrix: Outcome[][];
  /** Consensus sets by score, highest first. */
  sets: ConsensusSet[];
  /** Index into `sets` of the top set, or null when every set scores 0. */
  top: number | null;
  /** Per test: its credit (passes the whole top set × share of the other solutions it fails). */
  testRewards: number[];
  /** Self-debugging turns (`codeDebugTurn`): the responses whose function failed some test, revised. */
  revisions?: RevisionRecord[];
}

/** A response's second turn: what it was told, what it wrote, and how its revised function did. */
export interface RevisionRecord {
  /** The response revised (its index in the group). */
  sample: number;
  /** The user message of the second turn: the failing tests and their errors. */
  feedback: string;
  /** The revision as generated, and the function parsed from it (null: no code block). */
  text: string;
  solution: string | null;
  /** Its function against each of the group's tests. */
  row: Outcome[];
  /** Its consensus score among the group's functions and the revisions, over its largest. */
  reward: number;
  /** Set by the loop: its group-relative advantage among the group's revisions (0: not trained), and its hidden-test outcome. */
  advantage?: number;
  hiddenResult?: string;
}
