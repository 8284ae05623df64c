// The run manager: trains recorded runs in the engine worker, one at a time (one onnxruntime
// session at a time), queueing the rest, and turns what the worker reports into the app's live
// events (status, progress with an ETA, metric points, alerts, recorded steps, log lines).
//
// The worker writes the run's steps and status itself, on its own database connection; this side
// reads them back to build events, and keeps each run's log in memory and in `<runDir>/run.log`
// so the log survives a restart.
import fs from 'node:fs';
import path from 'node:path';
import { ApiError, type LogLine, type MetricPoint, type RunProgress, type RunStatus } from '../../contract/index.ts';
import { type ExperimentDb, type RunInfo, getRun, latestCheckpoint, listAlerts, listRuns, updateRunStatus } from '../db/index.ts';
import { PAUSE_REQUESTED, RUN_CONTROL_SLOT, type RunEvent } from '../runs/run-control.ts';
import type { EngineHost } from '../engine/host.ts';
import { EngineError } from '../engine/protocol.ts';
import { RUN_CONFIG_DEFAULTS } from '../engine/rl/config.ts';
import { removeInterruptedSaves } from '../engine/runtime/checkpoints.ts';
import { runDir } from '../runs/home.ts';
import { liveRunOwner, releaseOwnClaim } from '../runs/owner.ts';
import type { WorkerCommands } from '../worker-commands.ts';
import type { EventHub, RunManager, StartOptions } from './interfaces.ts';
import { RunPace } from '../runs/run-pace.ts';
import { toRunView } from './run-view.ts';

export interface RunManagerDeps {
  db: ExperimentDb;
  databaseFile: string;
  home: string;
  engine: Pick<EngineHost<WorkerCommands>, 'call'>;
  events: EventHub;
}

/** Log lines kept in memory per run (the file keeps them all). */
const LOG_MEMORY = 10_000;

interface Active {
  runId: number;
  controller: AbortController;
  control: Int32Array;
  progress: RunProgress;
  /** The pace of its training steps, for the ETA. */
  pace: RunPace;
  /** Settles when the worker call has ended and the run's final status is published. */
  done: Promise<void>;
}

interface Queued {
  runId: number;
  resume: boolean;
}

const LOG_LINE = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (info|warn|error) (.*)$/;

/** The run.log format: one line per entry, continuation lines of a multi-line message indented. */
function formatLog(line: LogLine): string {
  return `${line.time} ${line.level} ${line.message.replace(/\n/g, '\n  ')}\n`;
}

