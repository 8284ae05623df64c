// The run manager with a real engine worker on the built-in tiny-chars model: a run trains in the
// worker and its live events arrive; pause saves a checkpoint that resume continues from with
// every step recorded exactly once; stop; a second run waits in the queue; reviewed labels
// replace votes; runs a dead process left 'running' are marked stopped on the next start.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventName, Events, RunStatus } from '../../../contract/index.ts';
import { createEventHub } from '../../../main/api/events.ts';
import type { EventHub, RunManager } from '../../../main/api/interfaces.ts';
import { createRunManager } from '../../../main/api/run-manager.ts';
import { toRunView } from '../../../main/api/run-view.ts';
import {
  type ExperimentDb,
  createReview,
  createRun,
  getRun,
  latestCheckpoint,
  listSteps,
  openDatabase,
  rolloutsAtStep,
  samplesOfRollout,
  updateRunStatus,
} from '../../../main/db/index.ts';
import { EngineHost, restartingEngine } from '../../../main/engine/host.ts';
import type { WorkerCommands } from '../../../main/worker-commands.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { databasePath, runDir } from '../../../main/runs/home.ts';
import { claimRun } from '../../../main/runs/owner.ts';
import { createRecordedRun } from '../../../main/runs/start.ts';
import { tempDir } from '../db/helpers.ts';

const tmp = tempDir('autodidact-run-manager-');
const HOME = tmp.file('home');
const DB_FILE = databasePath(HOME);

let db: ExperimentDb;
let engine: EngineHost<WorkerCommands>;
let hub: EventHub;
let manager: RunManager;
const seen: { event: EventName; payload: unknown }[] = [];

async function newRun(steps: number, extra: Record<string, unknown> = {}, target: Record<string, unknown> = {}) {
  const config = parseRunConfig({ method: 'ttrl', seed: 1, steps, promptsPerStep: 2, votes: 4, trainSamples: 2, maxNewTokens: 4, valEvery: 0, checkpointEvery: 0, ...extra });
  return (await createRecordedRun(db, HOME, config, { model: 'tiny-chars', dataset: 'arithmetic', device: 'cpu', difficulty: 1, ...target })).run;
}

const of = <E extends EventName>(event: E, runId: number): Events[E][] =>
  seen
    .filter((s) => s.event === event)
    .map((s) => s.payload as Events[E])
    .filter((p) => ('run' in p ? (p as Events['run.status']).run.id : (p as { runId: number }).runId) === runId);

