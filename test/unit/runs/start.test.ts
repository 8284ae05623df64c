// Resuming a run that never trained (saved without starting, or paused while queued): with no
// checkpoint it starts over from step 0, and any step it recorded without one is dropped first.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ExperimentDb, createRun, getRun, listSteps, openDatabase, recordStep, updateRunStatus } from '../../../main/db/index.ts';
import { runDir } from '../../../main/runs/home.ts';
import { RunSetupError, executeRun, prepareResume } from '../../../main/runs/start.ts';

let db: ExperimentDb;
beforeEach(() => {
  db = openDatabase(':memory:');
});
afterEach(() => db.close());

describe('prepareResume without a checkpoint', () => {
  it('starts a run saved without starting from the beginning', () => {
    const run = updateRunStatus(db, createRun(db, { name: 'saved', method: 'ttrl', model: 'm', dataset: 'd', config: { steps: 3 } }).id, 'paused');
    expect(run.status).toBe('paused');
    expect(prepareResume(db, run)).toEqual({ startAfter: 0 });
  });

  it('drops steps recorded before any checkpoint, so they are not recorded twice', () => {
    const run = createRun(db, { name: 'early', method: 'ttrl', model: 'm', dataset: 'd', config: { steps: 3 } });
    recordStep(db, run.id, 0, { metrics: { 'val/maj@4': 0.5 } });
    const paused = updateRunStatus(db, run.id, 'paused');
    expect(prepareResume(db, paused)).toEqual({ startAfter: 0 });
    expect(listSteps(db, run.id)).toEqual([]);
  });

  it('refuses a completed run', () => {
    const run = updateRunStatus(db, createRun(db, { name: 'done', method: 'ttrl', model: 'm', dataset: 'd', config: {} }).id, 'completed');
    expect(() => prepareResume(db, run)).toThrow(/has completed/);
  });
});

describe('executeRun and another live trainer', () => {
  it('refuses to resume a run another live process is training, and changes nothing', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-owner-'));
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const run = updateRunStatus(db, createRun(db, { name: 'busy', method: 'ttrl', model: 'tiny-chars', dataset: 'd', datasetId: null, config: { model: 'tiny-chars', dataset: 'd' } }).id, 'running');
      recordStep(db, run.id, 0, { metrics: { 'val/maj@4': 0.5 } });
      fs.mkdirSync(runDir(home, run.id), { recursive: true });
      fs.writeFileSync(path.join(runDir(home, run.id), 'owner.json'), JSON.stringify({ pid: other.pid, hostname: os.hostname(), startedAt: 'now' }));
      await expect(executeRun(db, home, { ...run, datasetId: 1 }, true)).rejects.toThrow(RunSetupError);
      await expect(executeRun(db, home, { ...run, datasetId: 1 }, true)).rejects.toThrow(`pid ${other.pid}`);
      expect(getRun(db, run.id)!.status).toBe('running');
      expect(listSteps(db, run.id)).toEqual([0]);
    } finally {
      other.kill();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
