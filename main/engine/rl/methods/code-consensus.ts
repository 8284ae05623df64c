// Code that tests itself (issue 19, CodeT's dual agreement as a reward): for a programming task
// each response writes the function and assert lines that test it (engine/code/response.ts).
// Every response's function runs against the group's tests, pooled (at most `codeMaxTests`,
// first written first), in the sandbox (main/sandbox/); the execution matrix's dual agreement
// (engine/code/consensus.ts) rewards a response with its solution's consensus score plus
// `codeTestWeight` × the mean credit of the tests it wrote. No hidden test or reference solution
// is read. A group where no solution passes any test gets no label and no update.
//
// Both roles are trained with advantages of their own (`codeAdvantages` separate, the default):
// the function's tokens (and the text around the code) get the group-relative advantage of the
// solutions' consensus scores, the assert lines' tokens codeTestWeight × that of the tests'
// credit, among the responses whose tests ran. CURE trains the roles from two prompts per
// task; here one response writes both, so the roles are its token spans (code/response.ts).
// `shared` gives every token the advantage of the summed reward.
//
// Self-debugging (`codeDebugTurn`, off by default): a response whose function fails some of the
// group's tests gets a second turn, a user message naming the failing tests and what they raised
// (`debugMessage`), and revises its function (`ScorerContext.revise`, the policy through the
// loop). A revision is rewarded the same way: its consensus score in the dual agreement of the
// group's functions and the revisions together, against the same tests; the loop trains the
// revisions of a labeled group with their group-relative advantage, and the execution record
// keeps each turn (the task view shows them).
//
// Measured, never rewarded: each response's function against its task's hidden tests
// (`code/hidden_pass_rate`, through the method's `hidden` check, which only the loop calls).
import { z } from 'zod';
import { SandboxPool } from '../../../sandbox/pool.ts';
import { type ExecutionRecord, type Outcome, type RevisionRecord, dualAgreement, matrixStats } from '../../code/consensus.ts';
import { type ExecutionCell, type ProgramRunner, executionCells, executionMatrix, passesHidden } from '../../code/execute.ts';
import type { SandboxLanguage } from '../../../sandbox/protocol.ts';
import type { ScoredRevision, ScorerContext } from '../rewards.ts';
import { readHiddenCodeAnswer } from '../../tasks/code-tasks.ts';
import { parseCodeResponse, tokenRoles } from '../../code/response.ts';
import { mean } from '../stats.ts';
import { type MethodSignal, type ScoredGroupView, defineMethod } from './types.ts';

let shared: SandboxPool | null = null;
/** The process's sandbox, started at the first code reward (its workers do not keep the process alive). */
function sandbox(): ProgramRunner {
  shared ??= new SandboxPool();
  return shared;
}

/**
 * Stops the process's sandbox, whose idle workers still keep a script's process alive (their
 * output streams are read); the next code reward starts a new one. At the end of each recorded
 * run (executeRun), and of scripts (benches) that end when their work does.
 */
export async function closeCodeSandbox(): Promise<void> {
  const pool = shared;
  shared = null;
  await pool?.close();
}

/** Tests a group's responses wrote, each once, in the order written, with who wrote each. */
export function poolTests(perResponse: readonly (readonly string[])[], max: number): { tests: string[]; authors: number[][] } {
  const index = new Map<string, number>();
  const tests: string[] = [];
  const authors: number[][] = [];
  perResponse.forEach((list, r) => {
    for (const t of list) {
      let i = index.get(t);
      if (i === undefined) {
        if (tests.length >= max) continue;
        i = tests.length;
        index.set(t, i);
        tests.push(t);
        authors.push([]);
      }
      if (!authors[i].includes(r)) authors[i].push(r);
    }
  });
  return { tests, authors };
}

const DIAGNOSTICS = ['consensus_size', 'test_discrimination', 'runnable_share', 'error_share', 'timeout_share', 'tests', 'debug_turns', 'debug_pass_gain'] as const;

/** Failing tests a second turn names at most, and the characters of each one's error. */
const DEBUG_TESTS = 4;
const DEBUG_ERROR_CHARS = 160;

