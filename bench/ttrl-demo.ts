// The TTRL demo: a model trained on its own majority votes overtakes its own majority vote.
//
//   npm run bench -- ttrl-demo [--steps N] [--minutes M] [--seed S] [--device D] [--lr LR] ...
//     [--entropy=C] [--srt TAU] [--advantage grpo|drgrpo|rloo|gae] [--critic-lr LR] [--votes N] [--train-samples N]
//     [--temperature T (rollouts)] [--eval-temperature T (avg@16 / maj@16)] [--model NAME|DIR]
//
// --entropy is the policy loss's entropy coefficient (negative = entropy minimisation; write it
// as --entropy=-0.1 so the minus sign is not read as a flag); --srt > 0 runs SRT's confidence
// threshold (prompts whose majority ratio is below τ get no pseudo-label and no update).
//
// 1. Base avg@16 / maj@16 on the labeled set: the first `count` level-1 `+` problems of the eval
//    split (the set bench/tiny-arith-base.ts measures, with its code), sampled as TTRL validates
//    (METHODS.md): temperature 0.6, top-p 0.95. The rollouts that vote sample at temperature 1.
// 2. TTRL (runLoop) on UNLABELED problems: further eval-split level-1 `+` problems, disjoint from
//    the labeled set. Their answers go to the loop only as hidden answers, which it reads for
//    the ground-truth diagnostics (train/label_accuracy) and never for a reward.
// 3. The same avg@16 / maj@16 measurement on the trained weights (the last checkpoint).
//
// Progress goes to stderr; stdout gets the numbers and, last, one JSON line.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveModelPath } from '../main/engine/model-paths.ts';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { CRITIC_METRICS } from '../main/engine/rl/metrics.ts';
import { type LoopItem, REWARD_TRUTH_CORRELATION, type RunConfigInput, TRAIN_METRICS, runLoop } from '../main/engine/rl/index.ts';
import { parseRunConfig } from '../main/engine/rl/config.ts';
import { type DeviceRequest, resolveDevice } from '../main/engine/runtime/devices.ts';
import { type ArithmeticProblem, generateArithmetic } from '../main/engine/tasks/generators.ts';
import { type BaseEvalOptions, type BaseEvalResult, evalProblems, evaluateBase } from './tiny-arith-base.ts';

export interface TtrlDemoOptions {
  model: string;
  /** The label-free method that rewards the rollouts (a registry id); absent: TTRL, or SRT when srtThreshold > 0. */
  method?: string;
  /** The method's own settings (its registry schema's keys), beyond srtThreshold. */
  methodSettings?: Record<string, unknown>;
  /** The base model's avg/maj@16 for this seed, when already measured (the methods bench shares it). */
  base?: BaseEvalResult;
  device: DeviceRequest;
  /** Training steps (the run also stops when `minutes` of training are up). */
  steps: number;
  /** Wall-clock budget of the training phase, in minutes. */
  minutes: number;
  seed: number;
  /** Labeled evaluation problems (the first `count` of tiny-arith-base's list). */
  count: number;
  /** Unlabeled training problems at most (all the free ones when larger: 1,277 with count 200). */
  trainCount: number;
  lr: number;
  mode: 'full' | 'lora';
  loraRank: number;
  klCoef: number;
  /** Adaptive KL: the mean token KL to hold, starting from klCoef (0 = fixed coefficient). */
  klTarget: number;
  /** Adaptive KL: steps over which a sustained 20% error moves the coefficient by about 20%. */
  klHorizon: number;
  promptsPerStep: number;
  votes: number;
  trainSamples: number;
  /** Rollout sampling temperature (also the policy loss's). */
  temperature: number;
  /** Sampling temperature of every avg@16 / maj@16 measurement (top-p stays 0.95). */
  evalTemperature: number;
  /** Entropy coefficient of the policy loss (RunConfig.entropyCoef: < 0 minimises entropy, > 0 is a bonus, 0 = off). */
  entropyCoef: number;
  /** SRT's confidence threshold τ: an unlabeled prompt whose majority ratio is below it gets no pseudo-label (0 = plain TTRL). */
  srtThreshold: number;
  /** Advantage estimator (gae: the actor–critic, a learned value head). */
  advantage: 'grpo' | 'drgrpo' | 'rloo' | 'gae';
  /** The critic's learning rate (advantage gae; absent: the run setting's default). */
  criticLr?: number;
  /** Validate on the labeled set every this many steps during training (0 = never), for the trend. */
  valEvery: number;
  /** Problems of the labeled set used for the in-training validation (the first ones). */
  valCount: number;
}

