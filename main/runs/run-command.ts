// The `run` command of the engine worker (composed in main/worker-commands.ts): trains a run
// recorded in the experiment database, in the worker so the app's main thread never waits on a
// session. The worker opens its own connection to the same database file (WAL: the main thread
// keeps reading, and writing reviews, meanwhile) and reports what the run does as progress
// events, which the run manager turns into the app's live events.
//
// Ending a run early: cancelling the call stops it at the next check (status 'stopped', the
// step in progress dropped); setting the pause flag in `control` ends it at the next step
// boundary with a checkpoint saved there (status 'paused'), so a resume loses nothing.
import { z } from 'zod';
import { type ExperimentDb, getRun, openDatabase } from '../db/index.ts';
import { analysisFailureNote } from '../engine/agent/records.ts';
import { TRAIN_METRICS } from '../engine/rl/metrics.ts';
import { type CommandContext, EngineError } from '../engine/protocol.ts';
import { executeRun } from './start.ts';
import { type LogLevel, PAUSE_REQUESTED, RUN_CONTROL_SLOT, type RunEvent } from './run-control.ts';

export { PAUSE_REQUESTED, RUN_CONTROL_SLOT, type RunEvent } from './run-control.ts';

export const runParams = z.object({
  /** The experiment database the run is recorded in. */
  databaseFile: z.string().min(1),
  /** The data folder (run checkpoints, imported models). */
  home: z.string().min(1),
  runId: z.number().int().nonnegative(),
  /** Continue from the run's last checkpoint. */
  resume: z.boolean(),
  /** Shared with the caller, who flags a pause here (a cancel cannot carry why). */
  control: z.instanceof(SharedArrayBuffer).optional(),
});

/** Up to four significant digits: enough to read a metric in a log line. */
const fmt = (x: number | undefined): string => (x === undefined ? '-' : Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x));

function stepLine(step: number, steps: number, m: Record<string, number>): string {
  const parts = [`step ${step}/${steps}`];
  const add = (label: string, key: string) => m[key] !== undefined && parts.push(`${label} ${fmt(m[key])}`);
  add('reward', TRAIN_METRICS.majorityVotingReward);
  add('majority', TRAIN_METRICS.majorityRatio);
  add('label acc', TRAIN_METRICS.labelAccuracy);
  add('entropy', TRAIN_METRICS.entropy);
  for (const [k, v] of Object.entries(m)) if (k.startsWith('val/')) parts.push(`${k} ${fmt(v)}`);
  if (m[TRAIN_METRICS.timingStep] !== undefined) parts.push(`${fmt(m[TRAIN_METRICS.timingStep])} s`);
  return parts.join(', ');
}

export async function run(params: z.output<typeof runParams>, ctx: CommandContext<RunEvent>) {
  const control = params.control ? new Int32Array(params.control) : null;
  let db: ExperimentDb;
  try {
    // A long busy timeout: the main thread's short writes (reviews, new runs) make a step's
    // commit wait, never fail.
    db = openDatabase(params.databaseFile, { busyTimeoutMs: 60_000 });
  } catch (e) {
    throw new EngineError(`cannot open the experiment database: ${(e as Error).message}`, 'NOT_FOUND', { databaseFile: params.databaseFile });
  }
  try {
    const recorded = getRun(db, params.runId);
    if (!recorded) throw new EngineError(`there is no run ${params.runId} in ${params.databaseFile}`, 'NOT_FOUND', { runId: params.runId });
    const steps = (recorded.config as { steps?: number }).steps ?? 0;
    const log = (level: LogLevel, message: string) => ctx.progress({ kind: 'log', level, message });
    const result = await executeRun(db, params.home, recorded, params.resume, {
      signal: ctx.signal,
      pauseRequested: () => control !== null && Atomics.load(control, RUN_CONTROL_SLOT) === PAUSE_REQUESTED,
      onStart: (startAfter, _run, info) => {
        ctx.progress({ kind: 'start', startAfter, steps, ...info });
        if (info.reviewedLabels > 0) log('info', `${info.reviewedLabels} training prompts use reviewed labels instead of the vote`);
        for (const note of info.promptNotes) log('warn', note);
      },
      onProgress: (p) => ctx.progress({ kind: 'phase', step: p.step, steps: p.totalSteps, phase: p.phase }),
      onWait: (message) => log('warn', message),
      onStep: (record) => {
        const labelAccuracy = record.metrics[TRAIN_METRICS.labelAccuracy];
        ctx.progress({
          kind: 'step',
          step: record.step,
          steps,
          metrics: record.metrics,
          alerts: record.alerts.map((a) => ({ kind: a.kind, message: a.message })),
          checkpoints: record.checkpoints.map((c) => ({ kind: c.kind, path: c.path })),
          groups: record.groups.length,
          labelAccuracy: labelAccuracy === undefined || Number.isNaN(labelAccuracy) ? null : labelAccuracy,
        });
        log('info', stepLine(record.step, steps, record.metrics));
        for (const c of record.checkpoints) log('info', `step ${record.step}: saved the ${c.kind} checkpoint${c.metric ? ` (${c.metric.name} ${fmt(c.metric.value)})` : ''}`);
        for (const a of record.alerts) log('warn', `step ${record.step}: ${a.message}`);
        const analysis = analysisFailureNote(record.step, record.groups.flatMap((g) => g.samples.map((s) => s.episode)));
        if (analysis) log('warn', analysis);
      },
    });
    if (result.requestedBy) log('info', `${result.run.status} at the request of process ${result.requestedBy.pid} (another app or terminal)`);
    return { status: result.run.status, lastStep: result.lastStep, best: result.best };
  } finally {
    db.close();
  }
}
