// `npm run bench -- sandbox`: executions per second of the code sandbox (main/sandbox/), per
// language, with the pool's workers (default: the machine's cores, at most 2) busy at once. The
// program is what code rewards run most: a small solution and a few asserts against it, each
// execution a fresh namespace (Python) or a fresh QuickJS runtime (JavaScript). Start-up (the
// interpreters loading) is timed apart from the executions.
//
// Measured on the 2-core development machine (shared with other work, 10 s per language, 2
// workers): JavaScript 2,043 executions/s (start 3.7 s), Python 536 executions/s (start 24.9 s
// for two Pyodide workers loading at once).
import os from 'node:os';
import { SandboxPool } from '../main/sandbox/pool.ts';
import type { SandboxLanguage } from '../main/sandbox/protocol.ts';
import { round } from './common.ts';

export const SANDBOX_BENCH_DEFAULTS = { seconds: 10 };

const PROGRAMS: Record<SandboxLanguage, string> = {
  python: `def add_digits(n):
    return sum(int(c) for c in str(abs(n)))

assert add_digits(123) == 6
assert add_digits(-45) == 9
assert add_digits(0) == 0
`,
  javascript: `function addDigits(n) {
  return String(Math.abs(n)).split('').reduce((s, c) => s + Number(c), 0);
}
if (addDigits(123) !== 6 || addDigits(-45) !== 9 || addDigits(0) !== 0) throw new Error('wrong');
`,
};

export interface SandboxBenchRow {
  bench: 'sandbox';
  language: SandboxLanguage;
  workers: number;
  cores: number;
  start_s: number;
  executions: number;
  seconds: number;
  executions_per_s: number;
  failed: number;
}

export async function sandboxBench(options: { seconds: number; workers?: number }, print: (row: SandboxBenchRow) => void): Promise<SandboxBenchRow[]> {
  const rows: SandboxBenchRow[] = [];
  for (const language of ['javascript', 'python'] as const) {
    const pool = new SandboxPool({ size: options.workers, timeoutMs: 10_000 });
    try {
      const t0 = performance.now();
      await pool.warm(language);
      const start = (performance.now() - t0) / 1000;
      const workers = options.workers ?? Math.max(1, Math.min(2, os.availableParallelism()));
      let executions = 0;
      let failed = 0;
      const began = performance.now();
      const until = began + options.seconds * 1000;
      // As many callers as workers, each running the next program as soon as its last one answers.
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (performance.now() < until) {
            const r = await pool.run(language, PROGRAMS[language]);
            executions++;
            if (r.status !== 'ok') failed++;
          }
        }),
      );
      const seconds = (performance.now() - began) / 1000;
      const row: SandboxBenchRow = {
        bench: 'sandbox',
        language,
        workers,
        cores: os.availableParallelism(),
        start_s: round(start, 2),
        executions,
        seconds: round(seconds, 2),
        executions_per_s: round(executions / seconds, 1),
        failed,
      };
      print(row);
      rows.push(row);
    } finally {
      await pool.close();
    }
  }
  return rows;
}