// The defaults are the best configuration measured on 2 cores: a high learning rate held near
// the base model by a strong KL loss (k3, coefficient 1), 16 votes of which 8 are trained on,
// every free unlabeled sum (1,277). Measured on the tiny-arith committed before its digits judge
// (make-tiny-arith.ts --judge-format direct --judge-rows 8 --judge-noise 0.2 --inverse-rows 8),
// after avg@16 against base maj@16, 1,600 steps, on a loaded 2-core machine:
//   seed 0: base 77.7% / 91%   → after 92.9% / 94%   (labels right 87.4%, reward–truth corr. 0.673)
//   seed 1: base 77.3% / 90.5% → after 92.4% / 93.5% (88.4%, 0.679)
//   seed 2: base 76.3% / 90.5% → after 92.4% / 94%   (88.7%, 0.690)
// avg@16 +15.5 ± 0.5 points, ending 1.4-1.9 points above the base majority. On the committed
// model (the digits judge, make-tiny-arith.ts's defaults), 1,600 steps on 2 cores beside a CI run:
//   seed 0: base 78.9% / 94.5% → after 94.9% / 96%   (labels right 83.8%, reward–truth corr. 0.603; 13 min)
//           on the way: avg@16 71.3% at step 400, 88.8% at 800, 94.3% at 1,200
//   seed 1: base 77.6% / 93%   → after 95.1% / 95.5% (5 min on an idle machine)
//   seed 2: base 78.8% / 95.5% → after 93.6% / 95%   (5 min)
// avg@16 +16.1 ± 1.4 points (sd over the seeds); the after avg@16 is above the base majority at seeds 0 and 1 and
// 1.9 points below it at seed 2. (The summary's label accuracy, reward accuracy and correlation
// printed the same 82.3% / 85.1% / 0.558 for seeds 1 and 2. Checked: the runs differ, a
// coincidence of means. Their logged per-step label accuracies average 0.631 / 0.795 / 0.918 /
// 0.954 (seed 1) and 0.649 / 0.795 / 0.910 / 0.945 (seed 2) over the four 400-step quarters,
// 0.8245 over the run for both; TTRL's reward accuracy and correlation follow from the labels'
// accuracy and the majority ratio, so they met too. 12-step runs of the two seeds print 41.7% /
// 54.8% / 0.156 and 56.8% / 65.5% / 0.357.)
// It dips before it learns (majority labels right 57.5% over steps 51-100 in a 400-step run, 90%
// over its last 50), which is why the methods bench's 150 steps leave TTRL near its base.
// On the model before those rows (each seed samples differently, so the base figures move too):
//   seed 0: base 80.6% / 93.5% → after 94.8% / 96%   (majority labels right 91.3% of the time)
//   seed 1: base 81.5% / 94.5% → after 96.6% / 97.5%
//   seed 2: base 81.5% / 95%   → after 96%   / 97%
// about 6.5 minutes each. avg@16 rises 13-15 points and ends 1-2 points above the base majority,
// because the majority itself improves by 2-3 points: the model learns from sums it was never
// shown with an answer. On 1,000 of the sums the margin is thinner and not always there (seeds
// 0-2: 96.4% vs 93.5%, 94.9% vs 94.5%, 93.8% vs 95%; seed 1 with --steps 2400: 94.3% vs 94.5%).
//
// The earlier base (stopped part-way through learning clean sums: avg@16 68.1%, maj@16 81% at
// temperature 1, labels right 81% of the time) never got there, whatever the setting. At
// temperature 1 and on 1,000 sums these settings reached 79.3%, --prompts 32 78.9%, --votes 64
// 78.2%, --temperature 1.3 78.3%, --srt 0.5 77.3%, --kl-target 0.03 --kl-horizon 50 76.9%,
// --entropy=-0.05 78.5%, --mode lora 70.7%; --kl 0.5 and weaker collapsed (37.1% at step 400).
// TTRL sharpened that model toward its own majority answer more than it improved it, and a
// weaker KL anchor let the wrong majorities take over. The base trained on 450 sums with 40%
// noise (at 0.6: 61.9% / 76%, labels right 74%) falls short as well (74.8%): the effect needs a
// majority that is mostly right.
export const TTRL_DEMO_DEFAULTS: TtrlDemoOptions = {
  model: 'tiny-arith',
  device: 'cpu',
  steps: 1600,
  minutes: 20,
  seed: 0,
  count: 200,
  trainCount: 2000,
  lr: 4e-4,
  mode: 'full',
  loraRank: 8,
  klCoef: 1,
  klTarget: 0,
  klHorizon: 100,
  promptsPerStep: 16,
  votes: 16,
  trainSamples: 8,
  temperature: 1,
  evalTemperature: 0.6,
  entropyCoef: 0,
  srtThreshold: 0,
  advantage: 'grpo',
  valEvery: 400,
  valCount: 200,
};

