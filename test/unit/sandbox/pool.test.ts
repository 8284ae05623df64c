// The pool's bookkeeping, on QuickJS workers (they start in a moment): more programs than
// workers, results matched to their programs, counts, closing with programs still waiting.
import { describe, expect, it } from 'vitest';
import { SandboxPool } from '../../../main/sandbox/pool.ts';

describe('SandboxPool', () => {
  it('runs more programs than it has workers, each result to its own program', async () => {
    const pool = new SandboxPool({ size: 2, timeoutMs: 2_000 });
    try {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.run('javascript', `console.log(${i} * ${i})`)));
      expect(results.map((r) => r.output)).toEqual(Array.from({ length: 12 }, (_, i) => `${i * i}\n`));
      expect(pool.stats()).toMatchObject({ runs: 12, ok: 12, errors: 0, timeouts: 0, started: 2 });
    } finally {
      await pool.close();
    }
  });

  it('counts errors and timeouts, and a timed-out program does not hold up the next', async () => {
    const pool = new SandboxPool({ size: 1, timeoutMs: 300 });
    try {
      const [loop, thrown, fine] = await Promise.all([
        pool.run('javascript', 'while (true) {}'),
        pool.run('javascript', 'null.x'),
        pool.run('javascript', 'console.log("after")', { timeoutMs: 2_000 }),
      ]);
      expect(loop.status).toBe('timeout');
      expect(loop.error).toMatch(/ran past its 300 ms limit/);
      expect(thrown).toMatchObject({ status: 'error', error: expect.stringMatching(/^TypeError/) });
      expect(fine).toMatchObject({ status: 'ok', output: 'after\n' });
      expect(pool.stats()).toMatchObject({ runs: 3, ok: 1, errors: 1, timeouts: 1 });
    } finally {
      await pool.close();
    }
  });

  it('answers programs still waiting when it closes, and refuses new ones', async () => {
    const pool = new SandboxPool({ size: 1, timeoutMs: 2_000 });
    const waiting = [pool.run('javascript', '1'), pool.run('javascript', '2')];
    await pool.close();
    for (const r of await Promise.all(waiting)) expect(r).toMatchObject({ status: 'error', error: expect.stringMatching(/closed|exited|died/) });
    await expect(pool.run('javascript', '3')).rejects.toThrow('the sandbox pool is closed');
  });

  it('refuses a size that is not a whole number of at least 1', () => {
    expect(() => new SandboxPool({ size: 0 })).toThrow('sandbox size must be a whole number of at least 1 (got 0)');
    expect(() => new SandboxPool({ size: 1.5 })).toThrow('sandbox size must be a whole number of at least 1 (got 1.5)');
  });
});
