// What a code response holds: the function (the first fenced code block, without its assert
// lines) and the tests (every assert line of every block: Python `assert ...`, JavaScript
// `assert(...)`, one test each). A block the generation cut off before its closing fence
// still counts; a response without a code block has no solution.
//
// The two are trained as two roles with advantages of their own (issue 19), so the parse also
// says where in the text the tests were written (`testSpans`), and `tokenRoles` maps that onto
// the response's tokens.
import type { SandboxLanguage } from '../../sandbox/protocol.ts';

export interface CodeResponse {
  solution: string | null;
  tests: string[];
  /** Where each test line lies in the text, [start, end) in characters (the line without its newline), in order. */
  testSpans: [number, number][];
}

const FENCE = /```[A-Za-z0-9_+-]*[ \t]*\n([\s\S]*?)(?:```|$)/g;

export function parseCodeResponse(text: string, language: SandboxLanguage): CodeResponse {
  const isAssert = language === 'python' ? /^\s*assert\b/ : /^\s*assert\s*\(/;
  const blocks = [...text.matchAll(FENCE)].map((m) => ({ body: m[1], start: m.index + m[0].indexOf('\n') + 1 }));
  if (blocks.length === 0) return { solution: null, tests: [], testSpans: [] };
  const tests: string[] = [];
  const testSpans: [number, number][] = [];
  const solutionLines: string[] = [];
  blocks.forEach((block, i) => {
    let at = block.start;
    for (const line of block.body.split('\n')) {
      if (isAssert.test(line)) {
        tests.push(line.trim());
        testSpans.push([at, at + line.length]);
      } else if (i === 0) solutionLines.push(line);
      at += line.length + 1;
    }
  });
  const solution = solutionLines.join('\n').trim();
  return { solution: solution === '' ? null : `${solution}\n`, tests, testSpans };
}

/**
 * Per token, 1 when it writes a test, else 0 (the function, and the text around the code, which
 * the solution's reward answers for). `tokenEnds[j]` is where token j's text ends in `text`. A
 * token belongs to the line of its first non-blank character (a token of blanks alone, to its
 * first character's), so a token that carries a newline and the next line's indent goes with
 * that next line.
 */
export function tokenRoles(text: string, tokenEnds: readonly number[], testSpans: readonly [number, number][]): number[] {
  const inTest = (at: number) => testSpans.some(([s, e]) => at >= s && at < e);
  let start = 0;
  return tokenEnds.map((end) => {
    let at = start;
    while (at < end - 1 && /\s/.test(text[at])) at++;
    start = Math.max(start, end);
    return at < end && inTest(at) ? 1 : 0;
  });
}
