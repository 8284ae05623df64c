// Child process for crash.test.ts: records steps of a run in a loop until it is killed.
// Usage: node --import tsx crash-writer.ts DB_FILE RUN_ID [PAUSE_AT_STEP]
// It resumes after the run's last recorded step, prints "done N" after each commit, and, when
// it reaches PAUSE_AT_STEP, prints "mid N" from inside that step's transaction (half the step
// written) and stalls there, so the parent can kill it at a known point mid-step.
import fs from 'node:fs';
import { openDatabase } from '../../../main/db/database.ts';
import { updateRunStatus } from '../../../main/db/runs.ts';
import { lastCompletedStep, recordStep } from '../../../main/db/steps.ts';
import { CRASH_SHAPE, makeStep } from './step-fixture.ts';

const { GROUPS, SAMPLES, TOKENS } = CRASH_SHAPE;

const [file, runIdArg, pauseAtArg] = process.argv.slice(2);
const runId = Number(runIdArg);
const pauseAt = pauseAtArg === undefined ? -1 : Number(pauseAtArg);
const db = openDatabase(file);
updateRunStatus(db, runId, 'running');
const sleep = new Int32Array(new SharedArrayBuffer(4));
const t0 = Date.now();
// A safety limit, so an orphaned writer never outlives its test for long.
for (let step = (lastCompletedStep(db, runId) ?? -1) + 1; Date.now() - t0 < 20_000; step++) {
  const rec = makeStep(step, GROUPS, SAMPLES, TOKENS);
  if (step === pauseAt) {
    const sample = rec.rollouts![GROUPS / 2].samples![0];
    const text = sample.text;
    Object.defineProperty(sample, 'text', {
      get() {
        fs.writeSync(1, `mid ${step}\n`);
        Atomics.wait(sleep, 0, 0, 10_000);
        return text;
      },
    });
  }
  recordStep(db, runId, step, rec);
  fs.writeSync(1, `done ${step}\n`);
}
