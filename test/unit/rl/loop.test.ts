// The run loop on the built-in tiny-chars model: every metric name, the record's structure,
// hidden answers kept out of the scorer, checkpoints, and resume with the same data order.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { type RunConfigInput, parseRunConfig } from '../../../main/engine/rl/config.ts';
import { nextKlCoef } from '../../../main/engine/rl/kl-controller.ts';
import { type LoopInput, type StepRecord, revisionShape, runLoop } from '../../../main/engine/rl/loop.ts';
import { GROUND_TRUTH_METRICS, TRAIN_METRICS, pointBiserial } from '../../../main/engine/rl/metrics.ts';
import { encodePrompt } from '../../../main/engine/rl/prompts.ts';
import { type ScorerGroup, ttrlScorer } from '../../../main/engine/rl/rewards.ts';
import { arithmeticItems } from '../../../main/engine/tasks/generators.ts';
import { codeTaskItems } from '../../../main/engine/tasks/code-generators.ts';
import { testDevice } from '../../helpers/device.ts';
import { rewardsBy } from '../../helpers/scorers.ts';

const CONFIG: RunConfigInput = {
  method: 'ttrl',
  seed: 3,
  steps: 3,
  promptsPerStep: 2,
  votes: 4,
  trainSamples: 2,
  maxNewTokens: 8,
  lr: 1e-3,
  // An adaptive KL coefficient (held toward a target), so the checks below cover it too.
  klCoef: 0.05,
  klTarget: 0.01,
  klHorizon: 2,
  valEvery: 2,
  valSamples: 2,
  checkpointEvery: 1,
};

let model: HfModel;
let tmp: string;
const items = arithmeticItems({ difficulty: 1, count: 5, seed: 1 });
const validation = arithmeticItems({ difficulty: 1, count: 1, seed: 1, split: 'eval' }).map((it) => ({ prompt: it.prompt, answer: it.answer! }));

/** The loop's input; `config` as a run gives it (partial), checked here as a run's creation checks it. */
async function input({ config = CONFIG, ...extra }: Partial<Omit<LoopInput, 'config'>> & { config?: RunConfigInput } = {}): Promise<LoopInput> {
  return { config: parseRunConfig(config), model: { ...model, tokenizer: model.tokenizer! }, device: await testDevice(), items, validation, ...extra };
}