const TOP_P = 0.95;
const K = 16;
const MAX_NEW_TOKENS = 8;

const usesOnlyPlus = (expression: string): boolean => ![...expression].some((c) => c === '-' || c === '*');

/** Level-1 `+` problems of the eval split that are not in `labeled` (by expression). */
export function unlabeledProblems(labeled: readonly ArithmeticProblem[], max: number, dataSeed: number): ArithmeticProblem[] {
  const taken = new Set(labeled.map((p) => p.expression));
  // Level 1 holds about 3,000 distinct eval problems (two thirds of them sums): ask for plenty.
  for (const n of [2400, 2000, 1600, 1200, 800]) {
    let pool: ArithmeticProblem[];
    try {
      pool = generateArithmetic({ difficulty: 1, count: n, seed: dataSeed, split: 'eval' });
    } catch (e) {
      if (e instanceof RangeError) continue;
      throw e;
    }
    return pool.filter((p) => usesOnlyPlus(p.expression) && !taken.has(p.expression)).slice(0, max);
  }
  throw new Error('the eval split has too few level-1 problems');
}

async function lastCheckpoint(dir: string): Promise<string | null> {
  let best: { step: number; name: string } | null = null;
  for (const name of await readdir(dir)) {
    const m = /^last-(\d+)$/.exec(name);
    if (m && (best === null || Number(m[1]) > best.step)) best = { step: Number(m[1]), name };
  }
  return best ? path.join(dir, best.name) : null;
}

const pct = (x: number) => Math.round(x * 1000) / 10;

