// `autodidact run` end to end on the built-in tiny-chars model (AUTODIDACT_HOME in a temporary
// folder): a 2-step run recorded in the database with its status, steps and samples; and a run
// killed with SIGKILL mid-run that --resume completes with every step exactly once
// (acceptance 2).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { getRun, listSteps, openDatabase, rolloutsAtStep, samplesOfRollout } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { tempDir } from './db/helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin/autodidact.js');
const tmp = tempDir('autodidact-cli-run-');
const HOME = tmp.file('home');
// Tiny shapes: the point is the plumbing, not learning.
const TINY = ['--model', 'tiny-chars', '--dataset', 'arithmetic', '--set', 'promptsPerStep=2', '--set', 'votes=4', '--set', 'trainSamples=2', '--set', 'maxNewTokens=4'];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): { child: ChildProcess; done: Promise<Result>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp.dir, env: { ...process.env, AUTODIDACT_HOME: HOME, AUTODIDACT_THREADS: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done, stderr: () => stderr };
}

const cli = (args: string[]) => start(args).done;

/** Sends `signal` to the run as soon as its progress shows step `step` done. */
function signalAt(run: ReturnType<typeof start>, step: number, signal: NodeJS.Signals): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (new RegExp(`^step ${step}/`, 'm').test(run.stderr())) {
        clearInterval(timer);
        run.child.kill(signal);
        resolve();
      }
    }, 5);
    run.done.then(() => {
      clearInterval(timer);
      reject(new Error(`the run ended before it could be sent ${signal}:\n${run.stderr()}`));
    }, reject);
  });
}