function parseLog(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split('\n')) {
    const m = LOG_LINE.exec(raw);
    if (m) lines.push({ time: m[1], level: m[2] as LogLine['level'], message: m[3] });
    else if (raw.startsWith('  ') && lines.length) lines[lines.length - 1].message += `\n${raw.slice(2)}`;
  }
  return lines;
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export function createRunManager(deps: RunManagerDeps): RunManager {
  const { db, databaseFile, home, engine, events } = deps;
  const queue: Queued[] = [];
  const logs = new Map<number, LogLine[]>();
  let active: Active | null = null;
  let shuttingDown = false;

  const logFile = (runId: number) => path.join(runDir(home, runId), 'run.log');

  const loadLog = (runId: number): LogLine[] => {
    let lines = logs.get(runId);
    if (!lines) {
      let text = '';
      try {
        text = fs.readFileSync(logFile(runId), 'utf8');
      } catch {
        // No log yet (a new run) or an unreadable one: start from nothing.
      }
      lines = parseLog(text).slice(-LOG_MEMORY);
      logs.set(runId, lines);
    }
    return lines;
  };

  const log = (runId: number, level: LogLine['level'], message: string) => {
    const line: LogLine = { time: new Date().toISOString(), level, message };
    const lines = loadLog(runId);
    lines.push(line);
    if (lines.length > LOG_MEMORY) lines.splice(0, lines.length - LOG_MEMORY);
    try {
      fs.mkdirSync(runDir(home, runId), { recursive: true });
      fs.appendFileSync(logFile(runId), formatLog(line));
    } catch (e) {
      // The log is a convenience: a full disk must not take the run down with it.
      if (level !== 'error') console.error(`run ${runId}: cannot write ${logFile(runId)}: ${messageOf(e)}`);
    }
    events.emit('run.log', { runId, lines: [line] });
  };

  const progressOf = (runId: number): RunProgress | null => {
    if (active?.runId === runId) return { ...active.progress };
    if (queue.some((q) => q.runId === runId)) {
      const run = getRun(db, runId);
      const steps = (run?.config as { steps?: number } | undefined)?.steps ?? 0;
      return { step: run?.currentStep ?? 0, steps, phase: 'queued', etaSeconds: null };
    }
    return null;
  };

  const publishStatus = (runId: number) => {
    const run = getRun(db, runId);
    if (run) events.emit('run.status', { run: toRunView(db, run, progressOf(runId)) });
  };

  const setStatus = (runId: number, status: RunStatus, error?: string) => {
    updateRunStatus(db, runId, status, error);
    publishStatus(runId);
  };

  /** How often a run validates, from its stored settings (the ETA adds the validations to come). */
  const valEveryOf = (runId: number): number => {
    const v = (getRun(db, runId)?.config as { valEvery?: unknown } | undefined)?.valEvery;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : RUN_CONFIG_DEFAULTS.valEvery;
  };

  const onEvent = (a: Active, ev: RunEvent) => {
    const { runId } = a;
    switch (ev.kind) {
      case 'start': {
        a.progress = { step: ev.startAfter, steps: ev.steps, phase: 'setup', etaSeconds: null };
        a.pace = new RunPace(ev.steps, valEveryOf(runId));
        const from = ev.resumedFrom ? ` from ${path.basename(ev.resumedFrom)}` : '';
        log(runId, 'info', ev.startAfter > 0 || ev.resumedFrom ? `resumed after step ${ev.startAfter}${from} on ${ev.device}` : `started on ${ev.device}`);
        publishStatus(runId);
        break;
      }
      case 'phase':
        a.pace.phase(ev.phase, performance.now());
        a.progress = { ...a.progress, step: ev.step, steps: ev.steps, phase: ev.phase, etaSeconds: a.pace.eta(performance.now()) };
        events.emit('run.progress', { runId, progress: { ...a.progress } });
        break;
      case 'step': {
        a.pace.step(ev.step, performance.now());
        a.progress = { ...a.progress, step: ev.step, steps: ev.steps, etaSeconds: a.pace.eta(performance.now()) };
        const points: MetricPoint[] = Object.entries(ev.metrics).map(([key, value]) => ({ step: ev.step, key, value: Number.isNaN(value) ? null : value }));
        events.emit('run.metrics', { runId, points });
        events.emit('run.step', { runId, step: ev.step, groups: ev.groups, labelAccuracy: ev.labelAccuracy });
        if (ev.alerts.length) {
          // The worker committed them with the step; their ids come from the database.
          for (const alert of listAlerts(db, runId).filter((x) => x.step === ev.step)) {
            events.emit('run.alert', { runId, alert: { id: alert.id, step: alert.step, kind: alert.kind, message: alert.message, createdAt: alert.createdAt } });
          }
        }
        events.emit('run.progress', { runId, progress: { ...a.progress } });
        break;
      }
      case 'log':
        log(runId, ev.level, ev.message);
        break;
    }
  };

  /** After the worker call: make the recorded status true to what happened, and say so. */
  const finish = (runId: number, outcome: { error?: unknown }) => {
    // The call has ended: no worker of this process trains the run now, even one that died.
    releaseOwnClaim(home, runId);
    let run = getRun(db, runId);
    if (!run) return; // deleted meanwhile
    const at = run.currentStep ?? 0;
    const err = outcome.error;
    if (err === undefined) {
      // A pause before the session's first step leaves no checkpoint (nothing was trained since the last).
      const saved = latestCheckpoint(db, runId, 'last')?.step === at;
      const note = run.status !== 'paused' ? '' : saved ? ' (checkpoint saved; resume to continue)' : at === 0 ? ' (nothing trained yet; a resume starts it over)' : '';
      // A run the loop stopped itself (the signal check) says why.
      if (run.status === 'stopped' && run.error) log(runId, 'warn', `stopped at step ${at}: ${run.error}`);
      else log(runId, 'info', `${run.status} at step ${at}${note}`);
    } else if (err instanceof EngineError && err.code === 'CANCELLED') {
      // Stopped before the run loop could record it (e.g. still setting up).
      if (run.status === 'running' || run.status === 'queued') run = updateRunStatus(db, runId, 'stopped');
      log(runId, 'info', `stopped at step ${at}`);
    } else {
      const message = messageOf(err);
      // The worker marks failures of the run itself; failures before that (a resume that cannot
      // start, a worker that died) are marked here. A completed run stays completed.
      if (run.status !== 'failed' && run.status !== 'completed') run = updateRunStatus(db, runId, 'failed', message);
      log(runId, 'error', `failed: ${message}`);
    }
  };

  const launch = (runId: number, resume: boolean) => {
    const controller = new AbortController();
    const control = new Int32Array(new SharedArrayBuffer(4));
    const run = getRun(db, runId);
    const steps = (run?.config as { steps?: number } | undefined)?.steps ?? 0;
    const a: Active = {
      runId,
      controller,
      control,
      progress: { step: run?.currentStep ?? 0, steps, phase: 'starting', etaSeconds: null },
      pace: new RunPace(steps, 0),
      done: Promise.resolve(),
    };
    active = a;
    a.done = engine
      .call(
        'run',
        { databaseFile, home, runId, resume, control: control.buffer as SharedArrayBuffer },
        {
          signal: controller.signal,
          onProgress: (ev) => {
            // A handler that throws would cancel the call; a failed event must not end the run.
            try {
              onEvent(a, ev);
            } catch (e) {
              console.error(`run ${runId}: handling a ${ev.kind} event failed: ${messageOf(e)}`);
            }
          },
        },
      )
      .then(
        () => finish(runId, {}),
        (error: unknown) => finish(runId, { error }),
      )
      .then(() => {
        active = null;
        publishStatus(runId);
      })
      .catch((e: unknown) => {
        active = null;
        console.error(`run ${runId}: recording how it ended failed: ${messageOf(e)}`);
      })
      .then(next);
  };

  const next = () => {
    if (active || shuttingDown) return;
    const q = queue.shift();
    if (q) launch(q.runId, q.resume);
  };

  const dequeue = (runId: number): boolean => {
    const i = queue.findIndex((q) => q.runId === runId);
    if (i < 0) return false;
    queue.splice(i, 1);
    return true;
  };

  // Runs a process left 'running' or 'queued' when it died cannot be in anyone's engine now;
  // a run the command line is training (its process alive) is left alone.
  for (const run of listRuns(db, { status: ['running', 'queued'] })) {
    if (liveRunOwner(home, run.id)) continue;
    const why =
      run.kind === 'external'
        ? `The process following this run's cluster folder ended${run.currentStep !== null ? ` at step ${run.currentStep}` : ''}; 'autodidact cluster import DIR --follow' reads on from there.`
        : run.status === 'running'
        ? `The app closed while this run was training${run.currentStep !== null ? ` (at step ${run.currentStep})` : ''}; resume it to continue from its last checkpoint.`
        : 'The app closed before this run started (it was waiting in the queue); resume it to train.';
    updateRunStatus(db, run.id, 'stopped', why);
    log(run.id, 'warn', why);
    // Its process died, maybe inside a checkpoint save: its work folders are garbage (tens of GB at 7B).
    removeInterruptedSaves(runDir(home, run.id));
  }

  return {
    start(runId: number, options: StartOptions) {
      const run: RunInfo | undefined = getRun(db, runId);
      if (!run) throw new ApiError('NOT_FOUND', `There is no run ${runId}.`);
      if (active?.runId === runId) throw new ApiError('CONFLICT', `Run ${runId} is already training.`);
      if (queue.some((q) => q.runId === runId)) throw new ApiError('CONFLICT', `Run ${runId} is already waiting in the queue.`);
      if (shuttingDown) throw new ApiError('UNAVAILABLE', 'The app is shutting down; start the run again after it restarts.');
      const owner = liveRunOwner(home, runId);
      if (owner) throw new ApiError('CONFLICT', `Run ${runId} is being trained by another process (pid ${owner.pid}, e.g. 'autodidact run'); stop it there first.`);
      if (options.resume && run.status === 'completed') throw new ApiError('CONFLICT', `Run ${runId} has completed; there is nothing to resume.`);
      if (!options.resume && run.currentStep !== null) {
        throw new ApiError('CONFLICT', `Run ${runId} has recorded steps already; resume it to continue, or start a new run.`);
      }
      if (active) {
        queue.push({ runId, resume: options.resume });
        log(runId, 'info', `queued behind run ${active.runId}${queue.length > 1 ? ` (${queue.length - 1} ahead of it in the queue)` : ''}`);
        setStatus(runId, 'queued');
        return;
      }
      launch(runId, options.resume);
    },

    async pause(runId: number) {
      if (dequeue(runId)) {
        log(runId, 'info', 'paused while waiting in the queue');
        setStatus(runId, 'paused');
        return;
      }
      const a = active;
      if (a?.runId !== runId) return;
      if (Atomics.exchange(a.control, RUN_CONTROL_SLOT, PAUSE_REQUESTED) !== PAUSE_REQUESTED) {
        // Asked before step 1 is under way (setup, the step-0 baseline): it stops before training.
        log(runId, 'info', a.progress.step === 0 ? 'pausing: the run stops before its first step' : `pausing: the run stops after step ${a.progress.step} with a checkpoint`);
      }
      await a.done;
    },

    async stop(runId: number) {
      if (dequeue(runId)) {
        log(runId, 'info', 'stopped while waiting in the queue');
        setStatus(runId, 'stopped');
        return;
      }
      const a = active;
      if (a?.runId !== runId) return;
      if (!a.controller.signal.aborted) log(runId, 'info', 'stopping: the step in progress is dropped (one already in its update is finished and recorded)');
      a.controller.abort();
      await a.done;
    },

    progress: progressOf,

    isActive(runId: number) {
      return active?.runId === runId || queue.some((q) => q.runId === runId);
    },

    log(runId: number, tail: number) {
      const lines = loadLog(runId);
      return lines.slice(Math.max(0, lines.length - tail));
    },

    async shutdown() {
      shuttingDown = true;
      for (const q of queue.splice(0)) {
        log(q.runId, 'info', 'paused: the app is closing');
        setStatus(q.runId, 'paused');
      }
      const a = active;
      if (!a) return;
      Atomics.store(a.control, RUN_CONTROL_SLOT, PAUSE_REQUESTED);
      log(a.runId, 'info', 'pausing: the app is closing');
      await a.done;
    },
  };
}
