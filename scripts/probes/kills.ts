// The kill probe: an uninterrupted reference run, then the same run killed with SIGKILL at
// random moments (a random time into training, while a checkpoint is being saved, right after a
// step is recorded) and resumed until it completes; then every run is checked against the
// reference: each step recorded once, integrity and foreign keys ok, no orphan rows, no work
// folders or owner marks left behind, and the recorded data and the final checkpoint identical
// to the bit.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type Child, type ProbeOptions, type ProbeReport, Rng, round, startCli, tempDir } from './common.ts';

export interface KillOptions extends ProbeOptions {
  /** Steps of each run (every one saves a checkpoint). */
  steps: number;
}

// timer: a random time into training; save: the nth save's work folder appearing (mid-save);
// saved: the nth checkpoint folder appearing (saved, its step not yet recorded: the resume saves
// over it, through an .old- folder); step: right after a step is recorded.
const TRIGGERS = ['timer', 'save', 'saved', 'step'] as const;
type Trigger = (typeof TRIGGERS)[number];

/** Tiny shapes, so a run takes seconds: the point is what a kill leaves, not learning. */
function runArgs(steps: number): string[] {
  const set = ['promptsPerStep=2', 'votes=4', 'trainSamples=2', 'maxNewTokens=4', 'valEvery=3', 'checkpointEvery=1'];
  return ['--method', 'ttrl', '--model', 'tiny-chars', '--dataset', 'arithmetic', '--steps', String(steps), ...set.flatMap((s) => ['--set', s])];
}

const WORK_FOLDER = /^\..+\.(tmp|old)-\d+-[0-9a-f]{8}$/;
// Timings differ between any two runs; everything else a step records must not.
const TIMING_METRIC = /^(timing|perf)\//;

function workFolders(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => WORK_FOLDER.test(n));
  } catch {
    return [];
  }
}

/** Resolves when `text()` matches `re` (polled), or with null when `until` settles first. */
function waitFor(text: () => string, re: RegExp, until: Promise<unknown>): Promise<RegExpExecArray | null> {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setInterval(() => {
      const m = re.exec(text());
      if (m) {
        settled = true;
        clearInterval(timer);
        resolve(m);
      }
    }, 2);
    void until.then(() => {
      if (settled) return;
      clearInterval(timer);
      resolve(re.exec(text()));
    });
  });
}

interface Attempt {
  trigger: Trigger;
  /** The step the attempt resumed after (0: the run's first attempt). */
  after: number;
  killed: boolean;
  /** Work folders of a save (.tmp-, .old-) the killed process left in the run's folder. */
  leftBehind: string[];
}

/**
 * Starts `args`, kills it with SIGKILL at a moment `trigger` picks (unless it ends first), and
 * says what happened. `runFolder` is the run's checkpoint folder; `steps` the run's length.
 */
async function attempt(args: string[], env: Record<string, string>, runFolder: (stderr: string) => string | null, trigger: Trigger, steps: number, trainMs: number, rng: Rng): Promise<Attempt & { child: Child }> {
  const c = startCli(args, env);
  const started = await waitFor(c.stderr, /(?:started|resuming) run (\d+) "[^"]*"(?: after step (\d+))?/, c.done);
  const after = started?.[2] ? Number(started[2]) : 0;
  const result: Attempt & { child: Child } = { trigger, after, killed: false, leftBehind: [], child: c };
  if (!started) return result;
  const folder = runFolder(c.stderr());
  const kill = () => {
    if (c.child.exitCode === null && c.child.signalCode === null && c.child.kill('SIGKILL')) result.killed = true;
  };
  const remaining = Math.max(1, steps - after);
  if (trigger === 'timer') {
    const timer = setTimeout(kill, rng.float() * trainMs * (remaining / steps));
    await c.done;
    clearTimeout(timer);
  } else if (trigger === 'step') {
    const at = after + rng.int(1, remaining);
    await waitFor(c.stderr, new RegExp(`^step ${at}/`, 'm'), c.done);
    kill();
    await c.done;
  } else {
    // The nth save's work folder (or checkpoint folder) appearing, or any .old- one (a save replacing a folder).
    const nth = rng.int(1, remaining);
    let seen = 0;
    const known = new Set<string>(fs.existsSync(folder!) ? fs.readdirSync(folder!) : []);
    const counted = trigger === 'save' ? (n: string) => n.includes('.tmp-') : (n: string) => /^last-\d+$/.test(n);
    const check = () => {
      let names: string[];
      try {
        names = fs.readdirSync(folder!);
      } catch {
        return;
      }
      for (const name of names) {
        if (known.has(name)) continue;
        known.add(name);
        if (name.includes('.old-') || (counted(name) && ++seen === nth)) return kill();
      }
    };
    let watcher: fs.FSWatcher | null = null;
    if (folder) {
      fs.mkdirSync(folder, { recursive: true });
      watcher = fs.watch(folder, check);
    }
    // inotify can coalesce events; a poll backs it up.
    const poll = setInterval(() => folder && check(), 5);
    await c.done;
    clearInterval(poll);
    watcher?.close();
  }
  if (result.killed && folder) result.leftBehind = workFolders(folder);
  return result;
}

