// The execution matrix: every solution a policy wrote for a task run against every test it wrote
// (issue 19), each pair one sandboxed program: the solution, then the test. A test is a few
// assertions (Python `assert`, JavaScript `assert(...)` from the prelude below); a failed one is
// `fail`, anything else the program raises is `error`, running out of time is `timeout`.
// Hidden tests (evaluation only) are run the same way, by `passesHidden`, never by a reward.
import type { SandboxLanguage, SandboxResult } from '../../sandbox/protocol.ts';
import type { Outcome } from './consensus.ts';

/** What runs programs: the app's SandboxPool, or anything with its `run`. */
export interface ProgramRunner {
  run(language: SandboxLanguage, code: string, options?: { timeoutMs?: number }): Promise<SandboxResult>;
}

/** JavaScript has no assert statement: tests call this one, whose failures are `fail`, not `error`. */
export const JS_PRELUDE = `class AssertionError extends Error { constructor(message) { super(message); this.name = 'AssertionError'; } }
function assert(condition, message) { if (!condition) throw new AssertionError(message === undefined ? 'assertion failed' : String(message)); }
`;

/** One program: the solution, then the test (a JavaScript one after the assert prelude). */
export function testProgram(language: SandboxLanguage, solution: string, test: string): string {
  return language === 'python' ? `${solution}\n\n${test}\n` : `${JS_PRELUDE}${solution}\n;\n${test}\n`;
}

/** A sandbox result as a matrix cell: an assertion that failed is `fail`, any other raise `error`. */
export function outcomeOf(result: SandboxResult): Outcome {
  if (result.status === 'ok') return 'pass';
  if (result.status === 'timeout') return 'timeout';
  return /^AssertionError\b/.test(result.error ?? '') ? 'fail' : 'error';
}

/**
 * `matrix[s][t]`: solution s against test t. All pairs are queued at once, so the pool's
 * workers stay busy; the answer's order is the matrix's whatever order they finish in.
 */
export async function executionMatrix(
  runner: ProgramRunner,
  language: SandboxLanguage,
  solutions: readonly string[],
  tests: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<Outcome[][]> {
  return (await executionCells(runner, language, solutions, tests, options)).map((row) => row.map((c) => c.outcome));
}

/** One cell with what the program said: the error's last line, or that it ran out of time (a self-debugging turn shows it). */
export interface ExecutionCell {
  outcome: Outcome;
  error: string | null;
}

/** The matrix with each cell's error message. */
export async function executionCells(
  runner: ProgramRunner,
  language: SandboxLanguage,
  solutions: readonly string[],
  tests: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<ExecutionCell[][]> {
  const cells = solutions.map((solution) =>
    tests.map((test) => runner.run(language, testProgram(language, solution, test), options).then((r) => ({ outcome: outcomeOf(r), error: r.status === 'ok' ? null : (r.error ?? r.status) }))),
  );
  return Promise.all(cells.map((row) => Promise.all(row)));
}

/** Hidden tests of a task (evaluation only): setup code, then assertions against the solution's function. */
export interface HiddenTests {
  language: SandboxLanguage;
  /** Run after the solution, before the tests (MBPP's test_setup_code); may be empty. */
  setup: string;
  /** The assertions (HumanEval's check function and its call, MBPP's test_list), one program. */
  tests: string;
}

/** Whether a solution passes a task's hidden tests: for measurement only (pass@1), never a reward. */
export async function passesHidden(runner: ProgramRunner, solution: string, hidden: HiddenTests, options: { timeoutMs?: number } = {}): Promise<Outcome> {
  const test = hidden.setup ? `${hidden.setup}\n${hidden.tests}` : hidden.tests;
  return outcomeOf(await runner.run(hidden.language, testProgram(hidden.language, solution, test), options));
}
