// The code-consensus method: responses parsed into a function and assert tests, the group's
// tests pooled, the matrix run in the sandbox (JavaScript: QuickJS starts in a moment), and the
// rewards worked out by hand.
import { describe, expect, it } from 'vitest';
import { parseCodeResponse } from '../../../main/engine/code/response.ts';
import { codeConsensus, poolTests } from '../../../main/engine/rl/methods/code-consensus.ts';
import type { ScorerSample } from '../../../main/engine/rl/rewards.ts';
import type { CommonRunConfig } from '../../../main/engine/rl/common-settings.ts';

const sample = (text: string): ScorerSample => ({ text, answer: null, tokenCount: 0, tokenIds: [], logprobs: [], entropies: [], selfCertainties: [] });

describe('parseCodeResponse', () => {
  it('takes the first block as the function and every assert line as a test', () => {
    const text = 'Here:\n```python\ndef f(x):\n    return x + 1\nassert f(1) == 2\n```\nTests:\n```python\nassert f(0) == 1\nprint("hi")\nassert f(-1) == 0\n```\n';
    expect(parseCodeResponse(text, 'python')).toEqual({ solution: 'def f(x):\n    return x + 1\n', tests: ['assert f(1) == 2', 'assert f(0) == 1', 'assert f(-1) == 0'] });
  });

  it('keeps a block the generation cut off, and finds JavaScript asserts', () => {
    expect(parseCodeResponse('```js\nfunction g() { return 1; }\nassert(g() === 1);', 'javascript')).toEqual({ solution: 'function g() { return 1; }\n', tests: ['assert(g() === 1);'] });
  });

  it('has no solution without a code block', () => {
    expect(parseCodeResponse('def f(x): return x', 'python')).toEqual({ solution: null, tests: [] });
  });
});

describe('poolTests', () => {
  it('keeps each test once with all its authors, first written first, at most max', () => {
    expect(poolTests([['a', 'b'], ['b', 'c'], ['d']], 3)).toEqual({ tests: ['a', 'b', 'c'], authors: [[0], [0, 1], [1]] });
  });
});

describe('the code-consensus scorer', () => {
  it('rewards solutions by consensus and tests by discrimination', async () => {
    const right = '```javascript\nfunction double(x) { return 2 * x; }\n```\n';
    const responses = [
      `${right}\`\`\`javascript\nassert(double(2) === 4);\nassert(double(0) === 0);\n\`\`\``,
      `${right}\`\`\`javascript\nassert(double(3) === 6);\n\`\`\``,
      '```javascript\nfunction double(x) { return x + 2; }\n```\n```javascript\nassert(double(2) === 4);\n```',
      'I do not know.',
    ];
    const settings = codeConsensus.settings.parse({ codeLanguage: 'javascript', codeTestWeight: 0.5 });
    const score = await codeConsensus.scorer!(settings, {} as CommonRunConfig)({ prompt: 'double', samples: responses.map(sample) }, {});
    // Tests pooled: t0 double(2) (responses 0 and 2), t1 double(0) (0), t2 double(3) (1).
    // Matrix: 0 and 1 pass all three; 2 (x + 2) passes t0 only; 3 has no function: all errors.
    // Sets: {0,1} 2×3 = 6, {2} 1×1 = 1, {3} 0; over 4 × 3 = 12: 1/2, 1/2, 1/12, 0.
    // Tests against the others (2, 3): t0 passes 2: 1/2; t1 and t2 fail 2: 1.
    // Test credit: response 0 mean(1/2, 1) = 3/4; 1: 1; 2: 1/2; 3: none, 0.
    expect(score.labeled).toBe(true);
    const expected = [1 / 2 + 0.5 * (3 / 4), 1 / 2 + 0.5 * 1, 1 / 12 + 0.5 * (1 / 2), 0];
    score.rewards.forEach((r, i) => expect(r).toBeCloseTo(expected[i], 12));
    expect(score.diagnostics).toEqual({ consensus_size: 2, test_discrimination: (1 / 2 + 1 + 1) / 3, runnable_share: 3 / 4, error_share: 3 / 12, timeout_share: 0, tests: 3 });
    expect(score.details![2]).toEqual({ solution: 1 / 12, tests: 1 / 2, testsWritten: 1, consensusSet: 1 });
    expect(codeConsensus.stepMetrics!([{ score, chosen: [0, 1, 2, 3] }], settings)).toMatchObject({ 'code/consensus_size': 2, 'code/tests': 3 });
  });

  it('gives a group no label when no solution passes any test', async () => {
    const settings = codeConsensus.settings.parse({ codeLanguage: 'javascript' });
    const responses = ['```javascript\nfunction f() { return 1; }\n```\n```javascript\nassert(f() === 2);\n```', 'no code'];
    const score = await codeConsensus.scorer!(settings, {} as CommonRunConfig)({ prompt: 'f', samples: responses.map(sample) }, {});
    expect(score.labeled).toBe(false);
    expect(score.rewards).toEqual([0, 0]);
  });
});
