// The actor–critic: the critic's value head and its update against a hand computation, and the
// critic in the real run loop on tiny-arith: verl's critic metrics, the critic saved with every
// checkpoint and restored on resume (a paused and resumed run ends with the critic an
// uninterrupted one has), the critic's warmup, and a resume from a checkpoint without a critic.
import { cp, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { ADAMW_DEFAULTS } from '../../../main/engine/optim/adamw.ts';
import { type RunConfigInput, checkRunConfig, parseRunConfig } from '../../../main/engine/rl/config.ts';
import { type StepRecord, runLoop } from '../../../main/engine/rl/loop.ts';
import { FILES, loadCheckpoint } from '../../../main/engine/runtime/checkpoints.ts';
import { Critic } from '../../../main/engine/runtime/critic.ts';
import { arithmeticItems } from '../../../main/engine/tasks/generators.ts';
import { testDevice } from '../../helpers/device.ts';

describe('the critic (a value head with its own AdamW)', () => {
  it('starts at zero, and its first update moves each parameter by the learning rate against its gradient (Adam’s first step)', async () => {
    // Two positions of hidden size 3; the returns are 1 at both, so every prediction (0) is too low.
    const hidden = Float32Array.of(1, -2, 0.5, 3, 1, -1.5);
    const critic = await Critic.create({ hiddenSize: 3, device: await testDevice(), dtype: 'float32', batch: { size: 1, seqLen: 2 }, cliprange: 0.5, optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0 } });
    try {
      expect(Array.from(await critic.values(hidden))).toEqual([0, 0]);
      const r = await critic.step({ hidden, returns: [1, 1], oldValues: [0, 0], mask: [1, 1] }, 0.1);
      // vf_loss = ½ · mean((0 − 1)²) = 0.5; nothing clipped; the predictions were 0.
      expect(r.vfLoss).toBeCloseTo(0.5, 6);
      expect(r.vfClipfrac).toBe(0);
      expect(r.vpredMean).toBe(0);
      // d/d bias = mean(v − R) = −1; d/d w_j = −mean_t h_tj = −(2, −0.5, −0.5): norm √(1 + 4 + 0.25 + 0.25).
      expect(r.gradNorm).toBeCloseTo(Math.sqrt(5.5), 5);
      // Adam's first step is lr · sign(−gradient), whatever the clipping: w = (0.1, −0.1, −0.1), b = 0.1 (float32).
      const s = critic.state();
      [0.1, -0.1, -0.1].forEach((w, j) => expect(s.weight[j]).toBeCloseTo(w, 5));
      expect(s.bias[0]).toBeCloseTo(0.1, 5);
      expect(s.step).toBe(1);
      // Values: 0.1·1 − 0.1·(−2) − 0.1·0.5 + 0.1 = 0.35; 0.1·3 − 0.1·1 + 0.1·1.5 + 0.1 = 0.45.
      const v = await critic.values(hidden);
      expect(v[0]).toBeCloseTo(0.35, 5);
      expect(v[1]).toBeCloseTo(0.45, 5);

      // A state restored into a new critic predicts the same, and continues from the same update count.
      const again = await Critic.create({ hiddenSize: 3, device: await testDevice(), dtype: 'float32', batch: { size: 1, seqLen: 2 }, cliprange: 0.5, optimizer: ADAMW_DEFAULTS });
      again.restore(s);
      expect(Array.from(await again.values(hidden))).toEqual(Array.from(v));
      expect(again.stepCount).toBe(1);
      await again.release();
      expect(() => critic.restore({ ...s, weight: new Float32Array(5) }, 'ckpt/last-3')).toThrow(/ckpt\/last-3: its critic has a value head of 5 inputs .* hidden size is 3/);
      await expect(critic.values(new Float32Array(5))).rejects.toThrow(/got 5 hidden values; a 1×2 batch of size 3 needs 6/);
    } finally {
      await critic.release();
    }
  });

  it('is a setting of every method: advantage gae with its settings, a warmup below the steps', () => {
    for (const method of ['ttrl', 'self-certainty', 'co-rewarding']) {
      const checked = checkRunConfig({ method, advantage: 'gae' });
      expect(checked.problems).toBeUndefined();
      expect(!checked.problems && checked.config).toMatchObject({ advantage: 'gae', gaeGamma: 1, gaeLambda: 1, valueClip: 0.5, criticLr: 0.001, criticEpochs: 1, criticWarmup: 0 });
    }
    expect(checkRunConfig({ advantage: 'gae', steps: 3, criticWarmup: 3 }).problems).toEqual([
      { setting: 'criticWarmup', message: 'criticWarmup (3) leaves the policy no step to learn in: it must be below steps (3)' },
    ]);
    expect(checkRunConfig({ advantage: 'gae', gaeLambda: 1.5 }).problems?.[0].setting).toBe('gaeLambda');
    // Distillation and agent episodes have no scored samples for a critic to learn from.
    for (const method of ['svd', 'agent']) {
      expect(checkRunConfig({ method, advantage: 'gae' }).problems).toContainEqual({ setting: 'advantage', message: expect.stringMatching(new RegExp(`^advantage gae \\(the learned critic\\) needs a method that scores samples; ${method} \\(pipeline [a-z-]+\\) has none`)) });
    }
  });
});

