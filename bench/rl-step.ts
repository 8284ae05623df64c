// One step of the app's run loop at TTRL's shape (issue 16's "TTRL step" row and its 1.5B-shaped
// memory check): the rollout of P prompts × N votes × up to T new tokens, TTRL's majority-vote
// scoring, and the policy update, timed by the loop's own timing/* metrics, with the GPU memory
// of the engine's buffers (perf/device_buffers_mb). Its PyTorch twin is
// bench/reference/grpo_step.py (TRL's GRPOTrainer, one whole step).
//
// Equal work on both sides: the same prompts (synthetic text, the same generator on both sides),
// sampling at temperature 1, every vote trained (TRL's GRPO trains every generation; the engine's
// trainSamples is set to the votes), the same KL coefficient (0: no reference model) and
// precision. A model with random weights (make-model) writes no answers, so TTRL's vote labels
// no group and the loop would take no update; where a group is unlabeled the bench's scorer
// gives each vote a seeded 0/1 reward, as a vote would, so every step is a whole step. The
// reward's values do not change the step's work. The rows end at EOS on the engine's side as in
// a run (a random model's EOS is one token in the vocabulary: rare); response_length says how
// long they were.
import path from 'node:path';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { LINEAR_MODULES } from '../main/engine/nn/config.ts';
import { parseRunConfig } from '../main/engine/rl/config.ts';
import { type LoopItem, runLoop, scorerFor } from '../main/engine/rl/loop.ts';
import { DEVICE_BUFFERS_METRIC, TRAIN_METRICS } from '../main/engine/rl/metrics.ts';
import type { Scorer } from '../main/engine/rl/rewards.ts';
import { mulberry32Uniform } from '../main/engine/runtime/rng.ts';
import { normalizeAnswer } from '../main/engine/tasks/equivalence.ts';
import { type DeviceRequest, resolveDevice } from '../main/engine/runtime/devices.ts';
import { type Precision, hostHalf } from '../main/engine/runtime/precision.ts';
import { engineThreads, mean, peakRssMb, round, syntheticTokens } from './common.ts';

export interface RlStepBenchOptions {
  model: string;
  device: DeviceRequest;
  /** Prompts a step. */
  prompts: number;
  /** Votes (samples) per prompt, all of them trained. */
  votes: number;
  newTokens: number;
  /** Characters of each synthetic prompt. */
  promptLen: number;
  steps: number;
  warmup: number;
  loraRank: number | null;
  kl: number;
  lr: number;
  seed: number;
  precision: Precision;
}

/** The characters synthetic prompts are written in (bench/reference/grpo_step.py has the same). */
export const PROMPT_ALPHABET = 'abcdefghijklmnopqrstuvwxyz ';

/** Prompt i of `count`, each `length` characters: the same text as grpo_step.py's prompts(). */
export function syntheticPrompts(count: number, length: number, seed: number): string[] {
  const ids = syntheticTokens(count * length, PROMPT_ALPHABET.length, seed);
  return Array.from({ length: count }, (_, i) =>
    ids
      .slice(i * length, (i + 1) * length)
      .map((c) => PROMPT_ALPHABET[c])
      .join(''),
  );
}

