// What a code response holds: the function (the first fenced code block, without its assert
// lines) and the tests (every assert line of every block: Python `assert ...`, JavaScript
// `assert(...)`, one test each). A block the generation cut off before its closing fence
// still counts; a response without a code block has no solution.
import type { SandboxLanguage } from '../../sandbox/protocol.ts';

export interface CodeResponse {
  solution: string | null;
  tests: string[];
}

const FENCE = /```[A-Za-z0-9_+-]*[ \t]*\n([\s\S]*?)(?:```|$)/g;

export function parseCodeResponse(text: string, language: SandboxLanguage): CodeResponse {
  const isAssert = language === 'python' ? /^\s*assert\b/ : /^\s*assert\s*\(/;
  const blocks = [...text.matchAll(FENCE)].map((m) => m[1]);
  if (blocks.length === 0) return { solution: null, tests: [] };
  const tests: string[] = [];
  const solutionLines: string[] = [];
  blocks.forEach((block, i) => {
    for (const line of block.split('\n')) {
      if (isAssert.test(line)) tests.push(line.trim());
      else if (i === 0) solutionLines.push(line);
    }
  });
  const solution = solutionLines.join('\n').trim();
  return { solution: solution === '' ? null : `${solution}\n`, tests };
}
