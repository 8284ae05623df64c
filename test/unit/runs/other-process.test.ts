// Stop, pause and delete of a run another process is training (issue 21.1), with two real
// processes on one data folder: `autodidact run ... --steps 250` as a child process, and the API
// service in this process, as `autodidact serve` would answer the page. Before, runs.stop
// answered "stopped" while the terminal kept training, and runs.delete removed the run under it
// ("No run 1"). Now delete (of the run, or of its dataset) is refused naming the process, and
// stop / pause reach it: the terminal run ends after its current step with a checkpoint there.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRun, latestCheckpoint, listSteps, openDatabase } from '../../../main/db/index.ts';
import { databasePath, runDir } from '../../../main/runs/home.ts';
import { liveRunOwner } from '../../../main/runs/owner.ts';
import { type Harness, createHarness } from '../api/handlers-harness.ts';
import { tempDir } from '../db/helpers.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = path.join(ROOT, 'bin/autodidact.js');
const tmp = tempDir('autodidact-other-process-');
const HOME = tmp.file('home');
const TINY = ['--model', 'tiny-chars', '--dataset', 'arithmetic', '--set', 'promptsPerStep=2', '--set', 'votes=4', '--set', 'trainSamples=2', '--set', 'maxNewTokens=4', '--set', 'valEvery=0', '--set', 'checkpointEvery=0'];

interface Trainer {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  stderr: () => string;
}

/** `autodidact run ...` in a child process on HOME, killed at the end if still alive. */
function train(args: string[]): Trainer {
  const child = spawn(process.execPath, [BIN, 'run', ...args], { cwd: tmp.dir, env: { ...process.env, AUTODIDACT_HOME: HOME, AUTODIDACT_THREADS: '1' } });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done, stderr: () => stderr };
}

const children: ChildProcess[] = [];
let h: Harness;

/** Polls until `fn` is true, failing with the child's output after `ms`. */
async function until(fn: () => boolean, ms: number, t: Trainer): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out; the trainer wrote:\n${t.stderr()}`);
    if (t.child.exitCode !== null) throw new Error(`the trainer exited (${t.child.exitCode}):\n${t.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Training steps the run has recorded (step 0 is the starting model's validation). */
const trained = (runId: number) => (getRun(h.db, runId)?.currentStep ?? 0) >= 1 && liveRunOwner(HOME, runId) !== null;

beforeAll(() => {
  fs.mkdirSync(HOME, { recursive: true });
  // The API side opens the same database file the trainer writes.
  h = createHarness(HOME);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  h?.close();
  tmp.remove();
});

describe('a run another process is training', () => {
  it('cannot be deleted, nor its dataset; pause and stop reach the trainer, which saves where it stops', async () => {
    const first = train(['--method', 'ttrl', '--steps', '250', '--name', 'terminal', ...TINY]);
    await until(() => trained(1), 120_000, first);
    const pid = first.child.pid!;

    // Delete is refused, naming the process; nothing is removed under it.
    const del = await h.refused('runs.delete', { id: 1 });
    expect(del.code).toBe('CONFLICT');
    expect(del.message).toContain(`is being trained by another process (pid ${pid}`);
    const datasetId = getRun(h.db, 1)!.datasetId!;
    const delData = await h.refused('datasets.delete', { id: datasetId });
    expect(delData.code).toBe('CONFLICT');
    expect(delData.message).toContain(`Run #1 is training on it now (process ${pid})`);
    expect(fs.existsSync(runDir(HOME, 1))).toBe(true);
    expect(getRun(h.db, 1)?.status).toBe('running');

    // Pause reaches it: the terminal run ends 'paused' after its step, with a checkpoint there.
    const paused = await h.call('runs.pause', { id: 1 });
    expect(paused.status).toBe('paused');
    const r1 = await first.done;
    expect(r1.code).toBe(0);
    expect(r1.stderr).toContain(`paused at the request of process ${process.pid}`);
    expect(r1.stdout).toMatch(/run 1 paused at step \d+\/250/);
    const pausedAt = getRun(h.db, 1)!.currentStep!;
    expect(latestCheckpoint(h.db, 1, 'last')?.step).toBe(pausedAt);
    expect(listSteps(h.db, 1).at(-1)).toBe(pausedAt);
    expect(h.events.of('run.status').at(-1)).toMatchObject({ run: { id: 1, status: 'paused' } });

    // Resumed in a terminal again, then stopped from here: it ends 'stopped', keeping every step.
    const second = train(['--resume', '1']);
    await until(() => trained(1) && getRun(h.db, 1)!.currentStep! > pausedAt, 120_000, second);
    const stopped = await h.call('runs.stop', { id: 1 });
    expect(stopped.status).toBe('stopped');
    const r2 = await second.done;
    expect(r2.code).toBe(0);
    expect(r2.stderr).toContain(`stopped at the request of process ${process.pid}`);
    const stoppedAt = getRun(h.db, 1)!.currentStep!;
    expect(stoppedAt).toBeGreaterThan(pausedAt);
    expect(stoppedAt).toBeLessThan(250);
    expect(latestCheckpoint(h.db, 1, 'last')?.step).toBe(stoppedAt);
    // Every step once, none lost to the pause (valEvery=0: no step 0).
    expect(listSteps(h.db, 1)).toEqual(Array.from({ length: stoppedAt }, (_, i) => i + 1));
    // The request is consumed: a later session is not stopped by it.
    expect(fs.readdirSync(runDir(HOME, 1)).filter((f) => f.startsWith('control-request'))).toEqual([]);

    // Nobody trains it now: a second stop says it has ended, and delete goes through.
    expect((await h.refused('runs.stop', { id: 1 })).message).toContain('has already ended (stopped)');
    expect(await h.call('runs.delete', { id: 1 })).toEqual({ deleted: true });
    const check = openDatabase(databasePath(HOME));
    try {
      expect(getRun(check, 1)).toBeUndefined();
    } finally {
      check.close();
    }
  }, 300_000);
});