beforeAll(async () => {
  model = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-chars'));
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rl-loop-'));
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

describe('the second turns\' update shape', () => {
  it('is sized to the revisions trained (rows to a power of two, positions to a bucket), never past the planned bound', () => {
    const full = { size: 16, seqLen: 300 };
    // Three revisions of at most 41 tokens: 4 rows of 40 positions, bucketed to 64.
    expect(revisionShape([20, 41, 9], full)).toEqual({ size: 4, seqLen: 64 });
    expect(revisionShape([2], full)).toEqual({ size: 1, seqLen: 8 });
    // 257 positions is past the power-of-two buckets (256): 384, held to the bound 300; 17 rows held to 16.
    expect(revisionShape(Array.from({ length: 17 }, () => 258), full)).toEqual({ size: 16, seqLen: 300 });
  });
});


describe('runLoop and the model\'s context', () => {
  it('refuses a prompt that with maxNewTokens does not fit the context, before building any graph', async () => {
    // tiny-chars reads 1,024 positions; with 8 new tokens a prompt may have 1,016.
    const long = [...items, { prompt: `${'1+'.repeat(510)}1=`, answer: null }];
    const small = { ...CONFIG, promptsPerStep: 1, votes: 1, trainSamples: 1, klCoef: 0, klTarget: 0, valEvery: 0 };
    await expect(runLoop(await input({ config: small, items: long, validation: [] }))).rejects.toThrow(
      /a prompt is too long for tiny-chars: training prompt 5 has 1,023 tokens\. .* may have at most 1,016/,
    );
  });
});

describe('runLoop (TTRL on tiny-chars)', () => {
  const full: StepRecord[] = [];
  const scorerInputs: ScorerGroup[] = [];

  it('runs, reports every metric, and keeps hidden answers out of the scorer', async () => {
    const ttrl = ttrlScorer();
    const result = await runLoop(
      await input({
        checkpointDir: path.join(tmp, 'full'),
        scorer: (g) => {
          scorerInputs.push(g);
          return ttrl(g);
        },
      }),
      { onStep: (r) => void full.push(r) },
    );
    expect(result).toMatchObject({ lastStep: 3, aborted: false });
    // Step 0 is the starting model's validation; then steps 1..3.
    expect(full.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    expect(Object.keys(full[0].metrics).sort()).toEqual(['val/avg@2', 'val/maj@2', 'val/pass@2']);

    for (const r of full.slice(1)) {
      for (const name of Object.values(TRAIN_METRICS)) {
        expect(Number.isFinite(r.metrics[name]), `${name} at step ${r.step}`).toBe(true);
      }
      expect(r.groups).toHaveLength(2);
      for (const g of r.groups) {
        expect(items[g.itemIdx].prompt).toBe(g.prompt);
        expect(g.samples).toHaveLength(4);
        // A group is labeled when any sample has an answer; only labeled groups are trained on.
        expect(g.labeled).toBe(g.pseudoLabel !== null);
        expect(g.samples.filter((s) => s.usedForTraining)).toHaveLength(g.labeled ? 2 : 0);
        expect(g.labelCorrect === null).toBe(false);
        expect(g.voteCounts.reduce((s, c) => s + c.count, 0)).toBeLessThanOrEqual(4);
        for (const s of g.samples) {
          expect(s.logprobs).toBeInstanceOf(Float32Array);
          expect(s.entropies.length).toBe(s.logprobs.length);
          expect(s.logprobs.length).toBeGreaterThan(0);
          expect(s.logprobs.length).toBeLessThanOrEqual(8);
          if (!s.usedForTraining) expect(s.advantage).toBe(0);
          expect(s.reward === 0 || s.reward === 1).toBe(true);
        }
      }
      expect(r.metrics['actor/lr']).toBeGreaterThanOrEqual(0);
      // Tokens seen (the charts' tokens axis): each sample's prompt and completion, as TRL counts num_tokens.
      const promptTokens = (prompt: string) => encodePrompt(model.tokenizer!, prompt, 'raw').length;
      expect(r.tokens).toBe(r.groups.reduce((sum, g) => sum + g.samples.reduce((t, x) => t + promptTokens(g.prompt) + x.logprobs.length, 0), 0));
    }
    expect(full[0].tokens).toBeUndefined();
    // The KL coefficient starts at klCoef and follows the controller from each step's KL.
    const coefs = full.slice(1).map((r) => r.metrics[TRAIN_METRICS.klCoef]);
    expect(coefs[0]).toBe(0.05);
    const control = { initial: 0.05, target: 0.01, horizon: 2 };
    for (let i = 1; i < coefs.length; i++) expect(coefs[i]).toBe(nextKlCoef(coefs[i - 1], full[i].metrics[TRAIN_METRICS.kl], control));
    expect(new Set(coefs).size).toBe(coefs.length);
    // Validation every 2 steps and at the end; 'last' every step.
    expect(Object.keys(full[2].metrics)).toContain('val/maj@2');
    expect(Object.keys(full[1].metrics)).not.toContain('val/maj@2');
    expect(Object.keys(full[3].metrics)).toContain('val/avg@2');
    expect(full.slice(1).map((r) => r.checkpoints.find((c) => c.kind === 'last')?.path)).toEqual([1, 2, 3].map((s) => path.join(tmp, 'full', `last-${s}`)));
    // Older checkpoints are removed once their successor's record was handed over.
    const best = full.flatMap((r) => r.checkpoints.filter((c) => c.kind === 'best'));
    const kept = (await readdir(path.join(tmp, 'full'))).sort();
    expect(kept).toEqual(['last-3', ...(best.length ? [path.basename(best[best.length - 1].path)] : [])].sort());

    // The scorer sees prompts and samples only: no field could carry a hidden answer.
    expect(scorerInputs).toHaveLength(6);
    for (const g of scorerInputs) {
      expect(Object.keys(g).sort()).toEqual(['prompt', 'samples']);
      for (const s of g.samples) expect(Object.keys(s).sort()).toEqual(['answer', 'entropies', 'logprobs', 'selfCertainties', 'text', 'tokenCount', 'tokenIds']);
    }
  });

  it('without hidden answers there are no ground-truth metrics, and rewards are the same', async () => {
    const records: StepRecord[] = [];
    await runLoop(await input({ config: { ...CONFIG, steps: 1, valEvery: 0 }, items: items.map((it) => ({ prompt: it.prompt })) }), {
      onStep: (r) => void records.push(r),
    });
    expect(records.map((r) => r.step)).toEqual([1]);
    for (const name of GROUND_TRUTH_METRICS) expect(records[0].metrics).not.toHaveProperty(name);
    expect(records[0].metrics).toHaveProperty(TRAIN_METRICS.majorityRatio);
    expect(records[0].groups.every((g) => g.labelCorrect === null)).toBe(true);
    // Same seed, same starting weights: the labeled run's step 1 had identical rewards.
    const rewards = (r: StepRecord) => r.groups.map((g) => g.samples.map((s) => s.reward));
    expect(rewards(records[0])).toEqual(rewards(full[1]));
  });

  it('a scorer with distinct rewards drives a real update', async () => {
    const records: StepRecord[] = [];
    await runLoop(
      await input({
        // LoRA this time: the KL reference is then the base model with adapters off.
        config: { ...CONFIG, steps: 1, valEvery: 0, advantage: 'drgrpo', mode: 'lora', loraRank: 2, loraAlpha: 4 },
        scorer: rewardsBy((i) => i),
      }),
      { onStep: (r) => void records.push(r) },
    );
    const [r] = records;
    for (const g of r.groups) {
      const used = g.samples.filter((s) => s.usedForTraining);
      expect(used).toHaveLength(2);
      // Dr. GRPO on two distinct rewards a < b: advantages ∓(b − a)/2.
      expect(used[0].advantage).toBeCloseTo(-(used[1].reward - used[0].reward) / 2, 6);
      expect(used[0].advantage + used[1].advantage).toBeCloseTo(0, 6);
    }
    expect(r.metrics['actor/grad_norm']).toBeGreaterThan(1e-6);
    expect(r.metrics['train/majority_voting_reward']).toBeGreaterThan(0);
  });

  it('an update in micro-batches (microBatch) is the same update: same losses, norms and next rollouts', async () => {
    const scorer = rewardsBy((i) => i % 3);
    const runWith = async (microBatch: number) => {
      const records: StepRecord[] = [];
      // 2 prompts × 2 trained samples = 4 sequences: micro-batches of 3 and 1 (padded).
      await runLoop(await input({ config: { ...CONFIG, steps: 2, valEvery: 0, microBatch }, scorer }), { onStep: (r) => void records.push(r) });
      return records;
    };
    const [whole, micro] = [await runWith(0), await runWith(3)];
    for (const [a, b] of whole.map((r, i) => [r, micro[i]] as const)) {
      for (const key of ['actor/grad_norm', 'actor/pg_loss', 'actor/kl']) {
        expect(a.metrics[key], key).toBeTypeOf('number');
        expect(b.metrics[key], key).toBeCloseTo(a.metrics[key], 4);
      }
      // The same weights sample the same next step (the sampling is seeded).
      expect(b.groups.map((g) => g.samples.map((x) => x.text))).toEqual(a.groups.map((g) => g.samples.map((x) => x.text)));
    }
  });

  it('a method\'s roles train each span of a response with its own advantage', async () => {
    // code-consensus declares per-token advantages; the scorer here gives role 0 the rewards
    // 1, 0, 1, 0 and role 1 the reverse (Dr. GRPO: ±1/2), role 0 on a sample's first half of
    // tokens and role 1 on its last half (role 2, all rewards equal, on the middle one of an odd
    // count), so every sample's mean advantage is 0: only per-token advantages move the weights.
    const records: StepRecord[] = [];
    const sequence = { ...CONFIG, steps: 1, valEvery: 0, advantage: 'drgrpo' as const, trainSamples: 4, klCoef: 0, klTarget: 0 };
    const half = (n: number, j: number) => (j < Math.floor(n / 2) ? 0 : j >= n - Math.floor(n / 2) ? 1 : 2);
    const roleScorer = (g: ScorerGroup) => ({
      rewards: g.samples.map(() => 0),
      labeled: true,
      roles: {
        names: ['a', 'b', 'c'],
        weights: [1, 1, 1],
        rewards: [g.samples.map((_, i) => (i % 2 === 0 ? 1 : 0)), g.samples.map((_, i) => (i % 2 === 0 ? 0 : 1)), g.samples.map(() => 1)],
        tokenRoles: g.samples.map((s) => s.tokenIds.map((_, j) => half(s.tokenIds.length, j))),
      },
    });
    await runLoop(await input({ config: { ...sequence, method: 'code-consensus' }, scorer: roleScorer }), { onStep: (r) => void records.push(r) });
    const [r] = records;
    for (const g of r.groups) for (const s of g.samples) expect(s.advantage).toBeCloseTo(0, 6);
    expect(r.metrics['actor/grad_norm']).toBeGreaterThan(1e-6);
    // A method that trains one advantage per response refuses a scorer's roles.
    await expect(runLoop(await input({ config: sequence, scorer: roleScorer }))).rejects.toThrow(/rewards per role \(a, b, c\), but method "ttrl" does not train with per-token advantages/);
  });

  it('a method with its own hidden check (code) stores each outcome and measures correctness by it', async () => {
    // Code tasks whose hidden answers are tests: tiny-chars writes no function, so each response
    // is checked in the sandbox and (almost surely) errs; the metrics follow the outcomes, not
    // the answers compared as text. The scorer is a stand-in: no roles, so each response's one
    // advantage goes on all its tokens.
    const records: StepRecord[] = [];
    const codeItems = codeTaskItems({ language: 'javascript', count: 2, seed: 1 });
    await runLoop(
      await input({
        config: { ...CONFIG, method: 'code-consensus', codeLanguage: 'javascript', steps: 1, valEvery: 1, valSamples: 2, valBeforeTrain: false, klCoef: 0, klTarget: 0, advantage: 'drgrpo' },
        items: codeItems,
        validation: codeTaskItems({ language: 'javascript', count: 1, seed: 2, split: 'eval' }).map((it) => ({ prompt: it.prompt, answer: it.answer! })),
        scorer: (g) => ({ rewards: g.samples.map((_, i) => i), labeled: true }),
      }),
      { onStep: (r) => void records.push(r) },
    );
    const [r] = records;
    const outcomes = r.groups.flatMap((g) => g.samples.map((x) => x.hiddenResult));
    expect(outcomes).toHaveLength(8);
    for (const o of outcomes) expect(['pass', 'fail', 'error', 'timeout']).toContain(o);
    const passed = (x: { hiddenResult?: string }) => (x.hiddenResult === 'pass' ? 1 : 0);
    expect(r.metrics['code/hidden_pass_rate']).toBeCloseTo(outcomes.filter((o) => o === 'pass').length / 8, 12);
    // Validation by the hidden tests too: tiny-chars's samples hold no function, so none passes,
    // and with no tests written there is no consensus pick; the best checkpoint reads maj@2.
    expect([r.metrics['val/avg@2'], r.metrics['val/maj@2'], r.metrics['val/pass@2']]).toEqual([0, 0, 0]);
    expect(r.best).toEqual({ metric: 'val/maj@2', value: 0 });
    const trained = r.groups.flatMap((g) => g.samples.filter((x) => x.usedForTraining));
    expect(r.metrics[TRAIN_METRICS.groundTruthReward]).toBeCloseTo(trained.reduce((a, x) => a + passed(x), 0) / trained.length, 12);
    // Dr. GRPO on rewards 0..3 of the two trained samples: ∓ half their difference.
    for (const g of r.groups) {
      const used = g.samples.filter((x) => x.usedForTraining);
      expect(used[0].advantage).toBeCloseTo(-(used[1].reward - used[0].reward) / 2, 6);
    }
    expect(r.metrics['actor/grad_norm']).toBeGreaterThan(1e-6);
  });

  it('a code run\'s signal check counts runnable functions and consensus sets, not extracted answers', async () => {
    // Every group: functions 0-2 pass both tests (one consensus set), function 3 fails both; the
    // stand-in's rewards differ. Runnable 4 of 4; clusters [3, 1]; ratio 3/4 against chance
    // E[max of Multinomial(4, 1/2)] / 4 = 2.75 / 4: lift 1.09, above 1.05. tiny-chars's text
    // holds no answer to extract, which the TTRL check would call a weak signal.
    const records: StepRecord[] = [];
    await runLoop(
      await input({
        config: { ...CONFIG, method: 'code-consensus', codeLanguage: 'javascript', codeAdvantages: 'shared', steps: 1, valEvery: 0, klCoef: 0, klTarget: 0 },
        items: codeTaskItems({ language: 'javascript', count: 2, seed: 1 }),
        validation: [],
        scorer: (g) => ({
          rewards: g.samples.map((_, i) => i),
          labeled: true,
          execution: {
            language: 'javascript' as const,
            solutions: g.samples.map(() => 'function f() {}'),
            tests: ['t0', 't1'],
            authors: [[0], [1]],
            matrix: [['pass', 'pass'], ['pass', 'pass'], ['pass', 'pass'], ['fail', 'fail']],
            sets: [
              { solutions: [0, 1, 2], tests: [0, 1], score: 6 },
              { solutions: [3], tests: [], score: 0 },
            ],
            top: 0,
            testRewards: [1, 1],
          },
        }),
      }),
      { onStep: (r) => void records.push(r) },
    );
    const [r] = records;
    expect(r.metrics['signal/extraction_rate']).toBe(1);
    expect(r.metrics['signal/majority_ratio_chance']).toBeCloseTo(2.75 / 4, 12);
    expect(r.metrics['signal/majority_lift']).toBeCloseTo(0.75 / (2.75 / 4), 12);
    expect(r.metrics['signal/groups_with_signal']).toBe(1);
    expect(r.alerts.filter((a) => a.kind === 'weak_signal')).toEqual([]);
    // The majority ratio logged, and watched for collapse, is the top consensus set's share, not a vote over text.
    expect(r.metrics['train/majority_ratio']).toBeCloseTo(3 / 4, 12);
  });

  it('a method\'s second turn continues samples with its message, and trains the revisions', async () => {
    // code-consensus with codeDebugTurn asks for the revise service; the stand-in scorer revises
    // samples 0 and 1 of each group with "fix it" and rewards the revisions 1 and 0.
    const records: StepRecord[] = [];
    const seen: { promptIds: number[]; sampleIds: readonly number[] }[] = [];
    const debugConfig = { ...CONFIG, method: 'code-consensus', codeDebugTurn: true, codeAdvantages: 'shared' as const, steps: 1, valEvery: 0, klCoef: 0, klTarget: 0, advantage: 'drgrpo' as const };
    await runLoop(
      await input({
        config: debugConfig,
        scorer: async (g, context) => {
          const revisions = await context.revise!([
            { sample: 0, message: 'fix it' },
            { sample: 1, message: 'fix it' },
          ]);
          revisions.forEach((r, j) => seen.push({ promptIds: r!.promptIds, sampleIds: g.samples[j].tokenIds }));
          const scored = revisions.map((r, j) => ({ ...r!, sample: j, reward: 1 - j }));
          return {
            rewards: g.samples.map((_, i) => i),
            labeled: true,
            revisions: scored,
            execution: {
              language: 'python' as const,
              solutions: g.samples.map(() => null),
              tests: [],
              authors: [],
              matrix: g.samples.map(() => []),
              sets: [],
              top: null,
              testRewards: [],
              revisions: scored.map((r) => ({ sample: r.sample, feedback: 'fix it', text: r.text, solution: null, row: [], reward: r.reward })),
            },
          };
        },
      }),
      { onStep: (r) => void records.push(r) },
    );
    const [r] = records;
    // Raw prompts: the prompt, the first reply without its end-of-sequence token, then the message after a blank line.
    const tok = model.tokenizer!;
    const message = tok.encode('\n\nfix it\n\n', { addSpecialTokens: false });
    for (const [j, s] of seen.entries()) {
      const prompt = encodePrompt(tok, items[r.groups[Math.floor(j / 2)].itemIdx].prompt, 'raw');
      const reply = [...s.sampleIds].filter((id) => !tok.eosTokenIds.includes(id));
      expect(s.promptIds).toEqual([...prompt, ...reply, ...message]);
    }
    // Dr. GRPO over each group's revisions (rewards 1, 0): ±1/2, stored with the group's execution.
    for (const g of r.groups) expect(g.execution!.revisions!.map((v) => v.advantage)).toEqual([0.5, -0.5]);
    expect(r.metrics['actor/revision_grad_norm']).toBeGreaterThan(1e-6);
    expect(Number.isFinite(r.metrics['actor/revision_pg_loss'])).toBe(true);
    // The critic has no values for second turns: such a run is refused.
    await expect(runLoop(await input({ config: { ...debugConfig, advantage: 'gae' } }))).rejects.toThrow(/second turn .* advantage gae has no critic values for them/);
  });

  it('SRT with τ = 1 trains only on unanimous groups, and logs the share it labeled', async () => {
    const records: StepRecord[] = [];
    await runLoop(await input({ config: { ...CONFIG, method: 'srt', srtThreshold: 1, steps: 1, valEvery: 0 } }), { onStep: (r) => void records.push(r) });
    const unanimousGroups = records[0].groups.filter((g) => g.voteCounts.length === 1 && g.voteCounts[0].count === 4).length;
    expect(records[0].metrics['train/labeled_ratio']).toBeCloseTo(unanimousGroups / records[0].groups.length, 12);
    for (const g of records[0].groups) {
      const unanimous = g.voteCounts.length === 1 && g.voteCounts[0].count === 4;
      expect(g.labeled).toBe(unanimous);
      if (!unanimous) {
        expect(g.pseudoLabel).toBeNull();
        expect(g.samples.every((s) => !s.usedForTraining && s.reward === 0 && s.advantage === 0)).toBe(true);
      }
    }
  });

  it('the step-0 baseline does not depend on the training batch (votes, prompts per step)', async () => {
    // Eight validation prompts, validated in chunks sized from the training batch (2 × votes rows).
    const eight = arithmeticItems({ difficulty: 1, count: 8, seed: 4, split: 'eval' }).map((it) => ({ prompt: it.prompt, answer: it.answer! }));
    // tiny-arith, which answers some sums, so that the samples decide the scores.
    const arith = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-arith'));
    const baseline = async (votes: number, promptsPerStep: number) => {
      const records: StepRecord[] = [];
      const config = parseRunConfig({ ...CONFIG, votes, trainSamples: 2, promptsPerStep, valBeforeTrain: true, valSamples: 4, valTemperature: 1 });
      // Paused before step 1: only the baseline runs.
      await runLoop({ config, model: { ...arith, tokenizer: arith.tokenizer! }, device: await testDevice(), items, validation: eight }, {
        onStep: (r) => void records.push(r),
        pauseRequested: () => true,
      });
      expect(records.map((r) => r.step)).toEqual([0]);
      return records[0].metrics;
    };
    const first = await baseline(4, 2);
    // Neither all right nor all wrong: the sampling shows.
    expect(first['val/avg@4']).toBeGreaterThan(0);
    expect(first['val/avg@4']).toBeLessThan(1);
    expect(await baseline(8, 2)).toEqual(first);
    expect(await baseline(2, 3)).toEqual(first);
  });

  it('logs the reward–truth correlation also under the name a method’s reference code gives it (RENT: over the responses with an answer)', async () => {
    const arith = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-arith'));
    const sums = arithmeticItems({ difficulty: 1, count: 12, seed: 5 });
    const step1 = async (method: string) => {
      const records: StepRecord[] = [];
      const config = parseRunConfig({ ...CONFIG, method, steps: 1, promptsPerStep: 6, votes: 6, trainSamples: 6, valEvery: 0, temperature: 1.2 });
      await runLoop({ config, model: { ...arith, tokenizer: arith.tokenizer! }, device: await testDevice(), items: sums }, { onStep: (r) => void records.push(r) });
      return records[0];
    };
    // By hand from the record: each sample's reward against its answer being the hidden one.
    const byHand = (r: StepRecord, answeredOnly: boolean) => {
      const xs = r.groups.flatMap((g) => g.samples.map((x) => ({ reward: x.reward, answer: x.extractedAnswer, truth: sums[g.itemIdx].answer })));
      const kept = answeredOnly ? xs.filter((x) => x.answer !== null) : xs;
      return pointBiserial(
        kept.map((x) => x.reward),
        kept.map((x) => x.answer !== null && Number(x.answer) === Number(x.truth)),
      );
    };
    const rent = await step1('token-entropy');
    const valid = byHand(rent, true);
    expect(valid).not.toBeNull();
    expect(rent.metrics['entropy/valid_negative_entropy_reward_correlation']).toBeCloseTo(valid!, 12);
    expect(rent.metrics['train/reward_truth_correlation']).toBeCloseTo(byHand(rent, false)!, 12);
    const intuitor = await step1('self-certainty');
    expect(intuitor.metrics['train/certainty/point_biserial_correlation']).toBe(intuitor.metrics['train/reward_truth_correlation']);
    expect(intuitor.metrics['train/certainty/point_biserial_correlation']).toBeCloseTo(byHand(intuitor, false)!, 12);
  });

  it('resuming with a different prompt list is refused', async () => {
    await expect(runLoop(await input({ items: items.slice(0, 4), resumeFrom: path.join(tmp, 'full', 'last-3') }))).rejects.toThrow(/5 prompts/);
  });

  it('a run stopped after step 2 resumes from its checkpoint with the same step-3 data', async () => {
    const dir = path.join(tmp, 'stopped');
    const stop = new AbortController();
    const first: StepRecord[] = [];
    const r1 = await runLoop(await input({ checkpointDir: dir }), {
      signal: stop.signal,
      onStep: (r) => {
        first.push(r);
        if (r.step === 2) stop.abort();
      },
    });
    expect(r1).toMatchObject({ lastStep: 2, aborted: true });

    const resumed: StepRecord[] = [];
    const r2 = await runLoop(await input({ checkpointDir: dir, resumeFrom: path.join(dir, 'last-2') }), { onStep: (r) => void resumed.push(r) });
    expect(r2.lastStep).toBe(3);
    expect(resumed.map((r) => r.step)).toEqual([3]);
    const view = (r: StepRecord) => r.groups.map((g) => ({ item: g.itemIdx, used: g.samples.map((s) => s.usedForTraining), texts: g.samples.map((s) => s.text) }));
    expect(view(resumed[0])).toEqual(view(full[3]));
    // The adaptive KL coefficient is part of the checkpointed state.
    expect(resumed[0].metrics[TRAIN_METRICS.klCoef]).toBe(full[3].metrics[TRAIN_METRICS.klCoef]);
  });
});
