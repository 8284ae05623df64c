// `autodidact run --method <id>` end to end for the certainty, cluster, judge and teacher methods on the built-in tiny-arith
// model (AUTODIDACT_HOME in a temporary folder): each run completes, records its method, its
// own metrics under their reference names, the proxy–truth correlation where it is defined,
// and per sample its reward details and self-certainties.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { executionOfRollout, listRuns, metricKeys, openDatabase, rolloutsAtStep, samplesOfRollout } from '../../main/db/index.ts';
import { databasePath, runDir } from '../../main/runs/home.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';
import { tempDir } from './db/helpers.ts';

const tmp = tempDir('autodidact-cli-methods-');
const HOME = tmp.file('home');
// Small shapes: the point is the plumbing of each method, not learning.
const SMALL = ['--model', 'tiny-arith', '--dataset', 'arithmetic', '--difficulty', '1', '--steps', '2', '--set', 'promptsPerStep=3', '--set', 'maxNewTokens=8', '--set', 'valEvery=0'];

/** `autodidact ...args` on the test's data folder. */
function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { cwd: tmp.dir, env: { AUTODIDACT_HOME: HOME, AUTODIDACT_THREADS: '1' } });
}

afterAll(() => tmp.remove());

describe('autodidact run --method', () => {
  it.each([
    ['self-certainty', ['self_certainty/mean', 'self_certainty/std', 'self_certainty/min', 'self_certainty/max'], 'certainty', { votes: 8, trainSamples: 8, klCoef: 0.005 }],
    ['token-entropy', ['entropy/valid_ratio', 'entropy/all_entropy_mean'], 'entropy', { votes: 5, trainSamples: 5, klCoef: 0.001 }],
    ['semantic-clusters', ['semantic/entropy', 'semantic/skipped_ratio'], 'cluster_share', { votes: 16, trainSamples: 16, klCoef: 0 }],
    ['trajectory-likelihood', ['likelihood/mean_logprob'], 'mean_logprob', { votes: 16, trainSamples: 8, klCoef: 0.001 }],
  ])('%s trains and records its own metrics and reward details', async (method, metrics, part, recipe) => {
    const r = await cli(['run', '--method', method, '--name', method, ...SMALL]);
    expect(r.stderr).toMatch(new RegExp(`started run \\d+ "${method}"`));
    expect(r.code).toBe(0);
    const db = openDatabase(databasePath(HOME));
    try {
      const run = listRuns(db).find((x) => x.name === method)!;
      expect(run).toMatchObject({ status: 'completed', method, currentStep: 2, error: null });
      expect(run.config).toMatchObject({ method, ...recipe });
      const keys = metricKeys(db, run.id);
      for (const key of metrics) expect(keys, key).toContain(key);
      expect(keys).toContain('train/ground_truth_reward');
      // No vote, so no label to be accurate.
      expect(keys).not.toContain('train/label_accuracy');
      const [group] = rolloutsAtStep(db, run.id, 1);
      expect(group.pseudoLabel).toBeNull();
      for (const s of samplesOfRollout(db, group.id)) {
        expect(s.details).toHaveProperty(part);
        expect(s.selfCertainties?.length).toBe(s.tokenIds?.length);
      }
    } finally {
      db.close();
    }
  });

  it('code-consensus ends its process when the run ends (the sandbox’s workers go with the run)', async () => {
    const started = performance.now();
    const args = ['run', '--method', 'code-consensus', '--name', 'code-exits', '--model', 'tiny-coder', '--dataset', 'code-functions-js', '--steps', '1'];
    const settings = ['codeLanguage=javascript', 'maxNewTokens=256', 'promptsPerStep=1', 'votes=4', 'trainSamples=4', 'valEvery=0'];
    const r = await Promise.race([
      cli([...args, ...settings.flatMap((s) => ['--set', s])]),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 60_000)),
    ]);
    expect(r, 'the command did not exit within 60 s of starting').not.toBeNull();
    expect(r!.code, r!.stderr).toBe(0);
    expect(r!.stdout).toMatch(/run \d+ completed at step 1\/1/);
    const db = openDatabase(databasePath(HOME));
    try {
      // The sandbox ran the model's programs: the group's execution record is there.
      const run = listRuns(db).find((x) => x.name === 'code-exits')!;
      const [group] = rolloutsAtStep(db, run.id, 1);
      expect(executionOfRollout(db, group.id)?.matrix.flat().length).toBeGreaterThan(0);
    } finally {
      db.close();
    }
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 90_000);

  it('consistency-judge trains with the frozen judge and records its parts of each reward', async () => {
    // tiny-arith's context is 64 positions: a short judge template (question + response + 7 characters).
    const r = await cli(['run', '--method', 'consistency-judge', '--name', 'judge', ...SMALL, '--set', 'judgeTemplate=Check {question}{response}? ']);
    expect(r.stderr).toMatch(/started run \d+ "judge"/);
    expect(r.code).toBe(0);
    const db = openDatabase(databasePath(HOME));
    try {
      const run = listRuns(db).find((x) => x.name === 'judge')!;
      expect(run).toMatchObject({ status: 'completed', method: 'consistency-judge', currentStep: 2, error: null });
      expect(run.config).toMatchObject({ votes: 8, trainSamples: 8, klCoef: 0.01, advantage: 'drgrpo', judgeMode: 'verdict' });
      const keys = metricKeys(db, run.id);
      for (const key of ['self_judge/judge_score', 'self_judge/factor', 'self_judge/final_reward', 'self_judge/format_penalty', 'self_judge/confident_ratio']) expect(keys, key).toContain(key);
      for (const group of rolloutsAtStep(db, run.id, 1)) {
        for (const s of samplesOfRollout(db, group.id)) {
          const d = s.details!;
          // A verdict probability, and the reward made of its parts.
          expect(d.judge_score).toBeGreaterThanOrEqual(0);
          expect(d.judge_score).toBeLessThanOrEqual(1);
          expect(d.factor).toBeGreaterThanOrEqual(0.8);
          expect(d.factor).toBeLessThanOrEqual(1.2);
          expect(s.reward).toBeCloseTo(Math.min(1, Math.max(0, d.prior * d.factor + d.format_penalty)), 6);
          // What the judge was asked (the template filled in with the prompt and this response) and answered.
          expect(s.judge!.prompt).toBe(`Check ${group.prompt}${s.text}? `);
          expect(typeof s.judge!.response).toBe('string');
        }
      }
    } finally {
      db.close();
    }
  });

  it('co-rewarding trains against its EMA teacher’s labels, logs how right teacher and policy are, and saves the teacher', async () => {
    const r = await cli(['run', '--method', 'co-rewarding', '--name', 'teacher', ...SMALL]);
    expect(r.stderr).toMatch(/started run \d+ "teacher"/);
    expect(r.code).toBe(0);
    const db = openDatabase(databasePath(HOME));
    try {
      const run = listRuns(db).find((x) => x.name === 'teacher')!;
      expect(run).toMatchObject({ status: 'completed', method: 'co-rewarding', currentStep: 2, error: null });
      expect(run.config).toMatchObject({ votes: 8, trainSamples: 8, klCoef: 0.001, teacherAlphaStart: 0.01, teacherAlphaEnd: 1e-5 });
      const keys = metricKeys(db, run.id);
      for (const key of ['coreward/pseudo_acc', 'coreward/pseudo_ref_acc', 'coreward/pseudo_policy_acc', 'coreward/teacher_majority_ratio', 'coreward/policy_teacher_agreement', 'train/label_accuracy']) expect(keys, key).toContain(key);
      // Each group's label is the teacher's, and a sample's reward says whether it agrees.
      for (const group of rolloutsAtStep(db, run.id, 1)) {
        for (const s of samplesOfRollout(db, group.id)) expect(s.reward).toBe(group.pseudoLabel !== null && s.extractedAnswer !== null && Number(s.extractedAnswer) === Number(group.pseudoLabel) ? 1 : 0);
      }
      const last = fs.readdirSync(runDir(HOME, run.id)).find((d) => d.startsWith('last-'))!;
      expect(fs.existsSync(path.join(runDir(HOME, run.id), last, 'teacher.safetensors'))).toBe(true);
    } finally {
      db.close();
    }
  });

  it('any method trains with the critic (advantage gae): verl’s critic metrics are recorded and the critic is saved with the checkpoint', async () => {
    const help = await cli(['run', '--help']);
    for (const name of ['criticLr', 'valueClip', 'gaeLambda', 'criticWarmup']) expect(help.stdout, name).toContain(name);
    const r = await cli(['run', '--method', 'self-certainty', '--name', 'critic', ...SMALL, '--set', 'advantage=gae', '--set', 'criticLr=0.01']);
    expect(r.stderr).toMatch(/started run \d+ "critic"/);
    expect(r.code).toBe(0);
    const db = openDatabase(databasePath(HOME));
    try {
      const run = listRuns(db).find((x) => x.name === 'critic')!;
      expect(run).toMatchObject({ status: 'completed', method: 'self-certainty', currentStep: 2, error: null });
      expect(run.config).toMatchObject({ advantage: 'gae', criticLr: 0.01, gaeGamma: 1, gaeLambda: 1 });
      const keys = metricKeys(db, run.id);
      for (const key of ['critic/vf_loss', 'critic/vf_explained_var', 'critic/values/mean', 'critic/vpred_mean', 'critic/vf_clipfrac', 'self_certainty/mean']) expect(keys, key).toContain(key);
      const last = fs.readdirSync(runDir(HOME, run.id)).find((d) => d.startsWith('last-'))!;
      expect(fs.existsSync(path.join(runDir(HOME, run.id), last, 'critic.safetensors'))).toBe(true);
    } finally {
      db.close();
    }
  });

  it('semantic-clusters with clusterEquivalence judge clusters by the frozen judge and records its questions', async () => {
    const r = await cli(['run', '--method', 'semantic-clusters', '--name', 'judged-clusters', ...SMALL, '--set', 'clusterEquivalence=judge', '--set', 'clusterJudgeTemplate={first}={second}? ']);
    expect(r.code).toBe(0);
    const db = openDatabase(databasePath(HOME));
    try {
      const run = listRuns(db).find((x) => x.name === 'judged-clusters')!;
      expect(run).toMatchObject({ status: 'completed', currentStep: 2, error: null });
      const samples = rolloutsAtStep(db, run.id, 1).flatMap((g) => samplesOfRollout(db, g.id));
      // The first answer of a group starts a cluster unasked; an answer unlike every cluster so far is asked about.
      expect(samples.some((s) => s.judge !== null)).toBe(true);
      for (const s of samples) {
        expect(s.details).toHaveProperty('cluster_share');
        if (s.judge) expect(s.judge.prompt).toMatch(/^.*=.*\? $/s);
      }
    } finally {
      db.close();
    }
  });
});