type Row = Record<string, unknown>;

function rows(db: Database.Database, sql: string, runId: number): Row[] {
  return (db.prepare(sql).all(runId) as Row[]).map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : v])),
  );
}

/** Everything a run recorded that must come out the same however often it was killed. */
function recorded(db: Database.Database, runId: number): Record<string, Row[]> {
  const metrics = rows(db, 'SELECT step, key, value FROM metrics WHERE run_id = ? ORDER BY step, key', runId).filter((r) => !TIMING_METRIC.test(r.key as string));
  return {
    run: rows(db, 'SELECT status, current_step, best_metric, best_step, error FROM runs WHERE id = ?', runId),
    steps: rows(db, 'SELECT step, tokens FROM steps WHERE run_id = ? ORDER BY step', runId),
    metrics,
    rollouts: rows(
      db,
      'SELECT step, group_idx, item_idx, prompt, pseudo_label, vote_counts, majority_ratio, label_correct, labeled, label_source FROM rollouts WHERE run_id = ? ORDER BY step, group_idx',
      runId,
    ),
    samples: rows(
      db,
      `SELECT r.step, r.group_idx, s.idx, s.text, s.extracted_answer, s.reward, s.advantage, s.used_for_training, s.logprobs, s.entropies,
              s.token_ids, s.self_certainties, s.details, s.judge
         FROM samples s JOIN rollouts r ON r.id = s.rollout_id WHERE r.run_id = ? ORDER BY r.step, r.group_idx, s.idx`,
      runId,
    ),
    checkpoints: rows(db, 'SELECT step, kind, metric FROM checkpoints WHERE run_id = ? ORDER BY step, kind', runId),
    alerts: rows(db, 'SELECT step, kind, message FROM alerts WHERE run_id = ? ORDER BY step, kind, message', runId),
  };
}

/** The first difference between two runs' records, or null. */
export function firstDifference(a: Record<string, Row[]>, b: Record<string, Row[]>): string | null {
  for (const table of Object.keys(a)) {
    const x = a[table];
    const y = b[table];
    const n = Math.max(x.length, y.length);
    for (let i = 0; i < n; i++) {
      const l = JSON.stringify(x[i]);
      const r = JSON.stringify(y[i]);
      if (l !== r) return `${table} row ${i}: reference ${l?.slice(0, 300)} vs ${r?.slice(0, 300)}`;
    }
  }
  return null;
}

const ORPHANS: Record<string, string> = {
  metrics: 'SELECT count(*) FROM metrics m WHERE NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = m.run_id AND s.step = m.step)',
  rollouts: 'SELECT count(*) FROM rollouts r WHERE NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND s.step = r.step)',
  samples: 'SELECT count(*) FROM samples x WHERE NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = x.rollout_id)',
  checkpoints: 'SELECT count(*) FROM checkpoints c WHERE NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = c.run_id AND s.step = c.step)',
  alerts: 'SELECT count(*) FROM alerts a WHERE a.step IS NOT NULL AND a.step > 0 AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = a.run_id AND s.step = a.step)',
  steps: 'SELECT count(*) FROM steps s WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = s.run_id)',
};

function hashFolder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    out[name] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex').slice(0, 16);
  }
  return out;
}