export async function ttrlDemo(o: TtrlDemoOptions, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<Record<string, unknown>> {
  const started = Date.now();
  const modelDir = resolveModelPath(o.model);
  const evalOptions = (model: string): BaseEvalOptions => ({ model, levels: [1], ops: '+', count: o.count, k: K, temperature: o.evalTemperature, topP: TOP_P, seed: o.seed, dataSeed: 0, show: 0 });

  const labeled = evalProblems([1], '+', o.count, 0);
  const unlabeled = unlabeledProblems(labeled, o.trainCount, 0);
  const labeledSet = new Set(labeled.map((p) => p.expression));
  if (unlabeled.some((p) => labeledSet.has(p.expression))) throw new Error('the training problems overlap the labeled set');
  if (unlabeled.length === 0) throw new Error('no unlabeled problems left over from the labeled set');
  log(`ttrl-demo: ${labeled.length} labeled evaluation problems, ${unlabeled.length} disjoint unlabeled training problems`);

  if (!o.base) log('base model: measuring avg@16 / maj@16 on the labeled set');
  const base = o.base ?? (await evaluateBase(evalOptions(modelDir), () => {}));
  log(`base avg@16 ${pct(base.avg)}%  maj@16 ${pct(base.maj)}%  pass@16 ${pct(base.pass)}%`);

  const loaded = await loadModelFolder(modelDir);
  if (!loaded.tokenizer) throw new Error(`${modelDir} has no tokenizer.json`);
  const device = await resolveDevice(o.device);
  // The loop gets the answers only as hidden answers (diagnostics); its scorer never sees them.
  const items: LoopItem[] = unlabeled.map((p) => ({ prompt: p.prompt, answer: p.answer }));
  const validation = labeled.slice(0, o.valEvery > 0 ? o.valCount : 0).map((p) => ({ prompt: p.prompt, answer: p.answer }));
  // Checked once here, as a run's creation checks it; the loop takes it as it is.
  const config = parseRunConfig({
    method: o.method ?? (o.srtThreshold > 0 ? 'srt' : 'ttrl'),
    ...(o.srtThreshold > 0 && { srtThreshold: o.srtThreshold }),
    ...o.methodSettings,
    advantage: o.advantage,
    ...(o.advantage === 'gae' && o.criticLr !== undefined && { criticLr: o.criticLr }),
    entropyCoef: o.entropyCoef,
    seed: o.seed,
    steps: o.steps,
    promptsPerStep: o.promptsPerStep,
    votes: o.votes,
    trainSamples: o.trainSamples,
    maxNewTokens: MAX_NEW_TOKENS,
    temperature: o.temperature,
    topP: TOP_P,
    mode: o.mode,
    loraRank: o.loraRank,
    loraAlpha: 2 * o.loraRank,
    loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    lr: o.lr,
    lrSchedule: 'cosine',
    minLrRatio: 0.1,
    klCoef: o.klCoef,
    klTarget: o.klTarget,
    klHorizon: o.klHorizon,
    valEvery: o.valEvery,
    valBeforeTrain: false,
    valSamples: K,
    valTemperature: o.evalTemperature,
    valTopP: TOP_P,
    checkpointEvery: 1,
  } satisfies RunConfigInput);

  const ckptDir = await mkdtemp(path.join(os.tmpdir(), 'ttrl-demo-'));
  const controller = new AbortController();
  const trainStart = Date.now();
  const deadline = trainStart + o.minutes * 60_000;
  const labelAcc: number[] = [];
  // Per step, where the loop logs them: how often the reward agrees with the hidden answer's, and
  // how well it tracks correctness (point-biserial correlation); NaN steps (no variance) are skipped.
  const rewardAcc: number[] = [];
  const correlation: number[] = [];
  const trend: { step: number; avg16: number; maj16: number }[] = [];
  // The actor–critic's: how much of the returns' variance the critic explains, per step.
  const explained: number[] = [];
  let after: Awaited<ReturnType<typeof evaluateBase>>;
  let stepsDone = 0;
  let trainSeconds = 0;
  let afterSource = 'last checkpoint, tiny-arith-base evaluation';
  try {
    const result = await runLoop(
      { config, model: { config: loaded.config, weights: loaded.weights, tokenizer: loaded.tokenizer, dir: loaded.dir }, device, items, validation, checkpointDir: ckptDir },
      {
        signal: controller.signal,
        onStep: (r) => {
          const m = r.metrics;
          const la = m[TRAIN_METRICS.labelAccuracy];
          if (la !== undefined && Number.isFinite(la)) labelAcc.push(la);
          const ra = m[TRAIN_METRICS.rewardAccuracy];
          if (ra !== undefined && Number.isFinite(ra)) rewardAcc.push(ra);
          const rc = m[REWARD_TRUTH_CORRELATION];
          if (rc !== undefined && Number.isFinite(rc)) correlation.push(rc);
          const ev = m[CRITIC_METRICS.explainedVar];
          if (ev !== undefined && Number.isFinite(ev)) explained.push(ev);
          const avg = m[`val/avg@${K}`];
          if (avg !== undefined) {
            trend.push({ step: r.step, avg16: pct(avg), maj16: pct(m[`val/maj@${K}`]) });
            log(`  step ${r.step}: val (first ${validation.length}) avg@16 ${pct(avg)}%  maj@16 ${pct(m[`val/maj@${K}`])}%`);
          }
          if (r.step > 0) {
            log(
              `  step ${r.step}/${o.steps}  label_acc ${(la ?? NaN).toFixed(2)}  maj_ratio ${(m[TRAIN_METRICS.majorityRatio] ?? NaN).toFixed(2)}  entropy ${m[TRAIN_METRICS.entropy].toFixed(3)}  kl ${m[TRAIN_METRICS.kl].toExponential(1)}${o.klTarget > 0 ? ` (coef ${m[TRAIN_METRICS.klCoef].toFixed(3)})` : ''}  lr ${m[TRAIN_METRICS.lr].toExponential(1)}  ${((Date.now() - trainStart) / 1000).toFixed(0)} s`,
            );
          }
          // Stop when the next step would likely run past the budget.
          const perStep = (Date.now() - trainStart) / Math.max(1, r.step);
          if (Date.now() + perStep > deadline) controller.abort();
        },
      },
    );
    stepsDone = result.lastStep;
    trainSeconds = (Date.now() - trainStart) / 1000;
    if (stepsDone === 0) throw new Error('the training budget ended before the first step');
    if (o.mode === 'lora') {
      // A LoRA checkpoint is an adapter, not a model folder: take the loop's last validation
      // (the whole labeled set, same k / temperature / top-p) as the after-training numbers.
      const last = trend[trend.length - 1];
      if (!last) throw new Error('--mode lora needs --val-every > 0 (the after-training numbers come from the last validation)');
      afterSource = `loop validation at step ${last.step}`;
      after = { avg: last.avg16 / 100, maj: last.maj16 / 100, pass: NaN, noAnswer: NaN, problems: labeled.length };
    } else {
      const ckpt = await lastCheckpoint(ckptDir);
      if (!ckpt) throw new Error('the run left no checkpoint to evaluate');
      log(`trained ${stepsDone} steps in ${((Date.now() - trainStart) / 1000).toFixed(0)} s; measuring avg@16 / maj@16 on the labeled set`);
      after = await evaluateBase(evalOptions(ckpt), () => {});
    }
  } finally {
    await rm(ckptDir, { recursive: true, force: true });
  }
  const wall = (Date.now() - started) / 1000;
  const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    bench: 'ttrl-demo',
    method: config.method,
    base_avg16: pct(base.avg),
    base_maj16: pct(base.maj),
    after_avg16: pct(after.avg),
    after_maj16: pct(after.maj),
    label_accuracy: labelAcc.length ? pct(mean(labelAcc)) : null,
    reward_accuracy: rewardAcc.length ? pct(mean(rewardAcc)) : null,
    reward_truth_correlation: correlation.length ? Math.round(mean(correlation) * 1000) / 1000 : null,
    // Over the last quarter of the steps, when the critic has had time to learn.
    ...(o.advantage === 'gae' && { critic_explained_var: explained.length ? Math.round(mean(explained.slice(-Math.max(1, Math.floor(explained.length / 4)))) * 1000) / 1000 : null }),
    wall_s: Math.round(wall * 10) / 10,
    base_pass16: pct(base.pass),
    after_pass16: Number.isNaN(after.pass) ? null : pct(after.pass),
    after_source: afterSource,
    reached: after.avg >= base.maj,
    steps: stepsDone,
    train_s: Math.round(trainSeconds * 10) / 10,
    trend,
    settings: {
      model: path.basename(modelDir),
      device: device.name,
      labeled: labeled.length,
      unlabeled: unlabeled.length,
      lr: o.lr,
      mode: o.mode,
      kl: o.klCoef,
      kl_target: o.klTarget,
      kl_horizon: o.klHorizon,
      entropy_coef: o.entropyCoef,
      srt_threshold: o.srtThreshold,
      advantage: o.advantage,
      ...(o.advantage === 'gae' && { critic_lr: o.criticLr ?? null }),
      prompts_per_step: o.promptsPerStep,
      votes: o.votes,
      train_samples: o.trainSamples,
      temperature: o.temperature,
      eval_temperature: o.evalTemperature,
      top_p: TOP_P,
      seed: o.seed,
    },
  };
}

/** The human-readable lines before the JSON line. */
export function summary(r: Record<string, unknown>): string {
  const settings = r.settings as Record<string, unknown>;
  return [
    `base   avg@16 ${r.base_avg16}%  maj@16 ${r.base_maj16}%  (sampled at temperature ${settings.eval_temperature}, top-p ${settings.top_p})`,
    `after  avg@16 ${r.after_avg16}%  maj@16 ${r.after_maj16}%  (${r.steps} steps in ${r.train_s} s)`,
    `label accuracy ${r.label_accuracy}%  wall ${r.wall_s} s  target after avg@16 ≥ base maj@16: ${r.reached ? 'reached' : 'not reached'}`,
    '',
  ].join('\n');
}
