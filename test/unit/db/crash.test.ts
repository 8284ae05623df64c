// A writer killed with SIGKILL mid-step: reopening finds an intact database in which every
// recorded step is there exactly once with all its rows, and a resumed writer carries on
// from the last recorded step without duplicating or skipping one.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../main/db/database.ts';
import { createRun } from '../../../main/db/runs.ts';
import { listSteps, rolloutsAtStep, samplesOfRollout } from '../../../main/db/steps.ts';
import { tempDir } from './helpers.ts';
import { CRASH_SHAPE, METRIC_KEYS } from './step-fixture.ts';

const { GROUPS, SAMPLES, TOKENS } = CRASH_SHAPE;

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const tmp = tempDir();
afterAll(() => tmp.remove());

interface Writer {
  child: ChildProcess;
  /** Resolves with the line once the writer prints one that matches. */
  waitFor: (match: (line: string) => boolean) => Promise<string>;
  done: () => number[];
  exited: Promise<NodeJS.Signals | null>;
}

function startWriter(file: string, runId: number, pauseAt?: number): Writer {
  const args = ['--import', 'tsx', WRITER, file, String(runId), ...(pauseAt === undefined ? [] : [String(pauseAt)])];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let buf = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.match(line)) w.resolve(line);
        else waiters.push(w);
      }
    }
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  return {
    child,
    exited,
    done: () => lines.filter((l) => l.startsWith('done ')).map((l) => Number(l.slice(5))),
    waitFor: (match) =>
      new Promise((resolve, reject) => {
        const hit = lines.find(match);
        if (hit) return resolve(hit);
        waiters.push({ match, resolve });
        void exited.then(() => reject(new Error(`writer exited before the expected line; stderr:\n${stderr}`)));
      }),
  };
}

async function kill(w: Writer): Promise<void> {
  w.child.kill('SIGKILL');
  expect(await w.exited).toBe('SIGKILL');
}

/** Checks the file after a crash and returns its recorded steps. */
function verify(file: string, runId: number, committed: number[]): number[] {
  const db = openDatabase(file);
  try {
    expect(db.sql.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.sql.pragma('foreign_key_check')).toEqual([]);
    const steps = listSteps(db, runId);
    // Contiguous from 0: no step missing, none twice (steps has a primary key, and every other
    // table is counted per step below).
    expect(steps).toEqual(steps.map((_, i) => i));
    // Every step the writer saw committed is there.
    for (const s of committed) expect(steps).toContain(s);
    const perStep = (table: string) =>
      db.sql.prepare(`SELECT step, count(*) AS n FROM ${table} WHERE run_id = ? GROUP BY step ORDER BY step`).all(runId);
    expect(perStep('metrics')).toEqual(steps.map((step) => ({ step, n: METRIC_KEYS.length })));
    expect(perStep('rollouts')).toEqual(steps.map((step) => ({ step, n: GROUPS })));
    const samples = db.sql
      .prepare(
        `SELECT r.step AS step, count(*) AS n, sum(length(s.logprobs)) AS bytes FROM samples s
         JOIN rollouts r ON r.id = s.rollout_id WHERE r.run_id = ? GROUP BY r.step ORDER BY r.step`,
      )
      .all(runId);
    expect(samples).toEqual(steps.map((step) => ({ step, n: GROUPS * SAMPLES, bytes: GROUPS * SAMPLES * TOKENS * 4 })));
    const orphans = db.sql.prepare('SELECT count(*) AS n FROM samples WHERE rollout_id NOT IN (SELECT id FROM rollouts)').get();
    expect(orphans).toEqual({ n: 0 });
    // Spot-check content of the last step.
    const last = steps[steps.length - 1];
    const group = rolloutsAtStep(db, runId, last)[GROUPS - 1];
    expect(group.prompt).toBe(`step ${last} prompt ${GROUPS - 1}: what is ${GROUPS - 1} + ${last}?`);
    expect(samplesOfRollout(db, group.id)[3].logprobs![5]).toBeCloseTo(-5 / 7 - last, 5);
    return steps;
  } finally {
    db.close();
  }
}

describe('crash safety', () => {
  it('a writer killed with SIGKILL mid-step leaves no partial step, and resuming continues exactly', async () => {
    const file = tmp.file('crash.db');
    const setup = openDatabase(file);
    const runId = createRun(setup, { name: 'crash', method: 'ttrl', model: 'm', dataset: 'd', config: {} }).id;
    setup.close();

    // 1. Killed at a known point: half of step 5 is written inside its open transaction.
    const w1 = startWriter(file, runId, 5);
    await w1.waitFor((l) => l === 'mid 5');
    await kill(w1);
    expect(w1.done()).toEqual([0, 1, 2, 3, 4]);
    expect(verify(file, runId, w1.done())).toEqual([0, 1, 2, 3, 4]);

    // 2. Resumed, then killed at an arbitrary moment while writing steps as fast as it can.
    const w2 = startWriter(file, runId);
    await w2.waitFor((l) => l === 'done 12');
    await kill(w2);
    expect(w2.done()[0]).toBe(5);
    const after2 = verify(file, runId, w2.done());
    expect(after2.length).toBeGreaterThanOrEqual(13);

    // 3. Resumed again: it starts right after the last recorded step.
    const next = after2.length;
    const w3 = startWriter(file, runId, next + 2);
    await w3.waitFor((l) => l === `mid ${next + 2}`);
    await kill(w3);
    expect(w3.done()).toEqual([next, next + 1]);
    expect(verify(file, runId, w3.done())).toHaveLength(next + 2);
  });
});