export async function benchRlStep(o: RlStepBenchOptions) {
  const t0 = performance.now();
  // Held on the host as a run holds it (runs/start.ts): a half-precision checkpoint stays half under mixed.
  const model = await loadModelFolder(o.model, { keepHalf: hostHalf(o.precision, o.loraRank === null ? 'weights' : 'adapters') });
  if (!model.tokenizer) throw new Error(`${o.model} has no tokenizer.json: the run loop needs one`);
  const tokenizer = model.tokenizer;
  const device = await resolveDevice(o.device);
  // The answer checker loads mathjs when it first parses an answer (about 2 s here, once per
  // process); a random model writes an answer now and then, so that would land in whichever step
  // first sees one, timed or not. Loaded now, as part of the setup.
  normalizeAnswer('1+1');
  const loadMs = performance.now() - t0;
  const total = o.warmup + o.steps;
  const items: LoopItem[] = syntheticPrompts(o.prompts * total, o.promptLen, o.seed).map((prompt) => ({ prompt }));
  const config = parseRunConfig({
    method: 'ttrl',
    seed: o.seed,
    steps: total,
    promptsPerStep: o.prompts,
    votes: o.votes,
    trainSamples: o.votes,
    maxNewTokens: o.newTokens,
    temperature: 1,
    topP: 1,
    mode: o.loraRank === null ? 'full' : 'lora',
    ...(o.loraRank !== null && { loraRank: o.loraRank, loraAlpha: 2 * o.loraRank, loraTargets: [...LINEAR_MODULES] }),
    lr: o.lr,
    lrSchedule: 'constant',
    klCoef: o.kl,
    valEvery: 0,
    valBeforeTrain: false,
    precision: o.precision,
    signalAction: 'warn',
  });
  // TTRL's own vote first (its cost is part of the step); an unlabeled group gets seeded 0/1 rewards.
  const vote = scorerFor(config);
  const coin = mulberry32Uniform(o.seed ^ 0x2545f491);
  const scorer: Scorer = async (group, context) => {
    const score = await vote(group, context);
    if (score.labeled) return score;
    return { ...score, labeled: true, rewards: group.samples.map(() => (coin() < 0.5 ? 1 : 0)) };
  };

  const timed: { rollout: number; update: number; step: number; length: number; updated: boolean; ppoKl: number; clipRatio: number }[] = [];
  let buffersMb = 0;
  await runLoop(
    { config, model: { config: model.config, weights: model.weights, tokenizer, dir: model.dir }, device, items, scorer },
    {
      onStep: (r) => {
        if (r.step === 0) return;
        const m = r.metrics;
        buffersMb = Math.max(buffersMb, m[DEVICE_BUFFERS_METRIC] ?? 0);
        if (r.step > o.warmup) {
          timed.push({
            rollout: m[TRAIN_METRICS.timingRollout],
            update: m[TRAIN_METRICS.timingUpdate],
            step: m[TRAIN_METRICS.timingStep],
            length: m[TRAIN_METRICS.responseLength],
            // A step that took no update (nothing labeled) would time a rollout alone.
            updated: (m[TRAIN_METRICS.gradNorm] ?? 0) > 0,
            // The sampler's and the trainer's numeric gap: a check of the GPU's generation graphs.
            ppoKl: m[TRAIN_METRICS.ppoKl] ?? Number.NaN,
            clipRatio: m[TRAIN_METRICS.clipRatio] ?? Number.NaN,
          });
        }
      },
    },
  );
  if (timed.length === 0) throw new Error('no timed step was recorded');
  const promptTokens = mean(items.slice(0, o.prompts).map((it) => tokenizer.encode(it.prompt).length));
  const stepMs = mean(timed.map((t) => t.step)) * 1000;
  const rolloutMs = mean(timed.map((t) => t.rollout)) * 1000;
  const responseLength = mean(timed.map((t) => t.length));
  return {
    bench: 'rl-step',
    impl: 'autodidact',
    model: path.basename(model.dir),
    device: device.name,
    params: model.parameterCount,
    prompts: o.prompts,
    votes: o.votes,
    new_tokens: o.newTokens,
    prompt_tokens: round(promptTokens, 1),
    mode: config.mode,
    ...(o.loraRank !== null && { lora_rank: o.loraRank }),
    kl: o.kl,
    precision: o.precision,
    steps: o.steps,
    warmup: o.warmup,
    threads: engineThreads(),
    ms_per_step: round(stepMs, 1),
    rollout_ms: round(rolloutMs, 1),
    update_ms: round(mean(timed.map((t) => t.update)) * 1000, 1),
    // The rollout's sampled tokens per second.
    rollout_tokens_per_s: round((o.prompts * o.votes * responseLength) / (rolloutMs / 1000), 1),
    response_length: round(responseLength, 2),
    updated_steps: timed.filter((t) => t.updated).length,
    // The largest |ppo_kl| and clip ratio of the timed steps: near 0 in fp32 (under 1e-5 in the
    // tests), about 1e-4 under mixed precision; more says generation and training disagree.
    max_abs_ppo_kl: Math.max(...timed.map((t) => Math.abs(t.ppoKl))),
    max_clip_ratio: Math.max(...timed.map((t) => t.clipRatio)),
    peak_rss_mb: peakRssMb(),
    ...(device.keepsStateOnDevice && { device_buffers_mb: round(buffersMb, 1) }),
    load_ms: round(loadMs, 1),
  };
}