function withDb<T>(fn: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase(databasePath(HOME));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

afterAll(() => tmp.remove());

describe('autodidact run', () => {
  it('trains 2 steps and records the run, its steps and samples', async () => {
    const r = await cli(['run', '--method', 'ttrl', '--steps', '2', '--name', 'tiny', ...TINY, '--set', 'valEvery=0']);
    expect(r.stderr).toMatch(/started run 1 "tiny"/);
    expect(r.code).toBe(0);
    // Not a terminal: one plain progress line per step.
    expect(r.stderr).toMatch(/^step 1\/2 .*maj_ratio/m);
    expect(r.stderr).toMatch(/^step 2\/2 {2}done/m);
    expect(r.stdout).toMatch(/run 1 completed at step 2\/2/);
    withDb((db) => {
      const run = getRun(db, 1)!;
      expect(run).toMatchObject({ status: 'completed', method: 'ttrl', model: 'tiny-chars', currentStep: 2, error: null });
      expect(run.config).toMatchObject({ steps: 2, votes: 4, dataset: 'arithmetic', model: 'tiny-chars' });
      expect(listSteps(db, 1)).toEqual([1, 2]);
      const groups = rolloutsAtStep(db, 1, 1);
      expect(groups).toHaveLength(2);
      expect(groups[0].itemIdx).not.toBeNull();
      const samples = samplesOfRollout(db, groups[0].id);
      expect(samples).toHaveLength(4);
      expect(samples.filter((s) => s.usedForTraining)).toHaveLength(groups[0].labeled ? 2 : 0);
    });
    const shown = await cli(['show', 'tiny']);
    expect(shown.stdout).toMatch(/train\/majority_ratio/);
    expect(fs.readdirSync(path.join(HOME, 'runs', '1'))).toEqual(['last-2']);
    const again = await cli(['run', '--resume', '1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/has completed; there is nothing to resume/);
  });

  it('refuses unknown settings before recording anything', async () => {
    const r = await cli(['run', '--steps', '2', ...TINY, '--set', 'votez=3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown setting votez/);
    expect(withDb((db) => getRun(db, 2))).toBeUndefined();
  });

  it('warns of a weak learning signal; with signalAction=stop stops before the first update (exit 3, the reason recorded) and --resume trains on', async () => {
    // tiny-chars is untrained: it cannot answer the sums, so the pre-flight check finds noise.
    const args = ['run', '--steps', '3', '--name', 'noise', '--model', 'tiny-chars', '--dataset', 'arithmetic', '--difficulty', '1', '--set', 'votes=16', '--set', 'trainSamples=8', '--set', 'maxNewTokens=8', '--set', 'valEvery=0', '--set', 'signalAction=stop'];
    const r = await cli(args);
    expect(r.stderr).toMatch(/^warning: step 1: weak_signal: Pre-flight check \(step 1's rollout, before any update\): weak learning signal: /m);
    expect(r.stdout).toMatch(/run \d+ stopped at step 1\/3/);
    expect(r.stderr).toMatch(/^Stopped by the signal check at step 1 \(signalAction: stop\)/m);
    expect(r.code, r.stderr).toBe(3);
    const id = withDb((db) => (db.sql.prepare("SELECT id FROM runs WHERE name = 'noise'").get() as { id: number }).id);
    withDb((db) => {
      const run = getRun(db, id)!;
      expect(run).toMatchObject({ status: 'stopped', currentStep: 1 });
      expect(run.error).toMatch(/^Stopped by the signal check at step 1 .*weak learning signal: .*Resume to train on past this alert\.$/);
      expect(listSteps(db, id)).toEqual([1]);
      const alerts = db.sql.prepare('SELECT kind FROM alerts WHERE run_id = ?').all(id) as { kind: string }[];
      expect(alerts.map((a) => a.kind)).toEqual(['weak_signal']);
    });
    const resumed = await cli(['run', '--resume', 'noise']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).not.toMatch(/weak_signal/);
    withDb((db) => expect(getRun(db, id)).toMatchObject({ status: 'completed', currentStep: 3, error: null }));
  });

  it("warns when OPID's analyzer gave episodes no skill, with the reason (an endpoint that cannot be reached)", async () => {
    const agent = ['run', '--method', 'agent', '--model', 'tiny-chars', '--dataset', 'household', '--steps', '1'];
    const sets = ['promptsPerStep=1', 'votes=2', 'maxNewTokens=8', 'agentMaxSteps=1', 'agentPromptStyle=compact', 'agentMiniBatch=2', 'valEvery=0', 'opidAnalyzer=endpoint', 'opidAnalyzerUrl=http://127.0.0.1:9/v1', 'opidAnalyzerName=analyst'];
    const r = await cli([...agent, ...sets.flatMap((x) => ['--set', x])]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: step 1: the analyzer gave 2 of 2 episodes no skill (the first: cannot reach the chat endpoint http://127.0.0.1:9/v1/chat/completions');
  }, 120_000);

  it('checks an agent run’s signal too: a step whose tasks give no gradient is a weak signal, and with signalAction=stop no update is made from it', async () => {
    // tiny-chars cannot act in the household: every reward is 0, no advantage, no skill.
    const agent = ['run', '--method', 'agent', '--model', 'tiny-chars', '--dataset', 'household', '--steps', '2', '--name', 'agent-noise'];
    const sets = ['promptsPerStep=1', 'votes=2', 'maxNewTokens=8', 'agentMaxSteps=1', 'agentPromptStyle=compact', 'agentMiniBatch=2', 'valEvery=0', 'agentSignal=outcome', 'signalAction=stop'];
    const r = await cli([...agent, ...sets.flatMap((x) => ['--set', x])]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/weak_signal: Pre-flight check \(step 1's rollout, before any update\): weak learning signal: 0% of the prompts gave any non-zero advantage/);
    withDb((db) => {
      const row = db.sql.prepare("SELECT id, status FROM runs WHERE name = 'agent-noise'").get() as { id: number; status: string };
      expect(row.status).toBe('stopped');
      expect(listSteps(db, row.id)).toEqual([1]);
    });
  }, 120_000);

  it("OPID's analyzer on the policy writes in what room its context leaves (the default 512 tokens are all of tiny-agent's)", async () => {
    const agent = ['run', '--method', 'agent', '--model', 'tiny-agent', '--dataset', 'household', '--steps', '1'];
    const sets = ['promptsPerStep=1', 'votes=2', 'maxNewTokens=8', 'agentMaxSteps=1', 'agentPromptStyle=compact', 'agentMiniBatch=2', 'valEvery=0'];
    const r = await cli([...agent, ...sets.flatMap((x) => ['--set', x])]);
    expect(r.code, r.stderr).toBe(0);
    // It was asked and answered (tiny-agent was never taught to analyse: what it writes is no skill).
    expect(r.stderr).not.toMatch(/does not fit|positions for the analysis/);
    expect(r.stderr).toMatch(/the analyzer gave 2 of 2 episodes no skill \(the first: the answer holds no JSON object; it answered/);
  }, 120_000);

  it('resumes a run killed with SIGKILL: every step exactly once, integrity ok', async () => {
    const steps = 12;
    const run = start(['run', '--steps', String(steps), '--name', 'killed', ...TINY, '--set', 'valEvery=0', '--set', 'checkpointEvery=2']);
    // Kill as soon as a few steps are in (at some point inside a later step).
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (/^step 5\//m.test(run.stderr())) {
          clearInterval(timer);
          run.child.kill('SIGKILL');
          resolve();
        }
      }, 5);
      run.done.then(() => {
        clearInterval(timer);
        reject(new Error(`the run ended before it could be killed:\n${run.stderr()}`));
      }, reject);
    });
    await run.done;
    const before = withDb((db) => ({ run: db.sql.prepare("SELECT id, status FROM runs WHERE name = 'killed'").get() as { id: number; status: string }, }));
    expect(before.run.status).toBe('running');
    // No process trains it now: the listing and show say so, and how to continue.
    const listed = await cli(['runs']);
    expect(listed.stdout).toMatch(new RegExp(`^${before.run.id}\\s+killed\\s+interrupted\\s`, 'm'));
    expect((await cli(['show', 'killed'])).stdout).toContain(`: interrupted (no process trains it any more; continue with 'autodidact run --resume ${before.run.id}')`);
    // A save killed mid-way leaves its work folder (pid 2^22 + 7: above Linux's pid_max, so dead);
    // one a live process (this one) is writing must survive the cleanup.
    const runFolder = path.join(HOME, 'runs', String(before.run.id));
    const deadSave = path.join(runFolder, '.last-6.tmp-4194311-deadbeef');
    const liveSave = path.join(runFolder, `.last-6.tmp-${process.pid}-deadbeef`);
    for (const d of [deadSave, liveSave]) {
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'model.safetensors'), 'partial');
    }
    const resumed = await cli(['run', '--resume', 'killed']);
    expect(resumed.code).toBe(0);
    expect(fs.existsSync(deadSave)).toBe(false);
    expect(fs.existsSync(liveSave)).toBe(true);
    expect(resumed.stderr).toMatch(/resuming run \d+ "killed" after step [2468]/);
    withDb((db) => {
      expect(db.sql.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(listSteps(db, before.run.id)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
      const dup = db.sql.prepare('SELECT count(*) AS n FROM (SELECT step FROM rollouts WHERE run_id = ? GROUP BY step, group_idx HAVING count(*) > 1)').get(before.run.id) as { n: number };
      expect(dup.n).toBe(0);
      expect(getRun(db, before.run.id)).toMatchObject({ status: 'completed', currentStep: steps });
    });
  });

  it('Ctrl-C stops after the step in progress with a checkpoint there, and --resume continues after it', async () => {
    const steps = 8;
    const run = start(['run', '--steps', String(steps), '--name', 'interrupted', ...TINY, '--set', 'valEvery=0', '--set', 'checkpointEvery=100']);
    await signalAt(run, 2, 'SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/interrupted: stopping after the current step, with a checkpoint there/);
    const { id, last } = withDb((db) => {
      const row = db.sql.prepare("SELECT id, status FROM runs WHERE name = 'interrupted'").get() as { id: number; status: string };
      expect(row.status).toBe('stopped');
      return { id: row.id, last: listSteps(db, row.id).at(-1)! };
    });
    expect(last).toBeGreaterThanOrEqual(2);
    expect(last).toBeLessThan(steps);
    expect(fs.readdirSync(path.join(HOME, 'runs', String(id)))).toEqual([`last-${last}`]);
    const resumed = await cli(['run', '--resume', 'interrupted']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming run ${id} "interrupted" after step ${last}`);
    withDb((db) => expect(listSteps(db, id)).toEqual(Array.from({ length: steps }, (_, i) => i + 1)));
  }, 120_000);

  it('refuses to resume a run killed before its first checkpoint unless told to restart it', async () => {
    const steps = 8;
    const run = start(['run', '--steps', String(steps), '--name', 'early', ...TINY, '--set', 'valEvery=0', '--set', 'checkpointEvery=100']);
    // Killed once two steps are in: no checkpoint (the next would be at step 100).
    await signalAt(run, 2, 'SIGKILL');
    await run.done;
    const id = withDb((db) => (db.sql.prepare("SELECT id FROM runs WHERE name = 'early'").get() as { id: number }).id);
    const recorded = withDb((db) => listSteps(db, id));
    expect(recorded.length).toBeGreaterThanOrEqual(2);
    const last = recorded.at(-1)!;

    const refused = await cli(['run', '--resume', 'early']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`Run ${id} has no checkpoint to continue from (it saves one every 100 steps, and it ended after step ${last})`);
    expect(refused.stderr).toContain('Add --restart to do so');
    expect(withDb((db) => listSteps(db, id))).toEqual(recorded);
    expect((await cli(['run', '--restart', ...TINY])).stderr).toMatch(/--restart goes with --resume RUN/);

    const restarted = await cli(['run', '--resume', 'early', '--restart']);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stderr).toMatch(/resuming run \d+ "early"\n/);
    withDb((db) => {
      expect(listSteps(db, id)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
      expect(getRun(db, id)).toMatchObject({ status: 'completed', currentStep: steps });
    });
  }, 120_000);

  it('takes one plain item for a list setting (--set stopStrings=Q:), and a JSON list', async () => {
    const r = await cli(['run', '--steps', '1', '--name', 'lists', ...TINY, '--set', 'valEvery=0', '--set', 'stopStrings=Q:', '--set', 'loraTargets=["q_proj","v_proj"]', '--set', 'mode=lora']);
    expect(r.code, r.stderr).toBe(0);
    withDb((db) => {
      const row = db.sql.prepare("SELECT config FROM runs WHERE name = 'lists'").get() as { config: string };
      expect(JSON.parse(row.config)).toMatchObject({ stopStrings: ['Q:'], loraTargets: ['q_proj', 'v_proj'] });
    });
  });

  it('trains on when the reader of its progress goes away (2>&1 | head)', async () => {
    const run = start(['run', '--steps', '6', '--name', 'unread', ...TINY, '--set', 'valEvery=0']);
    // The first line read, the pipe is closed: every later write to stderr fails with EPIPE.
    await new Promise<void>((resolve) => run.child.stderr!.once('data', () => resolve()));
    run.child.stderr!.destroy();
    expect((await run.done).code).toBe(0);
    withDb((db) => {
      const row = db.sql.prepare("SELECT id, status FROM runs WHERE name = 'unread'").get() as { id: number; status: string };
      expect(row.status).toBe('completed');
      expect(listSteps(db, row.id)).toEqual([1, 2, 3, 4, 5, 6]);
    });
  });
});
