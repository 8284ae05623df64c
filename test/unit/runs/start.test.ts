// Resuming a run that never trained (saved without starting, or paused while queued): with no
// checkpoint it starts over from step 0, and any step it recorded without one is dropped first.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ExperimentDb, createRun, listSteps, openDatabase, recordStep, updateRunStatus } from '../../../main/db/index.ts';
import { prepareResume } from '../../../main/runs/start.ts';

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