/** The second turn's user message: the tests the function failed (a few) and what each raised. */
export function debugMessage(tests: readonly string[], row: readonly ExecutionCell[], language: SandboxLanguage): string {
  const failed = row.flatMap((c, t) => (c.outcome === 'pass' ? [] : [{ test: tests[t], why: c.outcome === 'timeout' ? 'ran out of time' : (c.error ?? c.outcome).slice(0, DEBUG_ERROR_CHARS) }]));
  const comment = language === 'python' ? '#' : '//';
  const lines = failed.slice(0, DEBUG_TESTS).map((f) => `${f.test}  ${comment} ${f.why}`);
  const more = failed.length > DEBUG_TESTS ? `\n(and ${failed.length - DEBUG_TESTS} more)` : '';
  return `Your function fails these tests:\n${lines.join('\n')}${more}\nWrite the corrected function in a code block.`;
}

export const codeConsensus = defineMethod({
  id: 'code-consensus',
  label: 'Code dual agreement',
  description: 'CodeT: each response writes a function and assert tests; every function runs against every test in the sandbox, and a response earns its consensus set’s #solutions × #tests plus credit for tests that separate the top set.',
  pipeline: 'group-reward',
  settings: z.object({
    codeLanguage: z.enum(['python', 'javascript']).default('python').describe('The language the tasks ask for (Python runs in Pyodide, JavaScript in QuickJS)'),
    codeTimeoutMs: z.number().int().min(50).max(60_000).default(2_000).describe('Wall-clock limit of one solution against one test (ms)'),
    codeTestWeight: z.number().min(0).max(10).default(0.5).describe('Weight of the credit of a response’s tests beside its solution’s consensus score'),
    codeMaxTests: z.number().int().min(1).max(256).default(16).describe('Tests per task at most (the group’s, pooled, first written first)'),
    codeAdvantages: z
      .enum(['separate', 'shared'])
      .default('separate')
      .describe('separate: the function’s tokens get the advantage of the solutions’ scores and the assert lines’ codeTestWeight × that of the tests’ credit; shared: every token that of the summed reward'),
    codeDebugTurn: z
      .boolean()
      .default(false)
      .describe('Self-debugging: a response whose function fails some of the group’s tests sees those tests and their errors in a second turn and revises it; revisions are rewarded by consensus with the group’s functions and trained'),
    codeDebugTokens: z.number().int().min(16).max(4096).default(192).describe('Tokens the self-debugging turn’s message may take (the revision’s training length counts them)'),
  }),
  services: { revise: (s) => (s.codeDebugTurn ? { messageTokens: s.codeDebugTokens } : null) },
  tokenAdvantages: (s) => s.codeAdvantages === 'separate',
  hidden: {
    metric: 'code/hidden_pass_rate',
    check: (s) => async (response, answer) => {
      const hidden = readHiddenCodeAnswer(answer);
      if (!hidden) return null;
      const solution = parseCodeResponse(response, hidden.language).solution;
      // No function: as in the matrix, every program of it is an error.
      return solution === null ? 'error' : passesHidden(sandbox(), solution, hidden, { timeoutMs: s.codeTimeoutMs });
    },
    // CodeT's pass@1: the dual agreement of the k responses' own functions and tests, as the scorer's.
    choose: (s) => async (responses) => {
      const parsed = responses.map((r) => parseCodeResponse(r, s.codeLanguage));
      const { tests } = poolTests(
        parsed.map((p) => p.tests),
        s.codeMaxTests,
      );
      if (tests.length === 0) return null;
      const matrix = await executionMatrix(
        sandbox(),
        s.codeLanguage,
        parsed.map((p) => p.solution ?? ''),
        tests,
        { timeoutMs: s.codeTimeoutMs },
      );
      const agreement = dualAgreement(matrix);
      return agreement.top === null ? null : agreement.sets[agreement.top].solutions[0];
    },
  },
  defaults: { votes: 8, trainSamples: 8 },
  charts: [{ id: 'code', title: 'Code execution', hint: 'Per task: solutions in the top consensus set, tests’ discrimination, solutions that ran; the hidden tests’ pass rate where the data has them (never rewarded)' }],
  metrics: [
    { key: 'code/hidden_pass_rate', label: 'Hidden-test pass rate', chart: 'code', unit: true, description: 'Share of the step’s responses whose function passes its task’s hidden tests (evaluation only, never in the reward; where the data has hidden tests)' },
    { key: 'code/consensus_size', label: 'Consensus size', chart: 'code', description: 'Mean over the step’s tasks of the solutions in the top consensus set' },
    { key: 'code/test_discrimination', label: 'Test discrimination', chart: 'code', unit: true, description: 'Mean test credit: passing the whole top set times the share of other solutions failed' },
    { key: 'code/runnable_share', label: 'Runnable solutions', chart: 'code', unit: true, description: 'Share of solutions that passed or failed some test rather than erroring on all' },
    { key: 'code/error_share', label: 'Sandbox errors', chart: null, unit: true, description: 'Share of solution × test runs that raised something other than a failed assertion' },
    { key: 'code/timeout_share', label: 'Sandbox timeouts', chart: null, unit: true, description: 'Share of solution × test runs stopped at the time limit' },
    { key: 'code/debug_turns', label: 'Self-debugging turns', chart: null, unit: true, description: 'Share of responses given a second turn (their function failed some of the group’s tests; codeDebugTurn)' },
    { key: 'code/debug_pass_gain', label: 'Tests gained by revising', chart: 'code', unit: true, description: 'Mean over revisions of the share of the group’s tests the revised function passes less the share its first version passed' },
    { key: 'code/debug_hidden_pass_rate', label: 'Revisions’ hidden-test pass rate', chart: null, unit: true, description: 'Share of revised functions that pass their task’s hidden tests (evaluation only, never in the reward)' },
    { key: 'code/tests', label: 'Tests per task', chart: null, description: 'Mean number of distinct tests the group wrote (at most codeMaxTests)' },
  ],
  scorer: (s) => async (group, context) => {
    const parsed = group.samples.map((sample) => parseCodeResponse(sample.text, s.codeLanguage));
    const { tests, authors } = poolTests(
      parsed.map((p) => p.tests),
      s.codeMaxTests,
    );
    // A response without a function still gets its row: every cell an error.
    const solutions = parsed.map((p) => p.solution ?? '');
    const cells = await executionCells(sandbox(), s.codeLanguage, solutions, tests, { timeoutMs: s.codeTimeoutMs });
    const matrix = cells.map((row) => row.map((c) => c.outcome));
    const agreement = dualAgreement(matrix);
    const stats = matrixStats(matrix, agreement);
    // Null for a response none of whose tests ran (it wrote none, or the pool was full).
    const ranCredit = parsed.map((_, r) => {
      const mine = authors.flatMap((who, t) => (who.includes(r) ? [agreement.testRewards[t]] : []));
      return mine.length ? mean(mine) : null;
    });
    const testCredit = ranCredit.map((c) => c ?? 0);
    const rewards = parsed.map((_, r) => agreement.solutionRewards[r] + s.codeTestWeight * testCredit[r]);
    const roles =
      s.codeAdvantages === 'separate' && context.tokenEnds
        ? {
            names: ['solution', 'tests'],
            weights: [1, s.codeTestWeight],
            rewards: [agreement.solutionRewards, ranCredit],
            tokenRoles: group.samples.map((sample, r) => tokenRoles(sample.text, context.tokenEnds!(sample.tokenIds), parsed[r].testSpans)),
          }
        : undefined;
    const debugOn = s.codeDebugTurn && context.revise !== undefined;
    const debug = debugOn && tests.length > 0 ? await debugTurn(s, context.revise!, parsed, tests, cells, matrix) : null;
    return {
      rewards,
      ...(roles && { roles }),
      ...(debug && { revisions: debug.revisions }),
      execution: {
        ...(debug && { revisions: debug.records }),
        language: s.codeLanguage,
        solutions: parsed.map((p) => p.solution),
        tests,
        authors,
        matrix,
        sets: agreement.sets,
        top: agreement.top,
        testRewards: agreement.testRewards,
      },
      labeled: agreement.top !== null,
      details: parsed.map((p, r) => ({ solution: agreement.solutionRewards[r], tests: testCredit[r], testsWritten: p.tests.length, consensusSet: agreement.setOf[r] })),
      diagnostics: {
        consensus_size: stats.consensusSize,
        test_discrimination: stats.testDiscrimination,
        runnable_share: stats.runnableShare,
        error_share: stats.errorShare,
        timeout_share: stats.timeoutShare,
        tests: tests.length,
        // A group without tests gives no second turn: 0 turns, so the step's share counts it.
        ...(debugOn && { debug_turns: 0 }),
        ...(debug && debug.stats),
      },
    };
  },
  signal: { answered: 'a runnable function (one that passed or failed a test) was written', of: (view) => (view.score.execution ? executionSignal(view.score.execution, view) : null) },
  stepMetrics: (groups) => {
    const revised = groups.flatMap((g) => g.score.execution?.revisions ?? []).filter((r) => r.hiddenResult !== undefined);
    const out: Record<string, number> = {};
    for (const key of DIAGNOSTICS) {
      const xs = groups.map((g) => g.score.diagnostics?.[key]).filter((x): x is number => typeof x === 'number');
      if (xs.length) out[`code/${key}`] = mean(xs);
    }
    if (revised.length) out['code/debug_hidden_pass_rate'] = mean(revised.map((r) => (r.hiddenResult === 'pass' ? 1 : 0)));
    return out;
  },
});