describe('the critic in the run loop', () => {
  const CONFIG: RunConfigInput = { advantage: 'gae', criticLr: 0.01, mode: 'lora', loraRank: 4, seed: 5, steps: 2, promptsPerStep: 2, votes: 4, trainSamples: 4, maxNewTokens: 6, lr: 0.05, valEvery: 0, checkpointEvery: 1 };
  const items = arithmeticItems({ difficulty: 1, count: 16, seed: 1 });
  let model: HfModel;
  let tmp: string;
  beforeAll(async () => {
    model = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-arith'));
    tmp = await mkdtemp(path.join(os.tmpdir(), 'critic-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  /** Runs the loop, keeping a copy of every checkpoint saved (the loop prunes older ones). */
  async function run(dir: string, extra: { config?: RunConfigInput; resumeFrom?: string; pauseAfter?: number } = {}) {
    const records: StepRecord[] = [];
    const kept: string[] = [];
    const result = await runLoop(
      { config: parseRunConfig({ ...CONFIG, ...extra.config }), model: { ...model, tokenizer: model.tokenizer! }, device: await testDevice(), items, checkpointDir: dir, resumeFrom: extra.resumeFrom },
      {
        onStep: async (r) => {
          records.push(r);
          for (const c of r.checkpoints) {
            const copy = path.join(dir, `kept-${path.basename(c.path)}`);
            await cp(c.path, copy, { recursive: true });
            kept.push(copy);
          }
        },
        pauseRequested: () => extra.pauseAfter !== undefined && records.length === extra.pauseAfter,
      },
    );
    return { records, kept, result };
  }

  let straight: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    straight = await run(path.join(tmp, 'straight'));
  });

  it('logs verl’s critic metrics, gives each trained sample the mean of its token advantages, and saves the critic with each checkpoint', async () => {
    const { records, kept } = straight;
    expect(records.map((r) => r.step)).toEqual([1, 2]);
    for (const r of records) {
      for (const key of ['critic/vf_loss', 'critic/vf_explained_var', 'critic/values/mean', 'critic/vpred_mean', 'critic/vf_clipfrac', 'critic/returns/mean', 'critic/grad_norm', 'critic/lr']) {
        expect(Number.isFinite(r.metrics[key]), `${key} at step ${r.step}`).toBe(true);
      }
      expect(r.metrics['actor/grad_norm']).toBeGreaterThan(0);
    }
    // The critic starts at zero: step 1's values are all 0 and its returns (γ = λ = 1) the mean reward.
    expect(records[0].metrics['critic/values/mean']).toBe(0);
    expect(records[0].metrics['critic/returns/mean']).toBeCloseTo(records[0].metrics['train/majority_voting_reward'], 6);
    // Step 2 reads a critic that learned from step 1.
    expect(records[1].metrics['critic/values/mean']).not.toBe(0);
    const samples = records[1].groups.flatMap((g) => (g.labeled ? g.samples : []));
    expect(samples.filter((s) => s.usedForTraining).some((s) => s.advantage !== 0)).toBe(true);
    expect(samples.filter((s) => !s.usedForTraining).every((s) => s.advantage === 0)).toBe(true);

    const [one, two] = await Promise.all(kept.map(loadCheckpoint));
    expect(one.critic!.step).toBe(1);
    expect(two.critic!.step).toBe(2);
    expect(one.critic!.weight.length).toBe(model.config.hiddenSize);
    expect(Array.from(two.critic!.weight)).not.toEqual(Array.from(one.critic!.weight));
  });

  it('a run paused after step 1 and resumed ends with the critic and metrics of one that was not', async () => {
    const first = await run(path.join(tmp, 'paused'), { pauseAfter: 1 });
    expect(first.result.paused).toBe(true);
    const resumed = await run(path.join(tmp, 'paused'), { resumeFrom: first.kept.at(-1)! });
    expect(resumed.records.map((r) => r.step)).toEqual([2]);
    const [a, b] = await Promise.all([loadCheckpoint(resumed.kept.at(-1)!), loadCheckpoint(straight.kept.at(-1)!)]);
    expect(a.critic!.step).toBe(2);
    for (const k of ['weight', 'bias', 'm', 'v'] as const) expect(Array.from(a.critic![k])).toEqual(Array.from(b.critic![k]));
    const critic = (r: StepRecord) => Object.fromEntries(Object.entries(r.metrics).filter(([k]) => k.startsWith('critic/')));
    expect(critic(resumed.records[0])).toEqual(critic(straight.records[1]));

    // Without its critic a checkpoint cannot continue an actor–critic run.
    const bare = path.join(tmp, 'bare');
    await cp(first.kept.at(-1)!, bare, { recursive: true });
    await rm(path.join(bare, FILES.critic));
    await expect(run(path.join(tmp, 'paused'), { resumeFrom: bare })).rejects.toThrow(/holds no critic \(critic\.safetensors\), so this run \(advantage gae\) cannot resume from it/);
  });

  it('during the critic’s warmup only the critic learns', async () => {
    const { records, kept } = await run(path.join(tmp, 'warmup'), { config: { criticWarmup: 1 } });
    expect(records[0].metrics['critic/vf_loss']).toBeGreaterThan(0);
    expect(records[0].metrics['actor/grad_norm']).toBe(0);
    expect(records[1].metrics['actor/grad_norm']).toBeGreaterThan(0);
    const [one, two] = await Promise.all(kept.map(loadCheckpoint));
    // The trainer's update count: none in step 1, one in step 2; the critic updated in both.
    expect([one.state!.step, two.state!.step]).toEqual([0, 1]);
    expect([one.critic!.step, two.critic!.step]).toEqual([1, 2]);
    expect((await stat(path.join(kept[0], FILES.critic))).size).toBeGreaterThan(0);
  });
});
