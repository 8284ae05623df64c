// A large dataset import while `autodidact run` trains in another process on the same data
// folder. The import writes its items in short transactions under a dataset nobody sees until
// it is published, so the run's step writes wait a moment, never past their busy timeout; an
// import in one long transaction held the lock for seconds and the run failed ("locked by
// another process; step N … not saved"). The run's busy timeout is lowered to 200 ms
// (AUTODIDACT_BUSY_TIMEOUT_MS) so an import of this size is enough to show it.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { getDataset, getRun, importDataset, listSteps, openDatabase } from '../../../main/db/index.ts';
import { loadDataset } from '../../../main/engine/tasks/datasets.ts';
import { databasePath } from '../../../main/runs/home.ts';
import { tempDir } from '../db/helpers.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = path.join(ROOT, 'bin/autodidact.js');
const tmp = tempDir('autodidact-import-run-');
const HOME = tmp.file('home');
const TINY = ['--model', 'tiny-chars', '--dataset', 'arithmetic', '--set', 'promptsPerStep=2', '--set', 'votes=4', '--set', 'trainSamples=2', '--set', 'maxNewTokens=4', '--set', 'valEvery=0'];

afterAll(() => tmp.remove());

function start(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp.dir, env: { ...process.env, AUTODIDACT_HOME: HOME, AUTODIDACT_THREADS: '1', ...env } });
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  return { child, done, stderr: () => stderr };
}

describe('importing while another process trains', () => {
  it('the run records every step while a 400,000-row import lands whole', async () => {
    const rows = 400_000;
    const file = tmp.file('big.jsonl');
    fs.writeFileSync(file, Array.from({ length: rows }, (_, i) => `{"question": "What is ${i} + 1?", "answer": "${i + 1}"}\n`).join(''));
    // Parsed before the run starts: what matters is the writing, where the lock is held.
    const parsed = loadDataset(file);
    const items = parsed.items.map((it) => ({ prompt: it.prompt, answer: it.answer, metadata: it.metadata }));

    const steps = 150;
    const run = start(['run', '--steps', String(steps), '--name', 'busy', ...TINY], { AUTODIDACT_BUSY_TIMEOUT_MS: '200' });
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (/^step 3\//m.test(run.stderr())) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
      run.done.then(() => {
        clearInterval(timer);
        reject(new Error(`the run ended before the import began:\n${run.stderr()}`));
      }, reject);
    });

    const db = openDatabase(databasePath(HOME));
    try {
      const t0 = new Date().toISOString();
      const d = importDataset(db, { name: 'big', source: file }, items);
      const t1 = new Date().toISOString();
      const r = await run.done;
      expect(r.stderr).not.toMatch(/locked by another process/);
      expect(r.code).toBe(0);
      const runId = (db.sql.prepare("SELECT id FROM runs WHERE name = 'busy'").get() as { id: number }).id;
      expect(getRun(db, runId)).toMatchObject({ status: 'completed', currentStep: steps });
      expect(listSteps(db, runId)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
      // The run went on during the import, not just after it.
      const during = db.sql.prepare('SELECT count(*) AS n FROM steps WHERE run_id = ? AND created_at > ? AND created_at < ?').get(runId, t0, t1) as { n: number };
      expect(during.n).toBeGreaterThan(0);
      expect(getDataset(db, 'big')).toMatchObject({ id: d.id, itemCount: rows, labeledCount: rows });
      expect(db.sql.prepare('SELECT count(*) AS n FROM dataset_items WHERE dataset_id = ?').get(d.id)).toEqual({ n: rows });
      expect(db.sql.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
      run.child.kill('SIGKILL');
    }
  }, 180_000);
});