/**
 * The signal check's counts of a code group (MethodDefinition.signal): a response answers when its
 * function ran (passed or failed some test, rather than erring or timing out on every one); the
 * clusters are the consensus sets of such functions, the ratio the top set's size over the group,
 * and the group has signal when its trained responses' rewards differ, in total or in any role.
 */
export function executionSignal(ex: ExecutionRecord, view: ScoredGroupView): MethodSignal {
  const ran = ex.matrix.map((row) => row.some((o) => o === 'pass' || o === 'fail'));
  const clusterCounts = ex.sets.map((set) => set.solutions.filter((r) => ran[r]).length).filter((n) => n > 0);
  const top = ex.top === null ? null : ex.sets[ex.top];
  const differ = (xs: readonly (number | null)[]) => {
    const known = view.chosen.map((i) => xs[i]).filter((x): x is number => x !== null);
    return known.some((x) => x !== known[0]);
  };
  return {
    answered: ran.filter(Boolean).length,
    clusterCounts,
    majorityRatio: top === null || ex.matrix.length === 0 ? 0 : top.solutions.length / ex.matrix.length,
    tied: top !== null && ex.sets.length > 1 && ex.sets[1].score === top.score,
    hasSignal: differ(view.score.rewards) || (view.score.roles?.rewards.some(differ) ?? false),
  };
}

