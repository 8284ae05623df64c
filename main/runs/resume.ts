// What a resume would throw away. A resume continues from the run's last 'last' checkpoint; a run
// stopped before its first one (checkpointEvery steps apart) has none, and its resume trains it
// again from step 0, replacing every recorded step. The app and the command line ask the person
// first (runs.resume's `restart`, `--restart`); the run's view says it before the click.
import { type ExperimentDb, type RunInfo, lastCompletedStep, latestCheckpoint } from '../db/index.ts';
import { storedConfig } from './key-metric.ts';

/**
 * The last recorded training step of a run that has no checkpoint to resume from: a resume
 * trains steps 1 to it again from scratch. null where a resume loses nothing (a checkpoint, or
 * nothing past the step-0 baseline recorded).
 */
export function stepsLostOnResume(db: ExperimentDb, run: Pick<RunInfo, 'id'>): number | null {
  return db.read(`reading run ${run.id}'s checkpoints`, () => {
    if (latestCheckpoint(db, run.id, 'last')) return null;
    const last = lastCompletedStep(db, run.id);
    return last !== null && last > 0 ? last : null;
  });
}

/** Why a resume of `run` is refused until the person asks for the restart (`remedy` says how). */
export function restartRefusal(run: Pick<RunInfo, 'id' | 'config'>, lastStep: number, remedy: string): string {
  const every = Number(storedConfig(run).checkpointEvery);
  const saves = every > 0 ? `it saves one every ${every} steps` : 'checkpointEvery is 0';
  return (
    `Run ${run.id} has no checkpoint to continue from (${saves}, and it ended after step ${lastStep}), so a resume trains it again from step 0 ` +
    `and replaces its recorded ${lastStep === 1 ? 'step 1' : `steps 1–${lastStep}`}. ${remedy}`
  );
}