/** What is wrong with run `id` against the reference run `refId` (nothing: []). */
function check(home: string, refId: number, id: number, steps: number): string[] {
  const problems: string[] = [];
  const db = new Database(path.join(home, 'autodidact.db'), { readonly: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') problems.push(`integrity_check: ${String(integrity)}`);
    const fk = db.pragma('foreign_key_check') as unknown[];
    if (fk.length) problems.push(`foreign_key_check: ${fk.length} rows, e.g. ${JSON.stringify(fk[0])}`);
    for (const [table, sql] of Object.entries(ORPHANS)) {
      const n = db.prepare(sql).pluck().get() as number;
      if (n) problems.push(`${n} orphan ${table} rows`);
    }
    // Step 0 is the base model's validation, where the run validates.
    const stepsOf = (run: number) => (db.prepare('SELECT step FROM steps WHERE run_id = ? ORDER BY step').pluck().all(run) as number[]).join(',');
    const expected = stepsOf(refId);
    if (!expected.endsWith(Array.from({ length: steps }, (_, i) => i + 1).join(','))) problems.push(`the reference run recorded steps [${expected}]`);
    if (stepsOf(id) !== expected) problems.push(`run ${id} recorded steps [${stepsOf(id)}], expected [${expected}]`);
    const diff = firstDifference(recorded(db, refId), recorded(db, id));
    if (diff) problems.push(`run ${id} differs from the uninterrupted run: ${diff}`);
  } finally {
    db.close();
  }
  const folder = path.join(home, 'runs', String(id));
  const left = fs.readdirSync(folder).filter((n) => !/^(last|best)-\d+$/.test(n) && n !== 'run.log');
  if (left.length) problems.push(`run ${id}'s folder still holds ${left.join(', ')}`);
  const last = `last-${steps}`;
  for (const name of fs.readdirSync(folder).filter((n) => /^(last|best)-\d+$/.test(n))) {
    const inner = fs.readdirSync(path.join(folder, name)).filter((n) => n.includes('.tmp-'));
    if (inner.length) problems.push(`run ${id}'s ${name} holds unfinished files ${inner.join(', ')}`);
  }
  const refLast = path.join(home, 'runs', String(refId), last);
  if (!fs.existsSync(path.join(folder, last))) problems.push(`run ${id} has no ${last} checkpoint`);
  else {
    const a = hashFolder(refLast);
    const b = hashFolder(path.join(folder, last));
    const differing = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((f) => a[f] !== b[f]);
    if (differing.length) problems.push(`run ${id}'s ${last} differs from the uninterrupted run's in ${differing.join(', ')}`);
  }
  return problems;
}

export async function probeKills(o: KillOptions): Promise<ProbeReport> {
  const t0 = performance.now();
  const rng = new Rng(o.seed);
  const home = tempDir(o.workDir, 'kills-');
  const env = { AUTODIDACT_HOME: home, AUTODIDACT_THREADS: '1' };
  const failures: string[] = [];
  const runFolder = (stderr: string) => {
    const m = /(?:started|resuming) run (\d+)/.exec(stderr);
    return m ? path.join(home, 'runs', m[1]) : null;
  };
  try {
    o.log(`kills: reference run (${o.steps} steps) in ${home}`);
    const ref = startCli(['run', '--name', 'reference', ...runArgs(o.steps)], env);
    const startedRef = await waitFor(ref.stderr, /started run (\d+)/, ref.done);
    const tTrain = performance.now();
    const refDone = await ref.done;
    const trainMs = performance.now() - tTrain;
    if (refDone.code !== 0 || !startedRef) throw new Error(`the reference run failed (exit ${refDone.code}):\n${refDone.stderr}`);
    const refId = Number(startedRef[1]);

    const attempts: Attempt[] = [];
    const runs: number[] = [];
    let kills = 0;
    while (kills < o.count) {
      const name = `killed-${runs.length + 1}`;
      let args = ['run', '--name', name, ...runArgs(o.steps)];
      let id: number | null = null;
      let finished = false;
      while (!finished) {
        const trigger = kills < o.count ? rng.pick(TRIGGERS) : null;
        if (trigger === null) {
          // Every kill spent: the last resume runs to the end.
          const last = await startCli(args, env).done;
          if (last.code !== 0) failures.push(`run ${id}: the final resume exited ${last.code}: ${last.stderr.slice(-500)}`);
          finished = true;
          break;
        }
        const a = await attempt(args, env, runFolder, trigger, o.steps, trainMs, rng);
        const done = await a.child.done;
        id ??= Number(/(?:started|resuming) run (\d+)/.exec(done.stderr)?.[1] ?? NaN);
        const { child: _child, ...record } = a;
        attempts.push(record);
        if (a.killed) {
          kills++;
          o.log(`kills: ${kills}/${o.count} (${trigger}, run ${id} after step ${a.after})${a.leftBehind.length ? `, left ${a.leftBehind.join(' ')}` : ''}`);
        } else if (done.code === 0) finished = true;
        else {
          failures.push(`run ${id}: attempt after step ${a.after} exited ${done.code ?? done.signal} unkilled: ${done.stderr.slice(-500)}`);
          finished = true;
        }
        if (!Number.isFinite(id)) {
          failures.push(`a run's first attempt printed no run id: ${done.stderr.slice(-500)}`);
          break;
        }
        args = ['run', '--resume', String(id)];
      }
      if (id === null || !Number.isFinite(id)) break;
      runs.push(id);
      for (const p of check(home, refId, id, o.steps)) failures.push(p);
    }
    const killed = attempts.filter((a) => a.killed);
    return {
      probe: 'kills',
      seed: o.seed,
      passed: failures.length === 0,
      seconds: round((performance.now() - t0) / 1000, 1),
      failures,
      kills,
      runs: runs.length,
      steps_per_run: o.steps,
      reference_train_s: round(trainMs / 1000, 1),
      by_trigger: Object.fromEntries(TRIGGERS.map((t) => [t, killed.filter((a) => a.trigger === t).length])),
      killed_mid_save: killed.filter((a) => a.leftBehind.length > 0).length,
      tmp_left: killed.flatMap((a) => a.leftBehind).filter((n) => n.includes('.tmp-')).length,
      old_left: killed.flatMap((a) => a.leftBehind).filter((n) => n.includes('.old-')).length,
      attempts: attempts.length,
    };
  } catch (e) {
    failures.push((e as Error).message);
    return { probe: 'kills', seed: o.seed, passed: false, seconds: round((performance.now() - t0) / 1000, 1), failures };
  } finally {
    if (!o.keep) fs.rmSync(home, { recursive: true, force: true });
  }
}