/**
 * The self-debugging turn of a group: every response with a function that fails some test is
 * continued with `debugMessage`; each revision's function runs against the group's tests, and its
 * reward is its set's score in the dual agreement of the group's functions and the revisions.
 */
async function debugTurn(
  s: { codeLanguage: SandboxLanguage; codeTimeoutMs: number },
  revise: NonNullable<ScorerContext['revise']>,
  parsed: readonly { solution: string | null }[],
  tests: readonly string[],
  cells: readonly (readonly ExecutionCell[])[],
  matrix: readonly (readonly Outcome[])[],
): Promise<{ revisions: ScoredRevision[]; records: RevisionRecord[]; stats: Record<string, number> }> {
  const requests = parsed.flatMap((p, r) => (p.solution !== null && matrix[r].some((o) => o !== 'pass') ? [{ sample: r, message: debugMessage(tests, cells[r], s.codeLanguage) }] : []));
  const replies = requests.length ? await revise(requests) : [];
  const kept = requests.flatMap((q, j) => (replies[j] ? [{ q, reply: replies[j] }] : []));
  const solutions = kept.map(({ reply }) => parseCodeResponse(reply.text, s.codeLanguage).solution);
  const rows = await executionMatrix(
    sandbox(),
    s.codeLanguage,
    solutions.map((x) => x ?? ''),
    tests,
    { timeoutMs: s.codeTimeoutMs },
  );
  const together = dualAgreement([...matrix, ...rows]);
  const rewards = rows.map((_, j) => together.solutionRewards[matrix.length + j]);
  const passes = (row: readonly Outcome[]) => row.filter((o) => o === 'pass').length / row.length;
  return {
    revisions: kept.map(({ q, reply }, j) => ({ ...reply, sample: q.sample, reward: rewards[j] })),
    records: kept.map(({ q, reply }, j) => ({ sample: q.sample, feedback: q.message, text: reply.text, solution: solutions[j], row: rows[j], reward: rewards[j] })),
    stats: {
      debug_turns: parsed.length ? requests.length / parsed.length : 0,
      ...(kept.length && { debug_pass_gain: mean(kept.map(({ q }, j) => passes(rows[j]) - passes(matrix[q.sample]))) }),
    },
  };
}
