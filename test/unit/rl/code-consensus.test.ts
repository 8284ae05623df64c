// The code-consensus method: responses parsed into a function and assert tests, the group's
// tests pooled, the matrix run in the sandbox (JavaScript: QuickJS starts in a moment), and the
// rewards worked out by hand.
import { describe, expect, it } from 'vitest';
import { parseCodeResponse, tokenRoles } from '../../../main/engine/code/response.ts';
import { roleTokenAdvantages } from '../../../main/engine/rl/advantages.ts';
import { codeConsensus, debugMessage, executionSignal, poolTests } from '../../../main/engine/rl/methods/code-consensus.ts';
import { signalMetrics, weakSignalReasons } from '../../../main/engine/rl/signal.ts';
import { validationGroup } from '../../../main/engine/rl/loop.ts';
import { validationScores } from '../../../main/engine/rl/metrics.ts';
import type { ExecutionRecord, Outcome } from '../../../main/engine/code/consensus.ts';
import type { ReviseRequest, Revision, ScorerSample } from '../../../main/engine/rl/rewards.ts';
import type { CommonRunConfig } from '../../../main/engine/rl/common-settings.ts';

const sample = (text: string): ScorerSample => ({ text, answer: null, tokenCount: 0, tokenIds: [], logprobs: [], entropies: [], selfCertainties: [] });

describe('parseCodeResponse', () => {
  it('takes the first block as the function and every assert line as a test', () => {
    const text = 'Here:\n```python\ndef f(x):\n    return x + 1\nassert f(1) == 2\n```\nTests:\n```python\nassert f(0) == 1\nprint("hi")\nassert f(-1) == 0\n```\n';
    const parsed = parseCodeResponse(text, 'python');
    expect(parsed).toMatchObject({ solution: 'def f(x):\n    return x + 1\n', tests: ['assert f(1) == 2', 'assert f(0) == 1', 'assert f(-1) == 0'] });
    // Each test's span is its line in the text.
    expect(parsed.testSpans.map(([a, b]) => text.slice(a, b))).toEqual(['assert f(1) == 2', 'assert f(0) == 1', 'assert f(-1) == 0']);
  });

  it('gives each token the role of its first non-blank character', () => {
    const text = '```python\ndef f():\n    return 1\n    assert f() == 1\n```';
    const { testSpans } = parseCodeResponse(text, 'python');
    expect(testSpans.map(([a, b]) => text.slice(a, b))).toEqual(['    assert f() == 1']);
    // Tokens: "```python\n", "def f():", "\n    return", " 1\n    ", "assert", " f() == 1", "\n```".
    const tokens = ['```python\n', 'def f():', '\n    return', ' 1\n    ', 'assert', ' f() == 1', '\n```'];
    expect(tokens.join('')).toBe(text);
    let end = 0;
    const ends = tokens.map((t) => (end += t.length));
    // " 1\n    " starts in the function's line; "\n```" at the newline after the test line.
    expect(tokenRoles(text, ends, testSpans)).toEqual([0, 0, 0, 0, 1, 1, 0]);
  });

  it('keeps a block the generation cut off, and finds JavaScript asserts', () => {
    expect(parseCodeResponse('```js\nfunction g() { return 1; }\nassert(g() === 1);', 'javascript')).toEqual({ solution: 'function g() { return 1; }\n', tests: ['assert(g() === 1);'], testSpans: [[33, 51]] });
  });

  it('has no solution without a code block', () => {
    expect(parseCodeResponse('def f(x): return x', 'python')).toEqual({ solution: null, tests: [], testSpans: [] });
  });
});

describe('poolTests', () => {
  it('keeps each test once with all its authors, first written first, at most max', () => {
    expect(poolTests([['a', 'b'], ['b', 'c'], ['d']], 3)).toEqual({ tests: ['a', 'b', 'c'], authors: [[0], [0, 1], [1]] });
  });
});