/** Resolves when an event satisfying `pred` has been delivered (already or later). */
function waitFor<E extends EventName>(event: E, pred: (p: Events[E]) => boolean, ms = 90_000): Promise<Events[E]> {
  const hit = seen.find((s) => s.event === event && pred(s.payload as Events[E]));
  if (hit) return Promise.resolve(hit.payload as Events[E]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event as expected within ${ms} ms`));
    }, ms);
    const off = hub.subscribe((e, p) => {
      if ((e as EventName) === event && pred(p as Events[E])) {
        clearTimeout(timer);
        off();
        resolve(p as Events[E]);
      }
    });
  });
}

const statusIs = (runId: number, status: RunStatus) => waitFor('run.status', (p) => p.run.id === runId && p.run.status === status);

beforeAll(async () => {
  db = openDatabase(DB_FILE);
  engine = await EngineHost.start<WorkerCommands>({ threads: 1 });
  hub = createEventHub({ intervalMs: 20 });
  hub.subscribe((event, payload) => void seen.push({ event, payload }));
  manager = createRunManager({ db, databaseFile: DB_FILE, home: HOME, engine, events: hub });
});

afterAll(async () => {
  await manager?.shutdown();
  hub?.close();
  await engine?.close();
  db?.close();
  tmp.remove();
});

describe('run manager', () => {
  it('trains a run in the engine worker, pushing status, progress, metrics, steps and log', async () => {
    const run = await newRun(3);
    manager.start(run.id, { resume: false });
    expect(manager.isActive(run.id)).toBe(true);
    const done = await statusIs(run.id, 'completed');
    hub.flush();

    expect(done.run).toMatchObject({ currentStep: 3, steps: 3, error: null, keyMetric: { name: 'val/maj@16', value: null } });
    expect(of('run.status', run.id).map((p) => p.run.status)).toEqual(['running', 'completed']);
    expect(listSteps(db, run.id)).toEqual([1, 2, 3]);
    // Every metric point of every step arrived (batched or not), and the last step event.
    const points = of('run.metrics', run.id).flatMap((p) => p.points);
    expect([...new Set(points.map((p) => p.step))]).toEqual([1, 2, 3]);
    expect(points.filter((p) => p.key === 'train/majority_ratio')).toHaveLength(3);
    expect(of('run.step', run.id).at(-1)).toMatchObject({ step: 3, groups: 2 });
    expect(typeof of('run.step', run.id).at(-1)!.labelAccuracy).toBe('number');
    // After the first step the progress has an ETA.
    expect(of('run.progress', run.id).some((p) => p.progress.step >= 1 && p.progress.etaSeconds !== null)).toBe(true);
    expect(manager.progress(run.id)).toBeNull();
    expect(manager.isActive(run.id)).toBe(false);

    const messages = manager.log(run.id, 100).map((l) => l.message);
    expect(messages[0]).toBe('started on cpu');
    expect(messages).toContain('completed at step 3');
    expect(messages.some((m) => /^step 2\/3, reward /.test(m))).toBe(true);
    expect(of('run.log', run.id).flatMap((p) => p.lines.map((l) => l.message))).toEqual(messages);
    expect(fs.readFileSync(path.join(runDir(HOME, run.id), 'run.log'), 'utf8')).toContain('completed at step 3');

    // The worker stored each sample's token ids and each group's label source.
    const [rollout] = rolloutsAtStep(db, run.id, 1);
    expect(rollout.labelSource).toBe('vote');
    const [sample] = samplesOfRollout(db, rollout.id);
    expect(sample.tokenIds).toBeInstanceOf(Int32Array);
    expect(sample.tokenIds!.length).toBe(sample.logprobs!.length);
  });

  it('pause saves a checkpoint where it stops; resume completes with every step exactly once', async () => {
    const run = await newRun(6);
    manager.start(run.id, { resume: false });
    await waitFor('run.step', (p) => p.runId === run.id && p.step >= 1);
    await manager.pause(run.id);

    const paused = getRun(db, run.id)!;
    expect(paused.status).toBe('paused');
    expect(paused.currentStep).toBeGreaterThanOrEqual(1);
    expect(paused.currentStep).toBeLessThan(6);
    // checkpointEvery 0 saves none before the end: this one is the pause's.
    expect(latestCheckpoint(db, run.id, 'last')?.step).toBe(paused.currentStep);
    expect(manager.log(run.id, 1)[0].message).toBe(`paused at step ${paused.currentStep} (checkpoint saved; resume to continue)`);

    manager.start(run.id, { resume: true });
    await statusIs(run.id, 'completed');
    expect(listSteps(db, run.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(manager.log(run.id, 100).map((l) => l.message)).toContain(`resumed after step ${paused.currentStep} from last-${paused.currentStep} on cpu`);
  });

  it('stop ends a run at once, status stopped', async () => {
    const run = await newRun(50);
    manager.start(run.id, { resume: false });
    await waitFor('run.step', (p) => p.runId === run.id && p.step >= 1);
    await manager.stop(run.id);
    const stopped = getRun(db, run.id)!;
    expect(stopped.status).toBe('stopped');
    expect(stopped.currentStep).toBeLessThan(50);
    expect(listSteps(db, run.id)).toEqual(Array.from({ length: stopped.currentStep! }, (_, i) => i + 1));
    expect(manager.log(run.id, 1)[0].message).toBe(`stopped at step ${stopped.currentStep}`);
    expect(manager.isActive(run.id)).toBe(false);
  });

  it('queues a run started while another trains, keeps the order, and drops a stopped queued run', async () => {
    const a = await newRun(2);
    const b = await newRun(2);
    const c = await newRun(2);
    manager.start(a.id, { resume: false });
    manager.start(b.id, { resume: false });
    manager.start(c.id, { resume: false });
    expect(getRun(db, b.id)!.status).toBe('queued');
    expect(manager.progress(b.id)).toMatchObject({ phase: 'queued', steps: 2 });
    expect(manager.isActive(c.id)).toBe(true);
    expect(() => manager.start(b.id, { resume: false })).toThrow(/already waiting/);
    await manager.stop(c.id);
    expect(getRun(db, c.id)!.status).toBe('stopped');

    await statusIs(b.id, 'completed');
    const [ra, rb] = [getRun(db, a.id)!, getRun(db, b.id)!];
    expect(ra.status).toBe('completed');
    // b trained only after a had finished.
    expect(rb.startedAt! >= ra.finishedAt!).toBe(true);
    expect(listSteps(db, b.id)).toEqual([1, 2]);
    expect(listSteps(db, c.id)).toEqual([]);
  });

  it('reviewed labels of an earlier run replace the votes of the prompts they name', async () => {
    const source = await newRun(1);
    manager.start(source.id, { resume: false });
    await statusIs(source.id, 'completed');
    const [reviewed, agreed] = rolloutsAtStep(db, source.id, 1);
    createReview(db, { rolloutId: reviewed.id, verdict: 'override', label: '4242' });
    createReview(db, { rolloutId: agreed.id, verdict: 'agree' });
    expect(toRunView(db, getRun(db, source.id)!, null).reviewCount).toBe(2);

    // Same seed, same dataset: step 1 draws the same two prompts.
    const run = await newRun(1, {}, { reviewsOf: source.id });
    manager.start(run.id, { resume: false });
    await statusIs(run.id, 'completed');
    const groups = rolloutsAtStep(db, run.id, 1);
    const byItem = new Map(groups.map((g) => [g.itemIdx, g]));
    expect(byItem.get(reviewed.itemIdx)).toMatchObject({ pseudoLabel: '4242', labelSource: 'review', labeled: true });
    expect(byItem.get(agreed.itemIdx)).toMatchObject({ pseudoLabel: agreed.pseudoLabel, labelSource: 'review' });
    // Nobody answered 4242: every sample of that group earns 0.
    expect(samplesOfRollout(db, byItem.get(reviewed.itemIdx)!.id).every((s) => s.reward === 0)).toBe(true);
    expect(manager.log(run.id, 100).map((l) => l.message)).toContain('2 training prompts use reviewed labels instead of the vote');
  });

  it('a run that cannot start is marked failed with a reason', async () => {
    const run = await newRun(1);
    fs.rmSync(path.join(HOME, 'nonexistent'), { force: true });
    db.sql.prepare('UPDATE runs SET config = json_set(config, ?, ?) WHERE id = ?').run('$.model', path.join(HOME, 'nonexistent'), run.id);
    manager.start(run.id, { resume: false });
    const failed = await statusIs(run.id, 'failed');
    expect(failed.run.error).toMatch(/nonexistent/);
    expect(manager.log(run.id, 1)[0]).toMatchObject({ level: 'error' });
  });

  it('on start, marks runs a dead process left running or queued as stopped, and keeps their logs', async () => {
    const running = await newRun(2);
    const queued = await newRun(2);
    const elsewhere = await newRun(2);
    updateRunStatus(db, running.id, 'running');
    // A run a live process (the command line, say) is training is left alone.
    updateRunStatus(db, elsewhere.id, 'running');
    const release = claimRun(HOME, elsewhere.id);
    // An imported cluster run whose `autodidact cluster import --follow` died: nothing to resume here.
    const followed = createRun(db, { name: 'verl', kind: 'external', method: 'ttrl', model: 'm', dataset: 'd', config: { steps: 9, external: { source: 'verl', dir: tmp.dir } } });
    updateRunStatus(db, followed.id, 'running');
    // Work folders of checkpoint saves killed mid-way (pid 2^22 + 7: above Linux's pid_max, never alive).
    const leftovers = ['.last-2.tmp-4194311-0badcafe', '.best-1.old-4194311-0badcafe'];
    for (const id of [running.id, elsewhere.id]) for (const name of leftovers) fs.mkdirSync(path.join(runDir(HOME, id), name, 'junk'), { recursive: true });
    fs.mkdirSync(path.join(runDir(HOME, running.id), 'best-1'), { recursive: true });
    // The first run's log, written by the manager above, must be readable by a new one.
    const firstRun = 1;
    const before = manager.log(firstRun, 1000);
    const second = createRunManager({ db, databaseFile: DB_FILE, home: HOME, engine, events: createEventHub() });
    // Cleaned for the dead process's run; the live run's folder is its process's business.
    expect(fs.readdirSync(runDir(HOME, running.id)).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(fs.readdirSync(runDir(HOME, elsewhere.id)).filter((n) => n.startsWith('.')).sort()).toEqual([...leftovers].sort());
    for (const id of [running.id, queued.id]) {
      const r = getRun(db, id)!;
      expect(r.status).toBe('stopped');
      expect(r.error).toMatch(/The app closed (while this run was training|before this run started)/);
      expect(second.log(id, 1)[0]).toMatchObject({ level: 'warn', message: r.error });
    }
    expect(getRun(db, followed.id)).toMatchObject({ status: 'stopped', error: "The process following this run's cluster folder ended; 'autodidact cluster import DIR --follow' reads on from there." });
    expect(second.log(firstRun, 1000)).toEqual(before);
    expect(getRun(db, elsewhere.id)!.status).toBe('running');
    expect(() => second.start(elsewhere.id, { resume: true })).toThrow(/being trained by another process/);
    release();
    createRunManager({ db, databaseFile: DB_FILE, home: HOME, engine, events: createEventHub() });
    expect(getRun(db, elsewhere.id)!.status).toBe('stopped');
  });
});

describe('run manager when the engine worker dies', () => {
  it('fails the run with the reason, and trains on: the run resumes on a new worker', async () => {
    const engine2 = restartingEngine(() => EngineHost.start<WorkerCommands>({ threads: 1 }));
    const hub2 = createEventHub({ intervalMs: 20 });
    const events: { event: EventName; payload: unknown }[] = [];
    hub2.subscribe((event, payload) => void events.push({ event, payload }));
    const manager2 = createRunManager({ db, databaseFile: DB_FILE, home: HOME, engine: engine2, events: hub2 });
    const until = (pred: (e: { event: EventName; payload: unknown }) => boolean) =>
      expect.poll(() => events.some(pred), { timeout: 90_000, interval: 50 }).toBe(true);
    try {
      const run = await newRun(4, { checkpointEvery: 1 });
      manager2.start(run.id, { resume: false });
      await until((e) => e.event === 'run.step' && (e.payload as Events['run.step']).runId === run.id && (e.payload as Events['run.step']).step >= 1);
      // The worker goes away mid-run, as after a failure inside the engine it cannot survive.
      await (await engine2.current()).terminate();
      await until((e) => e.event === 'run.status' && (e.payload as Events['run.status']).run.id === run.id && (e.payload as Events['run.status']).run.status === 'failed');
      // The host's reason, or the worker's own when the stop reached it inside the loop first.
      expect(getRun(db, run.id)!.error).toMatch(/the engine worker exited \(code \d+\) before "run" finished|the engine is stopping/);
      // Not mistaken for a run another process trains, and a new worker takes it.
      manager2.start(run.id, { resume: true });
      await until((e) => e.event === 'run.status' && (e.payload as Events['run.status']).run.id === run.id && (e.payload as Events['run.status']).run.status === 'completed');
      expect(listSteps(db, run.id)).toEqual([1, 2, 3, 4]);
    } finally {
      await manager2.shutdown();
      hub2.close();
      await (await engine2.latest()).close();
    }
  });
});
