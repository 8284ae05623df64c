// The execution matrix through the real sandbox: a task's solutions (right, wrong, broken,
// looping) against its tests, in Python and JavaScript; the cell rules on a fake runner.
import { afterAll, describe, expect, it } from 'vitest';
import { dualAgreement } from '../../../main/engine/code/consensus.ts';
import { type ProgramRunner, executionMatrix, outcomeOf, passesHidden, testProgram } from '../../../main/engine/code/execute.ts';
import { SandboxPool } from '../../../main/sandbox/pool.ts';

describe('outcomeOf', () => {
  it('reads ok as pass, an AssertionError as fail, any other raise as error, and keeps timeouts', () => {
    expect(outcomeOf({ status: 'ok', output: '', ms: 1 })).toBe('pass');
    expect(outcomeOf({ status: 'error', output: '', error: 'AssertionError', ms: 1 })).toBe('fail');
    expect(outcomeOf({ status: 'error', output: '', error: 'AssertionError: wrong sum', ms: 1 })).toBe('fail');
    expect(outcomeOf({ status: 'error', output: '', error: 'NameError: name "add" is not defined', ms: 1 })).toBe('error');
    expect(outcomeOf({ status: 'error', output: '', error: 'AssertionErrorish: no', ms: 1 })).toBe('error');
    expect(outcomeOf({ status: 'timeout', output: '', error: 'ran past', ms: 1 })).toBe('timeout');
  });

  it('builds each cell from the solution followed by the test, in the matrix order', async () => {
    const seen: string[] = [];
    const fake: ProgramRunner = {
      run: async (_language, code) => {
        seen.push(code);
        return code.includes('bad') ? { status: 'error', output: '', error: 'AssertionError', ms: 0 } : { status: 'ok', output: '', ms: 0 };
      },
    };
    const m = await executionMatrix(fake, 'python', ['s0', 's1 bad'], ['t0', 't1']);
    expect(m).toEqual([
      ['pass', 'pass'],
      ['fail', 'fail'],
    ]);
    expect(seen).toEqual([testProgram('python', 's0', 't0'), testProgram('python', 's0', 't1'), testProgram('python', 's1 bad', 't0'), testProgram('python', 's1 bad', 't1')]);
  });
});

describe('executionMatrix in the sandbox', () => {
  const pool = new SandboxPool({ size: 1, timeoutMs: 5_000 });
  afterAll(() => pool.close());

  it('runs Python solutions against Python tests', async () => {
    const solutions = [
      'def add(a, b):\n    return a + b',
      'def add(a, b):\n    return a + b + 0',
      'def add(a, b):\n    return a - b',
      'def add(a, b) return a + b',
    ];
    const tests = ['assert add(1, 2) == 3', 'assert add(0, 0) == 0', 'assert add(2, -2) == 0', 'assert add(5, 5) == 11'];
    const m = await executionMatrix(pool, 'python', solutions, tests);
    expect(m).toEqual([
      ['pass', 'pass', 'pass', 'fail'],
      ['pass', 'pass', 'pass', 'fail'],
      ['fail', 'pass', 'fail', 'fail'],
      ['error', 'error', 'error', 'error'],
    ]);
    // The two right solutions agree (2 × 3 = 6). Against the others (2 and 3): tests 0 and 2
    // fail or error on both (1), test 1 passes solution 2 (1/2), the wrong test 3 fails the top set (0).
    const a = dualAgreement(m);
    expect(a.sets[0]).toEqual({ solutions: [0, 1], tests: [0, 1, 2], score: 6 });
    expect(a.testRewards).toEqual([1, 1 / 2, 1, 0]);
    expect(await passesHidden(pool, solutions[0], { language: 'python', setup: 'import math', tests: 'assert add(2, 3) == 5\nassert add(-1, 1) == 0' })).toBe('pass');
    expect(await passesHidden(pool, solutions[2], { language: 'python', setup: '', tests: 'assert add(2, 3) == 5' })).toBe('fail');
  });

  it('runs JavaScript solutions against JavaScript tests, a loop as a timeout', async () => {
    const solutions = ['function sq(x) { return x * x; }', 'function sq(x) { while (true) {} }', 'function sq(x) { return x + x; }'];
    const tests = ['assert(sq(3) === 9);', 'assert(sq(2) === 4, "sq(2)");'];
    const m = await executionMatrix(pool, 'javascript', solutions, tests, { timeoutMs: 500 });
    expect(m).toEqual([
      ['pass', 'pass'],
      ['timeout', 'timeout'],
      ['fail', 'pass'],
    ]);
  });
});