describe('roleTokenAdvantages', () => {
  it('gives each role its own group-relative advantage, weighted, on its tokens', () => {
    // Four samples, two roles; sample 3 wrote no tests (null); sample 1 is not chosen.
    const roles = {
      weights: [1, 0.5],
      rewards: [
        [1, 0.9, 0, 0.5],
        [0.2, 1, 0.8, null],
      ],
      tokenRoles: [[0, 0, 1], [0, 1], [1, 0], [0, 0]],
    };
    const out = roleTokenAdvantages(roles, [0, 2, 3], 'drgrpo');
    // Solutions over samples 0, 2, 3: mean 0.5 → +0.5, −0.5, 0. Tests over 0 and 2: mean 0.5 → −0.3, +0.3, × 0.5.
    const expected = [
      [0.5, 0.5, -0.15],
      [0.15, -0.5],
      [0, 0],
    ];
    out.forEach((row, i) => row.forEach((a, j) => expect(a).toBeCloseTo(expected[i][j], 12)));
    // GRPO divides each role by its own std: tests ±0.3/std([0.2, 0.8]) = ±0.3/0.4243 = ±0.7071, × 0.5.
    expect(roleTokenAdvantages(roles, [0, 2, 3], 'grpo')[1][0]).toBeCloseTo(0.5 * 0.3 / Math.sqrt(0.18), 5);
    expect(() => roleTokenAdvantages({ ...roles, tokenRoles: [[2], [0], [0], [0]] }, [0], 'drgrpo')).toThrow(/sample 0 names role 2; the group has 2/);
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
    // The matrix the rewards came from, kept for the task view.
    expect(score.execution).toEqual({
      language: 'javascript',
      solutions: ['function double(x) { return 2 * x; }\n', 'function double(x) { return 2 * x; }\n', 'function double(x) { return x + 2; }\n', null],
      tests: ['assert(double(2) === 4);', 'assert(double(0) === 0);', 'assert(double(3) === 6);'],
      authors: [[0, 2], [0], [1]],
      matrix: [
        ['pass', 'pass', 'pass'],
        ['pass', 'pass', 'pass'],
        ['pass', 'fail', 'fail'],
        ['error', 'error', 'error'],
      ],
      sets: [
        { solutions: [0, 1], tests: [0, 1, 2], score: 6 },
        { solutions: [2], tests: [0], score: 1 },
        { solutions: [3], tests: [], score: 0 },
      ],
      top: 0,
      testRewards: [1 / 2, 1, 1],
    });
    // Without the loop's tokenEnds there are no token spans, so no roles.
    expect(score.roles).toBeUndefined();
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

describe('the code-consensus scorer with separate advantages', () => {
  it('gives the solution and the tests a reward each, and their tokens their roles', async () => {
    const responses = [
      '```javascript\nfunction inc(x) { return x + 1; }\nassert(inc(1) === 2);\n```',
      '```javascript\nfunction inc(x) { return x + 1; }\n```',
      '```javascript\nfunction inc(x) { return x; }\nassert(inc(0) === 0);\n```',
    ];
    // One token per character: each token ends one character further.
    const chars = (text: string): ScorerSample => ({ ...sample(text), tokenIds: [...text].map((c) => c.charCodeAt(0)), tokenCount: text.length });
    const tokenEnds = (ids: readonly number[]) => ids.map((_, j) => j + 1);
    const settings = codeConsensus.settings.parse({ codeLanguage: 'javascript', codeTestWeight: 0.5 });
    expect(settings.codeAdvantages).toBe('separate');
    expect(codeConsensus.tokenAdvantages!(settings)).toBe(true);
    const score = await codeConsensus.scorer!(settings, {} as CommonRunConfig)({ prompt: 'inc', samples: responses.map(chars) }, { tokenEnds });
    // Tests: t0 inc(1) === 2 (response 0), t1 inc(0) === 0 (response 2).
    // Matrix: 0 and 1 pass t0 and fail t1; 2 fails t0, passes t1. Sets {0,1} 2×1 = 2, {2} 1×1 = 1; over 3×2: 1/3, 1/3, 1/6.
    // t0 passes the top set and fails the other (2): 1; t1 fails the top set: 0.
    const roles = score.roles!;
    expect(roles.names).toEqual(['solution', 'tests']);
    expect(roles.weights).toEqual([1, 0.5]);
    roles.rewards[0].forEach((r, i) => expect(r).toBeCloseTo([1 / 3, 1 / 3, 1 / 6][i], 12));
    // Response 1 wrote no test: no tests reward.
    expect(roles.rewards[1]).toEqual([1, null, 0]);
    expect(score.rewards[0]).toBeCloseTo(1 / 3 + 0.5, 12);
    // Response 0's role-1 tokens are exactly its assert line.
    const text = responses[0];
    const testChars = roles.tokenRoles[0].flatMap((r, j) => (r === 1 ? [text[j]] : [])).join('');
    expect(testChars).toBe('assert(inc(1) === 2);');
    expect(roles.tokenRoles[1].every((r) => r === 0)).toBe(true);
    expect(roles.tokenRoles.map((t, i) => t.length === responses[i].length)).toEqual([true, true, true]);
    // shared: no roles, and the method trains with one advantage per response.
    const shared = codeConsensus.settings.parse({ codeLanguage: 'javascript', codeAdvantages: 'shared' });
    expect(codeConsensus.tokenAdvantages!(shared)).toBe(false);
    expect((await codeConsensus.scorer!(shared, {} as CommonRunConfig)({ prompt: 'inc', samples: responses.map(chars) }, { tokenEnds })).roles).toBeUndefined();
  });
});

describe('the code-consensus hidden check (evaluation only)', () => {
  it('runs a response\'s function against its task\'s hidden tests', async () => {
    const settings = codeConsensus.settings.parse({ codeLanguage: 'javascript' });
    const check = codeConsensus.hidden!.check(settings);
    expect(codeConsensus.hidden!.metric).toBe('code/hidden_pass_rate');
    expect(codeConsensus.metrics.map((m) => m.key)).toContain('code/hidden_pass_rate');
    const hidden = JSON.stringify({ kind: 'code', language: 'javascript', entryPoint: 'triple', setup: '', tests: 'assert(triple(2) === 6);\nassert(triple(0) === 0);', reference: null });
    expect(await check('```javascript\nfunction triple(x) { return 3 * x; }\n```', hidden)).toBe('pass');
    expect(await check('```javascript\nfunction triple(x) { return x + 4; }\nassert(triple(2) === 6);\n```', hidden)).toBe('fail');
    expect(await check('no code at all', hidden)).toBe('error');
    // An answer that is not a code task's: nothing to check.
    expect(await check('```javascript\nfunction triple(x) { return 3 * x; }\n```', '42')).toBeNull();
  });
});

describe('the self-debugging turn', () => {
  it('revises the failing functions and rewards each revision by consensus with the group', async () => {
    const right = '```javascript\nfunction inc(x) { return x + 1; }\n';
    const responses = [`${right}assert(inc(1) === 2);\n\`\`\``, `${right}assert(inc(0) === 1);\n\`\`\``, '```javascript\nfunction inc(x) { return x; }\nassert(inc(5) === 6);\n```', 'no code'];
    const asked: ReviseRequest[] = [];
    const revise = async (requests: readonly ReviseRequest[]): Promise<(Revision | null)[]> => {
      asked.push(...requests);
      return requests.map(() => ({ text: '```javascript\nfunction inc(x) { return x + 1; }\n```', promptIds: [1, 2], tokenIds: [3], logprobs: [-0.5] }));
    };
    const on = codeConsensus.settings.parse({ codeLanguage: 'javascript', codeDebugTurn: true });
    expect(codeConsensus.services!.revise!(on)).toEqual({ messageTokens: 192 });
    expect(codeConsensus.services!.revise!(codeConsensus.settings.parse({}))).toBeNull();
    const score = await codeConsensus.scorer!(on, {} as CommonRunConfig)({ prompt: 'inc', samples: responses.map(sample) }, { revise });
    // Tests: t0 inc(1) === 2, t1 inc(0) === 1, t2 inc(5) === 6. Responses 0 and 1 pass all three; 2 fails all; 3 has no function (not revised).
    expect(asked.map((q) => q.sample)).toEqual([2]);
    expect(asked[0].message).toMatch(/^Your function fails these tests:\nassert\(inc\(1\) === 2\); {2}\/\/ AssertionError.*\nassert\(inc\(0\) === 1\); {2}\/\/ .*\nassert\(inc\(5\) === 6\); {2}\/\/ .*\nWrite the corrected function in a code block\.$/);
    // Together: {0, 1, revision} pass all three, 3 × 3 = 9, over 5 functions × 3 tests = 15.
    expect(score.revisions).toEqual([{ text: '```javascript\nfunction inc(x) { return x + 1; }\n```', promptIds: [1, 2], tokenIds: [3], logprobs: [-0.5], sample: 2, reward: 9 / 15 }]);
    expect(score.execution!.revisions).toEqual([
      { sample: 2, feedback: asked[0].message, text: score.revisions![0].text, solution: 'function inc(x) { return x + 1; }\n', row: ['pass', 'pass', 'pass'], reward: 9 / 15 },
    ]);
    expect(score.diagnostics).toMatchObject({ debug_turns: 1 / 4, debug_pass_gain: 1 });
    // The first turn's rewards are those of the group alone.
    const off = await codeConsensus.scorer!(codeConsensus.settings.parse({ codeLanguage: 'javascript' }), {} as CommonRunConfig)({ prompt: 'inc', samples: responses.map(sample) }, {});
    expect(score.rewards).toEqual(off.rewards);
    expect(off.revisions).toBeUndefined();
    // A revision whose hidden-test outcome the loop set is counted in the step's metrics.
    score.execution!.revisions![0].hiddenResult = 'pass';
    expect(codeConsensus.stepMetrics!([{ score, chosen: [0, 1, 2, 3] }], on)).toMatchObject({ 'code/debug_turns': 1 / 4, 'code/debug_pass_gain': 1, 'code/debug_hidden_pass_rate': 1 });
  });

  it('counts a group that wrote no tests as 0 turns, not as a group without the metric', async () => {
    const on = codeConsensus.settings.parse({ codeLanguage: 'javascript', codeDebugTurn: true });
    const revise = async (): Promise<(Revision | null)[]> => {
      throw new Error('no test failed, so no second turn is asked');
    };
    const noTests = await codeConsensus.scorer!(on, {} as CommonRunConfig)({ prompt: 'inc', samples: ['```javascript\nfunction inc(x) { return x + 1; }\n```', 'no code'].map(sample) }, { revise });
    expect(noTests.diagnostics!.debug_turns).toBe(0);
    // Beside a group where one response of two was revised: the step's share is (0 + 1/2) / 2.
    const responses = ['```javascript\nfunction inc(x) { return x; }\nassert(inc(1) === 2);\n```', '```javascript\nfunction inc(x) { return x + 1; }\nassert(inc(1) === 2);\n```'];
    const fixer = async (requests: readonly ReviseRequest[]): Promise<(Revision | null)[]> => requests.map(() => ({ text: responses[1], promptIds: [1], tokenIds: [2], logprobs: [-1] }));
    const revised = await codeConsensus.scorer!(on, {} as CommonRunConfig)({ prompt: 'inc', samples: responses.map(sample) }, { revise: fixer });
    expect(revised.diagnostics!.debug_turns).toBe(1 / 2);
    const groups = [noTests, revised].map((score) => ({ score, chosen: [0, 1] }));
    expect(codeConsensus.stepMetrics!(groups, on)['code/debug_turns']).toBe(1 / 4);
    // Without the setting, no turn is counted at all.
    const off = await codeConsensus.scorer!(codeConsensus.settings.parse({ codeLanguage: 'javascript' }), {} as CommonRunConfig)({ prompt: 'inc', samples: responses.map(sample) }, { revise: fixer });
    expect(off.diagnostics!.debug_turns).toBeUndefined();
  });

  it('names at most four failing tests in its message, and a timeout as such', () => {
    const tests = ['t0', 't1', 't2', 't3', 't4', 't5'];
    const row = tests.map((_, i) => (i === 0 ? { outcome: 'pass' as const, error: null } : i === 1 ? { outcome: 'timeout' as const, error: 'timeout' } : { outcome: 'fail' as const, error: `AssertionError: ${i}` }));
    expect(debugMessage(tests, row, 'python')).toBe('Your function fails these tests:\nt1  # ran out of time\nt2  # AssertionError: 2\nt3  # AssertionError: 3\nt4  # AssertionError: 4\n(and 1 more)\nWrite the corrected function in a code block.');
  });
});

describe('validation of code (the hidden tests, CodeT\'s pass@1 as maj@k)', () => {
  const settings = codeConsensus.settings.parse({ codeLanguage: 'javascript' });
  const hidden = { check: codeConsensus.hidden!.check(settings), choose: codeConsensus.hidden!.choose(settings) };
  const answer = JSON.stringify({ kind: 'code', language: 'javascript', entryPoint: 'triple', setup: '', tests: 'assert(triple(2) === 6);\nassert(triple(0) === 0);', reference: null });
  const response = (body: string, test: string) => `\`\`\`javascript\nfunction triple(x) { return ${body}; }\n${test}\n\`\`\``;

  it('checks every sample against the hidden tests and picks the first function of the top consensus set', async () => {
    // Pooled tests: t0 triple(1) === 3, t1 triple(0) === 0. Functions 1 and 2 (3x) pass both, 0 (x + 2) only t0,
    // 3 wrote none: the top set is {1, 2} (2 × 2), so function 1 is the pick; it passes the hidden tests.
    const right = [response('x + 2', 'assert(triple(1) === 3);'), response('3 * x', 'assert(triple(1) === 3);'), response('3 * x', 'assert(triple(0) === 0);'), 'no code'];
    const g = await validationGroup(right, answer, 'auto', hidden);
    expect(g.hidden).toEqual({ outcomes: ['fail', 'pass', 'pass', 'error'], chosen: 1 });
    // Two wrong functions (x + 2) agree on t0 alone, the right one passes t0 and t1: a tie at 2, the
    // larger set wins, and its first function fails the hidden tests.
    const wrong = [response('x + 2', 'assert(triple(1) === 3);'), response('x + 2', 'assert(triple(1) === 3);'), response('3 * x', 'assert(triple(0) === 0);')];
    const h = await validationGroup(wrong, answer, 'auto', hidden);
    expect(h.hidden).toEqual({ outcomes: ['fail', 'fail', 'pass'], chosen: 0 });
    const s = validationScores([g, h], 'auto');
    expect(s).toEqual({ avg: (2 / 4 + 1 / 3) / 2, maj: 1 / 2, pass: 1 });
    // No tests written: no pick.
    expect((await validationGroup([response('3 * x', ''), 'no code'], answer, 'auto', hidden)).hidden).toEqual({ outcomes: ['pass', 'error'], chosen: null });
  });

  it('leaves an answer that is not a code task\'s to the text, as a method without the check', async () => {
    expect(await validationGroup(['the answer is 42', '41'], '42', 'auto', hidden)).toEqual({ answers: ['42', '41'], truth: '42' });
    expect(await validationGroup(['the answer is 42'], answer, 'auto', null)).toEqual({ answers: ['42'], truth: answer });
  });
});

describe('the signal check of a code group', () => {
  const ex: ExecutionRecord = {
    language: 'python',
    solutions: ['a', 'b', null, 'd'],
    tests: ['t0', 't1'],
    authors: [[0], [1]],
    // 0 and 1 agree on both tests, 2 wrote no function (all errors), 3 timed out on one and failed the other.
    matrix: [
      ['pass', 'pass'],
      ['pass', 'pass'],
      ['error', 'error'],
      ['timeout', 'fail'],
    ],
    sets: [
      { solutions: [0, 1], tests: [0, 1], score: 4 },
      { solutions: [2, 3], tests: [], score: 0 },
    ],
    top: 0,
    testRewards: [1, 1],
  };

  it('counts runnable functions, their consensus sets and whether the trained rewards differ', () => {
    const score = { rewards: [0.5, 0.5, 0, 0], labeled: true };
    expect(executionSignal(ex, { score, chosen: [0, 1, 2, 3] })).toEqual({ answered: 3, clusterCounts: [2, 1], majorityRatio: 2 / 4, tied: false, hasSignal: true });
    // The two trained responses earned the same: nothing to learn, unless a role's rewards differ (null: no tests of its own).
    expect(executionSignal(ex, { score, chosen: [0, 1] }).hasSignal).toBe(false);
    const roles = { names: ['solution', 'tests'], weights: [1, 0.5], rewards: [[0.5, 0.5, 0, 0], [1, null, 0, 0]], tokenRoles: [[], [], [], []] };
    expect(executionSignal(ex, { score: { ...score, roles }, chosen: [0, 1] }).hasSignal).toBe(false);
    expect(executionSignal(ex, { score: { ...score, roles }, chosen: [0, 2] }).hasSignal).toBe(true);
    // The definition reads the group's execution record; a score without one is left to the answers' check.
    expect(codeConsensus.signal!.of({ score: { ...score, execution: ex }, chosen: [0, 1, 2, 3] })).toEqual(executionSignal(ex, { score, chosen: [0, 1, 2, 3] }));
    expect(codeConsensus.signal!.of({ score, chosen: [0] })).toBeNull();
  });

  it('names a runnable function in its alert where TTRL names an answer', () => {
    const own = executionSignal({ ...ex, matrix: ex.matrix.map((): Outcome[] => ['error', 'error']), sets: [{ solutions: [0, 1, 2, 3], tests: [], score: 0 }], top: null }, { score: { rewards: [0, 0, 0, 0], labeled: false }, chosen: [] });
    const metrics = signalMetrics([{ samples: 4, extracted: own.answered, clusterCounts: own.clusterCounts, majorityRatio: own.majorityRatio, tied: own.tied, trainedAdvantages: [], hasSignal: own.hasSignal }]);
    expect(metrics['signal/extraction_rate']).toBe(0);
    expect(weakSignalReasons(metrics, { minExtraction: 0.5, minLift: 0, minGroupsWithSignal: 0 }, codeConsensus.signal!.answered)).toEqual([
      'a runnable function (one that passed or failed a test) was written in 0% of the samples (signalMinExtraction 0.5)',
    ]);
  });
});
