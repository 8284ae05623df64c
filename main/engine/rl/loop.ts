// The label-free run loop: rollout → score → advantage → update, repeated.
//
// Per step: B prompts in a seeded order, N_votes samples each, answers extracted and voted on,
// N_train votes per prompt chosen at random for the update, rewards from the scorer,
// group-relative advantages, and one clipped policy-gradient step (with a KL loss to the
// reference model when klCoef > 0). With `advantage: 'gae'` (the actor–critic) the advantages
// are per token instead: the critic's values of the trained samples' tokens (runtime/critic.ts),
// GAE over each response with its reward on the last token (gae.ts), then the critic's update(s)
// on the returns and the policy's step on the whitened advantages. Everything the step did goes to `onStep` as one record,
// which the caller stores before the next step starts.
//
// Hidden answers never reach a reward: items are split into prompts and answers up front, the
// scorer's input type has no answer field, and answers are read only by `groundTruth*` code
// that produces diagnostics.
//
// Resume: the loop's whole state (step, data cursor, RNG state, best metric, alert state) is
// saved with each checkpoint, so a resumed run draws exactly the prompts, seeds and
// down-samples the uninterrupted run would have. A pause (`pauseRequested`) finishes the step in
// progress and saves a checkpoint there before returning; an abort drops the step in progress.
//
// Reviewed labels (`reviewedLabels`: those of the reviews of the run named by `reviewsOf`): a person's label for a prompt replaces its vote, and the
// group's record says so (`labelSource: 'review'`); a reviewed label none of a group's samples
// agrees with gives that prompt no gradient, and is a `review_unmatched` alert (once a prompt).
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { EpisodeRecord } from '../agent/records.ts';
import type { ExecutionRecord } from '../code/consensus.ts';
import { type GeneratedSample, Generator } from '../generate/generator.ts';
import type { LlamaConfig } from '../nn/config.ts';
import type { TextTokenizer } from '../nn/tokenizer.ts';
import { type ScheduleSpec, learningRate, warmupStepsFromRatio } from '../optim/schedule.ts';
import { deviceBufferUsage, resetDeviceBufferPeak } from '../runtime/device-buffers.ts';
import type { Device } from '../runtime/devices.ts';
import { SeededRng } from '../runtime/rng.ts';
import { bucketLength } from '../runtime/token-logprobs.ts';
import { type BatchShape, type StepResult, Trainer, makeCausalBatch } from '../runtime/trainer.ts';
import { Critic, type CriticState, type CriticStepResult } from '../runtime/critic.ts';
import type { FlatArray } from '../runtime/parameter-store.ts';
import { ADAMW_DEFAULTS } from '../optim/adamw.ts';
import type { TrainableCopy } from '../runtime/parameter-store.ts';
import type { HostWeight } from '../runtime/weights.ts';
import { extractAnswer, majorityVote } from '../tasks/answers.ts';
import type { AnswerFormat } from '../tasks/extract.ts';
import { groupAdvantages, roleTokenAdvantages } from './advantages.ts';
import { decodeText } from '../generate/stopping.ts';
import { explainedVariance, gae, outcomeRewards } from './gae.ts';
import { nextKlCoef } from './kl-controller.ts';
import { type RunConfig, klControlOf, methodOf, signalThresholdsOf } from './config.ts';
import type { HiddenCheck, MethodDefinition, MethodSignal } from './methods/types.ts';
import { FrozenJudge } from './judge.ts';
import { EmaTeacher, emaAlpha } from './teacher.ts';
import { type Alert, CRITIC_METRICS, CollapseWatch, DEVICE_BUFFERS_METRIC, MIXED_PRECISION_METRICS, REVISION_METRICS, REWARD_TRUTH_CORRELATION, TRAIN_METRICS, type ValidationGroup, isCorrect, pointBiserial, valMetricName, validationScores } from './metrics.ts';
import { type MemoryBudget, type RunShapes, adaptedWeightValues, adaptersMerged, estimateHostBytes, estimateRunBytes, formatGiB, heldWeightBytes, hostMemoryBudget, memoryBudget, weightCount } from './memory.ts';
import { LongPromptError, encodePrompt, longPromptMessage, maxPromptTokens } from './prompts.ts';
import type { GroupScore, JudgeExchange, ReviseRequest, Revision, Scorer, ScorerSample, VoteCount } from './rewards.ts';
import type { PromptFormat } from './prompts.ts';
import { type SignalGroup, SignalWatch, signalMetrics } from './signal.ts';
import { mean } from './stats.ts';

export interface LoopItem {
  prompt: string;
  /** Hidden answer: only ever used for diagnostics (ground-truth metrics). */
  answer?: string | null;
}

export interface LoopModel {
  config: LlamaConfig;
  weights: ReadonlyMap<string, HostWeight>;
  tokenizer: TextTokenizer;
  /** The model's folder (checkpoints copy its config and tokenizer files). */
  dir?: string;
}

export interface LoopInput {
  /** Checked where the run was created (parseRunConfig, checkRunConfig): the loop does not check it again. */
  config: RunConfig;
  model: LoopModel;
  device: Device;
  /** Training prompts. */
  items: readonly LoopItem[];
  /** Each training item's id in its dataset (dataset_items.idx), which the records carry; absent: its position in `items`. */
  itemIdx?: readonly number[];
  /** Labeled held-out prompts for val/avg@k, val/maj@k, val/pass@k (none: no validation). */
  validation?: readonly { prompt: string; answer: string }[];
  /** Where the `last-<step>/` and `best-<step>/` checkpoints go (none: no checkpoints). */
  checkpointDir?: string;
  /** A checkpoint folder to continue from (its loop state picks the next step). */
  resumeFrom?: string;
  /** Replaces the method's scorer (plugins, tests). */
  scorer?: Scorer;
  /**
   * Labels a person reviewed, by item (its `itemIdx`): such a group takes this label instead of its
   * vote (hard reward for agreeing with it), whatever the method's threshold.
   */
  reviewedLabels?: ReadonlyMap<number, string>;
}

// One step's records carry the names the database rows and the contract's views use
// (`itemIdx`, `extractedAnswer`, ...), so the sink copies them without renaming.
export interface SampleRecord {
  text: string;
  /** Extracted final answer, or null. */
  extractedAnswer: string | null;
  reward: number;
  /** 0 for samples not used for training. */
  advantage: number;
  usedForTraining: boolean;
  /** The generated token ids (what the per-token arrays describe). */
  tokenIds: Int32Array;
  /** Per generated token: log-prob under the rollout policy, the token entropy and the self-certainty. */
  logprobs: Float32Array;
  entropies: Float32Array;
  selfCertainties: Float32Array;
  /** The method's parts of this sample's reward (certainty, prior, ...); absent when it has none. */
  details?: Record<string, number>;
  /** What the judge was asked about this sample and answered; absent when it was not asked. */
  judge?: JudgeExchange;
  /** An agent method's sample is an episode: its turns and skills (`agent/records.ts`). */
  episode?: EpisodeRecord;
  /** Its outcome against the item's hidden answer, where the method checks it (`hidden`: code's hidden tests); evaluation only. */
  hiddenResult?: string;
}

export interface GroupRecord {
  /** The item's id in its dataset (`itemIdx` of the input), or its position in `items` without one. */
  itemIdx: number;
  prompt: string;
  pseudoLabel: string | null;
  voteCounts: { answer: string; count: number }[];
  majorityRatio: number;
  /** Pseudo-label equals the hidden answer; null when the item has none. */
  labelCorrect: boolean | null;
  /** False when the scorer gave this prompt no label (it got no update). */
  labeled: boolean;
  /** Where the pseudo-label came from: the model's vote, or a person's review (`reviewedLabels`). */
  labelSource: 'vote' | 'review';
  samples: SampleRecord[];
  /** A code method's execution matrix (`GroupScore.execution`). */
  execution?: ExecutionRecord;
}

export interface CheckpointRecord {
  kind: 'last' | 'best';
  path: string;
  /** The validation metric that made it best (null for 'last'). */
  metric: { name: string; value: number } | null;
}

export interface StepRecord {
  /** 1-based; 0 is the validation of the starting model (valBeforeTrain), which has no groups. */
  step: number;
  metrics: Record<string, number>;
  groups: GroupRecord[];
  checkpoints: CheckpointRecord[];
  alerts: Alert[];
  /** Prompt plus completion tokens of every sample of the rollout (TRL's num_tokens per step); absent for step 0. */
  tokens?: number;
  /** Set when this step's validation is the run's best so far (step 0, the base model, included). */
  best?: { metric: string; value: number };
}

export interface LoopProgress {
  step: number;
  totalSteps: number;
  phase: 'setup' | 'rollout' | 'update' | 'validation' | 'checkpoint';
}

export interface LoopHooks {
  /** Awaited before the next step starts (store the record here). */
  onStep?: (record: StepRecord) => void | Promise<void>;
  onProgress?: (progress: LoopProgress) => void;
  /** Stops the run between phases; the step in progress is dropped (never reported). */
  signal?: AbortSignal;
  /**
   * Asked at each step boundary: true finishes the step in progress, saves a 'last' checkpoint
   * there (when the loop has a checkpointDir) and returns with `paused`, so a resume loses nothing.
   */
  pauseRequested?: () => boolean;
}

export interface LoopResult {
  /** The last step completed and reported. */
  lastStep: number;
  aborted: boolean;
  /** Ended at a step boundary on `pauseRequested`, with its 'last' checkpoint saved. */
  paused: boolean;
  /**
   * Set when the signal check stopped the run (`signalAction: 'stop'`): that step was rolled out
   * and recorded but not trained, and its 'last' checkpoint saved, so a resume continues after it.
   */
  signalStop?: { step: number; message: string };
  best: { metric: string; value: number; step: number } | null;
}

/** What a checkpoint's `extra` holds. */
export const LoopStateSchema = z.object({
  kind: z.literal('autodidact-rl-loop'),
  step: z.number().int().min(0),
  /** Prompts consumed so far (position in the seeded order). */
  cursor: z.number().int().min(0),
  /** Training prompts the order was drawn over: resuming with another list would change it. */
  itemCount: z.number().int().min(1),
  rng: z.tuple([z.number(), z.number(), z.number(), z.number()]),
  best: z.object({ metric: z.string(), value: z.number(), step: z.number().int() }).nullable(),
  watch: z.object({ collapsed: z.boolean(), dropped: z.boolean() }),
  /** The adaptive KL coefficient reached (absent: the run's fixed klCoef). */
  klCoef: z.number().positive().optional(),
  /** The signal check's alert state (absent in checkpoints saved before it existed). */
  signal: z.object({ weak: z.boolean(), recent: z.array(z.record(z.string(), z.number())).optional() }).optional(),
});
export type LoopState = z.infer<typeof LoopStateSchema>;

/**
 * The item index at each position of the prompt stream: epoch after epoch, each a seeded
 * permutation of all items. A pure function of (seed, count, position), so resuming needs only
 * the cursor.
 */
export class PromptOrder {
  private readonly epochs = new Map<number, number[]>();
  constructor(
    private readonly seed: number,
    private readonly count: number,
  ) {
    if (count <= 0) throw new Error('the run needs at least one training prompt');
  }

  at(position: number): number {
    const epoch = Math.floor(position / this.count);
    let perm = this.epochs.get(epoch);
    if (!perm) {
      perm = new SeededRng((Math.imul(this.seed, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0).shuffle(Array.from({ length: this.count }, (_, i) => i));
      this.epochs.clear();
      this.epochs.set(epoch, perm);
    }
    return perm[position % this.count];
  }
}

/** The scorer of the run's method, given the method's own settings. */
export function scorerFor(config: RunConfig): Scorer {
  const method = methodOf(config);
  if (!method.scorer) throw new Error(`method "${method.id}" runs the ${method.pipeline} pipeline and has no scorer for the RL loop`);
  return method.scorer(method.settings.parse(config), config);
}

const seconds = (since: number): number => (performance.now() - since) / 1000;

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new LoopAborted();
}

class LoopAborted extends Error {}

/**
 * A group's vote as the record and the collapse watch see it: the method's own (vote methods), or
 * the loop's majority vote over the answers for methods that do not vote (then no pseudo-label:
 * the method gave none, and nothing agrees with one).
 */
interface GroupVote {
  pseudoLabel: string | null;
  voteCounts: VoteCount[];
  majorityRatio: number;
  agreesWithLabel: boolean[] | null;
}

interface ScoredGroup {
  itemIndex: number;
  promptIds: number[];
  samples: GeneratedSample[];
  texts: string[];
  answers: (string | null)[];
  score: GroupScore;
  vote: GroupVote;
  labelSource: 'vote' | 'review';
  /** Indices of the votes used for training (empty when unlabeled). */
  chosen: number[];
  /** Advantage per vote (0 when not chosen; with per-token advantages, the mean of its tokens'). */
  advantages: number[];
  /** Per vote, one advantage per generated token where the method's roles gave them (null otherwise). */
  tokenAdvantages: (number[] | null)[];
  /** Per vote, its outcome against the hidden answer where the method checks one (null: not checked). */
  hidden: (string | null)[] | null;
  /** Per revision of `score.revisions` (a second turn), its group-relative advantage (none: an unlabeled group's are not trained). */
  revisionAdvantages: number[];
}

export async function runLoop(input: LoopInput, hooks: LoopHooks = {}): Promise<LoopResult> {
  const config = input.config;
  const { model, device } = input;
  const tok = model.tokenizer;
  const scorer = input.scorer ?? scorerFor(config);
  // The loop numbers items by position; its records name them by their id in the dataset.
  const itemIdxOf = (position: number): number => input.itemIdx?.[position] ?? position;
  // The method's own step metrics read its scores: not for a scorer put in its place.
  const method = methodOf(config);
  const methodSettings = method.settings.parse(config);
  const methodMetrics = input.scorer ? undefined : method.stepMetrics;
  const needsJudge = method.services?.judge?.(methodSettings) === true;
  // Where answers are not compared as text (code), the method's own check against hidden answers: measurement only.
  const hiddenCheck = method.hidden?.check(methodSettings) ?? null;
  const hiddenChoose = method.hidden?.choose(methodSettings) ?? null;
  // A method that rewards parts of a response apart trains with one advantage per token.
  const roleAdvantages = method.tokenAdvantages?.(methodSettings) === true;
  const teacherSchedule = method.services?.teacher?.(methodSettings) ?? null;
  const signal = hooks.signal;
  const progress = (step: number, phase: LoopProgress['phase']) => hooks.onProgress?.({ step, totalSteps: config.steps, phase });
  progress(0, 'setup');

  // Prompts are split from their hidden answers here; only `truths` holds the latter.
  const promptIds = input.items.map((it) => encodePrompt(tok, it.prompt, config.promptFormat));
  const truths: (string | null)[] = input.items.map((it) => it.answer ?? null);
  const hasTruth = truths.some((t) => t !== null);
  const validation = input.validation ?? [];
  const valIds = validation.map((v) => encodePrompt(tok, v.prompt, config.promptFormat));
  // Every graph below is sized from the longest prompt: none may reach past the model's context
  // (the caller applies the run's longPrompts setting first; this is the engine's own guard).
  const limit = {
    contextLength: model.config.maxPositionEmbeddings,
    maxNewTokens: config.maxNewTokens,
    maxPromptTokens: config.maxPromptTokens,
    model: model.dir ? path.basename(model.dir) : 'the model',
  };
  const maxTokens = maxPromptTokens(limit);
  const over = [
    ...promptIds.flatMap((ids, i) => (ids.length > maxTokens ? [{ index: i, label: `training prompt ${i}`, tokens: ids.length }] : [])),
    ...valIds.flatMap((ids, i) => (ids.length > maxTokens ? [{ index: i, label: `validation prompt ${i}`, tokens: ids.length }] : [])),
  ];
  if (over.length) throw new LongPromptError(longPromptMessage(over, limit), over);
  const longestPrompt = Math.max(...promptIds.map((p) => p.length));
  const longestAny = Math.max(longestPrompt, ...valIds.map((p) => p.length));
  const order = new PromptOrder(config.seed, input.items.length);

  // Prompts end together at the longest one's last token, so every response starts at one
  // position and only those positions need the output layer (logitsFrom; trainingBatch).
  const shape: BatchShape = { size: config.promptsPerStep * config.trainSamples, seqLen: longestPrompt + config.maxNewTokens - 1, logitsFrom: longestPrompt - 1 };
  // A method's second turn (self-debugging): every sample may be continued once, so its update
  // holds up to promptsPerStep × votes revisions of the prompt, a reply, the message and a reply.
  const reviseSpec = method.services?.revise?.(methodSettings) ?? null;
  if (reviseSpec && config.advantage === 'gae') {
    throw new Error(`method "${method.id}" is asked for a second turn (its self-debugging setting), whose revisions are trained with group-relative advantages; advantage gae has no critic values for them. Set advantage to grpo, drgrpo or rloo, or turn the second turn off.`);
  }
  const reviseShape = reviseSpec
    ? { size: config.promptsPerStep * config.votes, seqLen: Math.min(model.config.maxPositionEmbeddings, longestPrompt + 2 * config.maxNewTokens + reviseSpec.messageTokens) - 1 }
    : null;
  const withCritic = config.advantage === 'gae';
  // The two updates run one after the other: the larger decides the memory, and its micro-batch serves both.
  const cost = (s: { size: number; seqLen: number }) => s.size * s.seqLen * s.seqLen;
  const largest = reviseShape && cost(reviseShape) > cost(shape) ? reviseShape : shape;
  // On a GPU the host still holds the checkpoint's weights (float16 where loaded so: hostHalf).
  const hostShare = device.name === 'cpu' ? undefined : { heldBytes: heldWeightBytes(model.weights), budget: hostMemoryBudget() };
  const memory = planRunMemory(model.config, config, largest, longestPrompt, longestAny, { judge: needsJudge, teacher: teacherSchedule !== null }, await memoryBudget(device), hostShare);
  const microBatch = memory.microBatch;
  const trainer = await Trainer.create({
    config: model.config,
    weights: model.weights,
    device,
    mode: config.mode === 'full' ? { kind: 'full' } : { kind: 'lora', rank: config.loraRank, alpha: config.loraAlpha, targetModules: config.loraTargets },
    loss: { kind: 'policy', temperature: config.temperature, clipLow: config.clipLow, clipHigh: config.clipHigh, klCoef: config.klCoef, entropyCoef: config.entropyCoef, tokenAdvantages: withCritic || roleAdvantages },
    optimizer: { weightDecay: config.weightDecay, maxGradNorm: config.maxGradNorm },
    batch: shape,
    seed: config.seed,
    source: model.dir ? { dir: model.dir } : undefined,
    precision: config.precision,
    // The judge reads the weights the run started from: under full fine-tuning, the reference.
    keepReference: config.klCoef > 0 || needsJudge,
    mergeAdapters: memory.mergeAdapters && device.name !== 'cpu',
  });
  let generator: Generator | null = null;
  let judgeGenerator: Generator | null = null;
  let teacherGenerator: Generator | null = null;
  let teacherCopy: TrainableCopy | null = null;
  let critic: Critic | null = null;
  try {
    generator = await Generator.create({
      config: model.config,
      weights: trainer.weights(),
      device,
      maxLength: Math.max(longestAny + config.maxNewTokens, (reviseShape?.seqLen ?? 0) + 1),
      // Only where the plan had to cut the rollout: validation (valSamples per prompt) keeps its batches otherwise.
      maxRows: memory.generationRows < config.promptsPerStep * config.votes ? memory.generationRows : undefined,
      precision: config.precision,
    });
    const gen = generator;
    let judge: FrozenJudge | null = null;
    if (needsJudge) {
      // Judge prompts hold a response, so their length is known only when they are asked: any that fits the model.
      const contextLength = Math.min(model.config.maxPositionEmbeddings, model.config.slidingWindow ?? Infinity);
      judgeGenerator = await Generator.create({ config: model.config, weights: await trainer.referenceWeights(), device, maxLength: contextLength, precision: config.precision });
      judge = new FrozenJudge({ generator: judgeGenerator, tokenizer: tok, promptFormat: config.promptFormat, contextLength });
    }
    const warmupSteps = warmupStepsFromRatio(config.warmupRatio, config.steps);
    const schedule: ScheduleSpec =
      config.lrSchedule === 'cosine'
        ? { kind: 'cosine', lr: config.lr, warmupSteps, totalSteps: config.steps, minLrRatio: config.minLrRatio }
        : { kind: 'constant', lr: config.lr, warmupSteps };
    const bestName = valMetricName(config.bestMetric, config.valSamples);
    // parseRunConfig has checked the controller's settings.
    const klControl = config.klTarget > 0 ? klControlOf(config) : null;
    const watch = new CollapseWatch({ majorityRatio: config.collapseMajorityRatio, entropy: config.collapseEntropy, valDrop: config.collapseValDrop });
    const signalWatch = new SignalWatch({ ...signalThresholdsOf(config), ...(method.signal && { answered: method.signal.answered }) });
    /** Prompts whose reviewed label matched no sample, already named in an alert. */
    const unmatchedWarned = new Set<number>();

    let state: LoopState = { kind: 'autodidact-rl-loop', step: 0, cursor: 0, itemCount: input.items.length, rng: new SeededRng(config.seed + 1).state(), best: null, watch: watch.state };
    let resumedTeacher: Float32Array | null = null;
    let resumedCritic: CriticState | null = null;
    if (input.resumeFrom) {
      const { extra, teacher: savedTeacher, critic: savedCritic } = await trainer.load(input.resumeFrom);
      resumedTeacher = savedTeacher;
      resumedCritic = savedCritic;
      const parsed = LoopStateSchema.safeParse(extra);
      if (!parsed.success) throw new Error(`${input.resumeFrom} holds no run-loop state to resume from`);
      state = parsed.data;
      if (state.itemCount !== input.items.length) {
        throw new Error(`${input.resumeFrom} was saved by a run over ${state.itemCount} prompts; this one has ${input.items.length}, so the prompt order would differ`);
      }
      watch.state = state.watch;
      if (state.signal) signalWatch.state = state.signal;
    }
    const rng = SeededRng.fromState(state.rng);

    // The EMA teacher starts as the policy (or as it was saved with the checkpoint resumed from).
    let teacher: EmaTeacher | null = null;
    if (teacherSchedule) {
      const values = resumedTeacher ? widen(resumedTeacher, trainer) : await trainer.store.readFlat();
      teacherCopy = await trainer.store.trainableCopy(values);
      teacherGenerator = await Generator.create({ config: model.config, weights: teacherCopy, device, maxLength: longestAny + config.maxNewTokens, precision: config.precision });
      teacher = new EmaTeacher({
        copy: teacherCopy,
        values,
        generator: teacherGenerator,
        tokenizer: tok,
        promptFormat: config.promptFormat,
        answerFormat: config.answerFormat,
        sampling: { maxNewTokens: config.maxNewTokens, temperature: config.temperature, topP: config.topP, topK: config.topK, stopStrings: config.stopStrings },
      });
    }
    // The critic starts at zero (or as it was saved with the checkpoint resumed from).
    if (withCritic) {
      critic = await Critic.create({
        hiddenSize: model.config.hiddenSize,
        device,
        dtype: trainer.store.dtype,
        batch: shape,
        cliprange: config.valueClip,
        optimizer: { ...ADAMW_DEFAULTS, weightDecay: config.weightDecay, maxGradNorm: config.maxGradNorm },
      });
      if (input.resumeFrom) {
        if (!resumedCritic) throw new Error(`${input.resumeFrom} holds no critic (critic.safetensors), so this run (advantage gae) cannot resume from it: it was saved by a run with another advantage estimator`);
        critic.restore(resumedCritic, input.resumeFrom);
      }
    }
    // What a checkpoint keeps beside the policy: the EMA teacher and the critic, where the run has them.
    const teacherValues = () => ({ ...(teacher && { teacher: teacher.values }), ...(critic && { critic: critic.state() }) });

    // Validation: k samples per labeled prompt, in chunks about the size of a training rollout.
    const validate = async (step: number): Promise<Record<string, number>> => {
      progress(step, 'validation');
      const k = config.valSamples;
      const perChunk = Math.max(1, Math.floor((config.promptsPerStep * config.votes) / k));
      const groups: ValidationGroup[] = [];
      for (let start = 0; start < validation.length; start += perChunk) {
        checkAborted(signal);
        const out = await gen.generate({
          promptIds: valIds.slice(start, start + perChunk),
          samplesPerPrompt: k,
          maxNewTokens: config.maxNewTokens,
          temperature: config.valTemperature,
          topP: config.valTopP,
          // Its own seed per step, so validating never moves the training RNG; each prompt's
          // streams by its place in the validation set, so the chunks (sized from the training
          // batch) change nothing: runs that differ in votes share their step-0 baseline.
          seed: (config.seed * 1_000_003 + step * 7_919) >>> 0,
          firstPromptIndex: start,
          stopStrings: config.stopStrings,
          tokenizer: tok,
          signal,
        });
        for (let p = 0; p * k < out.samples.length; p++) {
          const texts = out.samples.slice(p * k, (p + 1) * k).map((s) => s.text ?? '');
          groups.push(await validationGroup(texts, validation[start + p].answer, config.answerFormat, hiddenCheck && hiddenChoose && { check: hiddenCheck, choose: hiddenChoose }, signal));
        }
      }
      const s = validationScores(groups, config.answerFormat);
      return { [valMetricName('avg', k)]: s.avg, [valMetricName('maj', k)]: s.maj, [valMetricName('pass', k)]: s.pass };
    };

    // After a validation: track the best value, alert on a drop, save 'best' when it improves.
    const afterValidation = async (step: number, metrics: Record<string, number>, record: StepRecord) => {
      const value = metrics[bestName];
      const improved = state.best === null || value > state.best.value;
      if (improved) {
        state.best = { metric: bestName, value, step };
        record.best = { metric: bestName, value };
      } else {
        const alert = watch.onValidation(step, bestName, value, state.best!, input.checkpointDir !== undefined, validation.length);
        if (alert) record.alerts.push(alert);
      }
      // Step 0 is the base model itself: nothing to save.
      if (improved && step > 0 && input.checkpointDir) {
        progress(step, 'checkpoint');
        const dir = path.join(input.checkpointDir, checkpointFolder('best', step));
        await trainer.save(dir, { ...state, watch: watch.state }, teacherValues());
        record.checkpoints.push({ kind: 'best', path: dir, metric: { name: bestName, value } });
      }
    };

    try {
      if (state.step === 0 && config.valBeforeTrain && validation.length > 0 && config.valEvery > 0) {
        const record: StepRecord = { step: 0, metrics: await validate(0), groups: [], checkpoints: [], alerts: [] };
        await afterValidation(0, record.metrics, record);
        await hooks.onStep?.(record);
      }

      // The step whose state a resume would continue from: the checkpoint resumed from, or the start.
      let resumableAt = state.step;
      for (let step = state.step + 1; step <= config.steps; step++) {
        checkAborted(signal);
        // Asked before any step of this session was trained: nothing to save, stop now.
        if (hooks.pauseRequested?.() && state.step === resumableAt) return { lastStep: state.step, aborted: false, paused: true, best: state.best };
        const stepStart = performance.now();
        resetDeviceBufferPeak();

        // Rollout.
        progress(step, 'rollout');
        const itemIndices = Array.from({ length: config.promptsPerStep }, (_, i) => order.at(state.cursor + i));
        const rolloutStart = performance.now();
        const rollout = await gen.generate({
          promptIds: itemIndices.map((i) => promptIds[i]),
          samplesPerPrompt: config.votes,
          maxNewTokens: config.maxNewTokens,
          temperature: config.temperature,
          topP: config.topP,
          topK: config.topK,
          seed: rng.nextUint32(),
          stopStrings: config.stopStrings,
          tokenizer: tok,
          signal,
        });
        const rolloutSeconds = seconds(rolloutStart);

        // Score, down-sample, advantages.
        // One group at a time, in order: the RNG draws below must not depend on when a scorer answers.
        const groups: ScoredGroup[] = [];
        for (const [p, itemIndex] of itemIndices.entries()) {
          checkAborted(signal);
          const samples = rollout.samples.slice(p * config.votes, (p + 1) * config.votes);
          const texts = samples.map((s) => s.text ?? tok.decode(s.tokenIds, { skipSpecialTokens: true }));
          const answers = texts.map((t) => extractAnswer(t, config.answerFormat));
          const scorerSamples: ScorerSample[] = samples.map((s, i) => ({
            text: texts[i],
            answer: answers[i],
            tokenCount: s.tokenIds.length,
            tokenIds: s.tokenIds,
            logprobs: s.logprobs,
            entropies: s.entropies,
            selfCertainties: s.selfCertainties,
          }));
          // The judge's sampling seed depends on the run's seed, the step and the group only.
          const judgeSeed = (Math.imul(config.seed, 0x9e3779b1) ^ Math.imul(step, 0x85ebca6b) ^ Math.imul(p + 1, 0xc2b2ae35)) >>> 0;
          const services = { ...(judge && { judge: judge.bind(judgeSeed, signal) }), ...(teacher && { teacher: teacher.bind((judgeSeed ^ 0x5bd1e995) >>> 0, signal) }) };
          // The second turn: each request's sample continued by its message, one revision each, seeded by the group.
          const revise = reviseShape
            ? async (requests: readonly ReviseRequest[]): Promise<(Revision | null)[]> => {
                const maxPrompt = reviseShape.seqLen + 1 - config.maxNewTokens;
                const ids = requests.map((q) => secondTurnIds(tok, config.promptFormat, input.items[itemIndex].prompt, promptIds[itemIndex], samples[q.sample].tokenIds, texts[q.sample], q.message));
                const asked = ids.filter((x) => x.length <= maxPrompt);
                if (asked.length === 0) return requests.map(() => null);
                const out = await gen.generate({
                  promptIds: asked,
                  samplesPerPrompt: 1,
                  maxNewTokens: config.maxNewTokens,
                  temperature: config.temperature,
                  topP: config.topP,
                  topK: config.topK,
                  seed: (judgeSeed ^ 0x27d4eb2f) >>> 0,
                  stopStrings: config.stopStrings,
                  tokenizer: tok,
                  signal,
                });
                let k = 0;
                return ids.map((x) => {
                  if (x.length > maxPrompt) return null;
                  const r = out.samples[k++];
                  return { text: r.text ?? decodeText(tok, r.tokenIds), promptIds: x, tokenIds: [...r.tokenIds], logprobs: [...r.logprobs] };
                });
              }
            : undefined;
          const scored = await scorer({ prompt: input.items[itemIndex].prompt, samples: scorerSamples }, { signal, tokenEnds: (ids) => tokenEnds(tok, ids), ...services, ...(revise && { revise }) });
          checkScore(scored, samples);
          if (scored.roles && !roleAdvantages) throw new Error(`the scorer gave rewards per role (${scored.roles.names.join(', ')}), but method "${method.id}" does not train with per-token advantages (its tokenAdvantages)`);
          const reviewed = input.reviewedLabels?.get(itemIdxOf(itemIndex));
          const score = reviewed === undefined ? scored : withReviewedLabel(scored, answers, reviewed, config);
          // Drawn for every group, labeled or not, so the RNG stream does not depend on the labels.
          const shuffled = rng.shuffle(Array.from({ length: config.votes }, (_, i) => i));
          const chosen = score.labeled ? shuffled.slice(0, config.trainSamples).sort((a, b) => a - b) : [];
          const advantages = new Array<number>(config.votes).fill(0);
          const tokenAdvantages = new Array<number[] | null>(config.votes).fill(null);
          // Under GAE the advantages are per token, from the critic, once every group is scored (below).
          if (config.advantage !== 'gae' && score.roles) {
            const perToken = roleTokenAdvantages(score.roles, chosen, config.advantage, config.advantageEpsilon);
            chosen.forEach((i, j) => {
              tokenAdvantages[i] = perToken[j];
              advantages[i] = perToken[j].length ? mean(perToken[j]) : 0;
            });
          } else if (config.advantage !== 'gae') {
            const adv = groupAdvantages(
              chosen.map((i) => score.rewards[i]),
              config.advantage,
              config.advantageEpsilon,
            );
            chosen.forEach((i, j) => (advantages[i] = adv[j]));
          }
          const vote = groupVote(score, answers, config);
          // Evaluation only: run after the scorer, whose input never held the hidden answer.
          const truth = truths[itemIndex];
          const hiddenResults = hiddenCheck && truth !== null ? await Promise.all(texts.map((t) => hiddenCheck(t, truth, signal))) : null;
          const hidden = hiddenResults?.some((r) => r !== null) ? hiddenResults : null;
          // Second turns: trained (labeled groups) with their advantage among the group's revisions; checked against the hidden answer too.
          const revisions = score.labeled ? (score.revisions ?? []) : [];
          const revisionAdvantages = groupAdvantages(
            revisions.map((r) => r.reward),
            config.advantage === 'gae' ? 'grpo' : config.advantage,
            config.advantageEpsilon,
          );
          for (const [j, rec] of (score.execution?.revisions ?? []).entries()) {
            rec.advantage = revisionAdvantages[j] ?? 0;
            const outcome = hiddenCheck && truth !== null ? await hiddenCheck(rec.text, truth, signal) : null;
            if (outcome !== null) rec.hiddenResult = outcome;
          }
          groups.push({ itemIndex, promptIds: promptIds[itemIndex], samples, texts, answers, score, vote, labelSource: reviewed === undefined ? 'vote' : 'review', chosen, advantages, tokenAdvantages, hidden, revisionAdvantages });
        }
        state = { ...state, cursor: state.cursor + config.promptsPerStep, rng: rng.state() };

        // The critic's values and the GAE advantages, before the signal check reads the advantages.
        const criticStart = performance.now();
        const critique = critic ? await criticPass(trainer, critic, groups, shape, tok.padTokenId ?? 0, config) : null;
        const criticSeconds = seconds(criticStart);

        // The signal check, on this rollout before its update (at step 1: the pre-flight check).
        const majorityRatio = mean(groups.map((g) => g.vote.majorityRatio));
        const signalGroups = groups.map((g) => signalGroup(g, method.signal?.of(g) ?? null));
        const signalNumbers = signalMetrics(signalGroups);
        // The ratio the check compares with chance: the method's own where it counts groups its way.
        const signalRatio = method.signal ? mean(signalGroups.map((g) => g.majorityRatio)) : majorityRatio;
        const signalAlert = signalWatch.onStep(step, { ...signalNumbers, [TRAIN_METRICS.majorityRatio]: signalRatio }, step === 1);
        const stopForSignal = signalAlert !== null && config.signalAction === 'stop';

        // Update (none when the signal check stops the run: nothing is learned from noise).
        checkAborted(signal);
        const lr = learningRate(schedule, step - 1);
        const klCoef = state.klCoef ?? config.klCoef;
        let update: StepResult | null = null;
        let revisionUpdate: StepResult | null = null;
        // The critic's values pass counts as update time (it is the critic's forward pass).
        let updateSeconds = criticSeconds;
        const criticUpdates: CriticStepResult[] = [];
        if (!stopForSignal) {
          progress(step, 'update');
          const updateStart = performance.now();
          if (critic && critique) {
            // The critic first, as verl: its updates read the hidden states of the values pass.
            for (let e = 0; e < config.criticEpochs; e++) {
              criticUpdates.push(await critic.step({ hidden: critique.hidden, returns: critique.returns, oldValues: critique.values, mask: critique.mask }, config.criticLr));
            }
          }
          // During the critic's warmup the policy waits.
          const policyWaits = critic !== null && step <= config.criticWarmup;
          if (!policyWaits) update = await policyUpdate(trainer, groups, shape, microBatch, klCoef, lr, tok.padTokenId ?? 0, critique?.tokenAdvantages ?? (roleAdvantages ? 'groups' : undefined));
          // The second turns' replies: one more step, on their own batch.
          if (!policyWaits && reviseShape) revisionUpdate = await reviseUpdate(trainer, groups, reviseShape, microBatch, klCoef, lr, tok.padTokenId ?? 0, withCritic || roleAdvantages);
          updateSeconds += seconds(updateStart);
          if (klControl && update && !update.skipped) state = { ...state, klCoef: nextKlCoef(klCoef, update.kl ?? NaN, klControl) };
          // The teacher follows the policy slowly, after every update that changed it.
          if (teacher && teacherSchedule && update && !update.skipped) await teacher.update(await trainer.store.readFlat(), emaAlpha(step, config.steps, teacherSchedule.alphaStart, teacherSchedule.alphaEnd));
        }

        const record: StepRecord = { step, metrics: {}, groups: [], checkpoints: [], alerts: [] };
        record.groups = groups.map((g) => groupRecord(g, itemIdxOf(g.itemIndex), input.items[g.itemIndex].prompt, truths[g.itemIndex], config));
        const allSamples = groups.flatMap((g) => g.samples);
        const tokens = allSamples.reduce((s, x) => s + x.tokenIds.length, 0);
        record.tokens = groups.reduce((s, g) => s + g.samples.length * g.promptIds.length, tokens);
        const entropy = tokens === 0 ? 0 : allSamples.reduce((s, x) => s + x.entropies.reduce((a, b) => a + b, 0), 0) / tokens;
        const trained = groups.flatMap((g) => g.chosen.map((i) => ({ g, i })));
        const m = record.metrics;
        // A method that counts its own agreeing groups (code: consensus sets) logs and watches that ratio.
        m[TRAIN_METRICS.majorityRatio] = signalRatio;
        m[TRAIN_METRICS.labeledRatio] = groups.length === 0 ? 0 : groups.filter((g) => g.score.labeled).length / groups.length;
        m[TRAIN_METRICS.majorityVotingReward] = mean(trained.map(({ g, i }) => g.score.rewards[i]));
        m[TRAIN_METRICS.entropy] = entropy;
        m[TRAIN_METRICS.responseLength] = allSamples.length === 0 ? 0 : tokens / allSamples.length;
        // A step stopped before its update has no update figures (a gap in those charts, not zeros).
        if (!stopForSignal) {
          m[TRAIN_METRICS.clipRatio] = update?.clipRatio ?? 0;
          m[TRAIN_METRICS.ppoKl] = update?.ppoKl ?? 0;
          m[TRAIN_METRICS.kl] = update?.kl ?? 0;
          m[TRAIN_METRICS.klCoef] = klCoef;
          m[TRAIN_METRICS.gradNorm] = update?.gradNorm ?? 0;
          m[TRAIN_METRICS.lr] = lr;
          m[TRAIN_METRICS.pgLoss] = update?.pgLoss ?? 0;
          if (update?.lossScale !== undefined) {
            m[MIXED_PRECISION_METRICS.lossScale] = update.lossScale;
            m[MIXED_PRECISION_METRICS.skippedUpdates] = trainer.skippedUpdates;
          }
        }
        Object.assign(m, signalNumbers);
        if (revisionUpdate) {
          m[REVISION_METRICS.pgLoss] = revisionUpdate.pgLoss ?? 0;
          m[REVISION_METRICS.gradNorm] = revisionUpdate.gradNorm;
        }
        if (critique) Object.assign(m, critique.metrics);
        if (criticUpdates.length > 0) {
          const avg = (f: (r: CriticStepResult) => number) => mean(criticUpdates.map(f));
          m[CRITIC_METRICS.vfLoss] = avg((r) => r.vfLoss);
          m[CRITIC_METRICS.vfClipfrac] = avg((r) => r.vfClipfrac);
          m[CRITIC_METRICS.vpredMean] = avg((r) => r.vpredMean);
          m[CRITIC_METRICS.gradNorm] = avg((r) => r.gradNorm);
          m[CRITIC_METRICS.lr] = config.criticLr;
        }
        if (methodMetrics) Object.assign(m, methodMetrics(groups, methodSettings));
        if (hasTruth) Object.assign(m, groundTruthMetrics(groups, truths, config, input.scorer ? undefined : method.truthCorrelation), methodTruthMetrics(input.scorer ? undefined : method.truthMetrics, groups, truths, config));
        const checked = groups.flatMap((g) => (g.hidden ?? []).filter((r) => r !== null));
        if (method.hidden && checked.length > 0) m[method.hidden.metric] = mean(checked.map((r) => (r === 'pass' ? 1 : 0)));
        if (signalAlert) record.alerts.push(signalAlert);

        const alert = watch.onTrainStep(step, signalRatio, entropy);
        if (alert) record.alerts.push(alert);
        const unmatched = unmatchedReviewAlert(step, groups, input.items, unmatchedWarned);
        if (unmatched) record.alerts.push(unmatched);

        state = { ...state, step, watch: watch.state, signal: signalWatch.state };
        const validateNow = !stopForSignal && validation.length > 0 && config.valEvery > 0 && (step % config.valEvery === 0 || step === config.steps);
        if (validateNow) {
          const val = await validate(step);
          Object.assign(m, val);
          await afterValidation(step, val, record);
        }

        state = { ...state, watch: watch.state };
        // Read once: the answer decides both the checkpoint and the return below.
        const pausing = step < config.steps && (hooks.pauseRequested?.() ?? false);
        const saveLast = input.checkpointDir && (pausing || stopForSignal || (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) || step === config.steps);
        if (saveLast) {
          progress(step, 'checkpoint');
          const dir = path.join(input.checkpointDir!, checkpointFolder('last', step));
          await trainer.save(dir, state, teacherValues());
          record.checkpoints.push({ kind: 'last', path: dir, metric: null });
          resumableAt = step;
        }

        const stepSeconds = seconds(stepStart);
        m[TRAIN_METRICS.timingRollout] = rolloutSeconds;
        m[TRAIN_METRICS.timingUpdate] = updateSeconds;
        m[TRAIN_METRICS.timingStep] = stepSeconds;
        m[TRAIN_METRICS.tokensPerSecond] = stepSeconds > 0 ? tokens / stepSeconds : 0;
        if (device.keepsStateOnDevice) m[DEVICE_BUFFERS_METRIC] = deviceBufferUsage().peakBytes / 1024 ** 2;
        await hooks.onStep?.(record);
        // Only now that the caller has stored the record may older checkpoints go.
        if (input.checkpointDir) {
          const saved = (kind: 'last' | 'best') => (record.checkpoints.some((c) => c.kind === kind) ? step : null);
          await pruneCheckpoints(input.checkpointDir, { last: saved('last'), best: saved('best') });
        }
        if (stopForSignal) return { lastStep: state.step, aborted: false, paused: false, best: state.best, signalStop: { step, message: signalAlert.message } };
        if (pausing) return { lastStep: state.step, aborted: false, paused: true, best: state.best };
      }
      return { lastStep: state.step, aborted: false, paused: false, best: state.best };
    } catch (e) {
      if (e instanceof LoopAborted || signal?.aborted) return { lastStep: state.step, aborted: true, paused: false, best: state.best };
      throw e;
    }
  } finally {
    await generator?.release();
    await judgeGenerator?.release();
    await teacherGenerator?.release();
    teacherCopy?.release();
    await critic?.release();
    await trainer.release();
  }
}

/** A saved teacher's float32 values in the store's float type. */
function widen(values: Float32Array, trainer: Trainer): Float32Array | Float64Array {
  return trainer.store.dtype === 'float64' ? Float64Array.from(values) : values;
}

/** How a run's passes are sized to its memory (planRunMemory). */
export interface MemoryPlan {
  /** Sequences of the update in one forward/backward pass (see Trainer.step's microBatch). */
  microBatch: number;
  /** Sample rows the generator decodes at once (a multiple of votes); more are generated in turns. */
  generationRows: number;
  /** The estimated peak (bytes) with these sizes, and the budget it was held to; null where the device reports no memory. */
  estimateBytes: number | null;
  budget: MemoryBudget | null;
  /** On a GPU, the host's share (estimateHostBytes), held to the host's budget; null on the CPU (the estimate above is the host's). */
  hostEstimateBytes: number | null;
  /** Under LoRA on a GPU: generate from weights with the adapters merged in, where the copy fits beside these passes (adaptersMerged; counted in estimateBytes). */
  mergeAdapters: boolean;
}

/**
 * The sizes of a run's passes, decided before any graph is built. The update: the `microBatch`
 * setting, or with 0 the whole update when it fits the budget, else the largest micro-batch that
 * does. Sampling: all promptsPerStep × votes rows at once, or where even a micro-batch of one
 * does not fit with them, the most whole prompts' rows that do (generated in turns, the same
 * samples: see Generator's maxRows). A run that does not fit even so is refused, with what to
 * change: on the CPU running out takes the whole process down, and on a GPU the run would fail
 * at its first big allocation. With no budget (WebGPU off NVIDIA, where no memory is reported,
 * unless AUTODIDACT_GPU_MEMORY says) the whole update, or the setting, and every row at once.
 * On a GPU, `host` (the bytes the model's weights are held in on the host, and the host's budget)
 * checks the host's share too: a checkpoint that does not fit the host is refused before loading
 * anything onto the device.
 */
export function planRunMemory(
  c: LlamaConfig,
  config: RunConfig,
  update: { size: number; seqLen: number },
  longestPrompt: number,
  longestAny: number,
  services: { judge: boolean; teacher: boolean },
  budget: MemoryBudget | null,
  host?: { heldBytes: number; budget: MemoryBudget },
): MemoryPlan {
  const fixed = config.microBatch > 0 ? Math.min(config.microBatch, update.size) : null;
  const allRows = config.promptsPerStep * config.votes;
  const lora = c.numLayers * config.loraTargets.length * config.loraRank * 2 * Math.max(c.hiddenSize, c.intermediateSize);
  const trainable = config.mode === 'full' ? weightCount(c) : lora;
  const hostEstimateBytes = host ? estimateHostBytes(host.heldBytes, { trainable, teacher: services.teacher }) : null;
  if (host && hostEstimateBytes! > host.budget.bytes) {
    throw new Error(
      `this run would hold about ${formatGiB(hostEstimateBytes!)} of the host's memory, more than the ${formatGiB(host.budget.bytes)} it may use (${host.budget.source}): ` +
        `the model's weights take ${formatGiB(host.heldBytes)} as loaded${config.mode === 'full' ? ', and full fine-tuning passes its float32 master weights and moments through the host' : ''}. ` +
        'With a float16 or bfloat16 checkpoint, precision "mixed" holds its weights in 2 bytes a value instead of 4' +
        (config.mode === 'full' ? ' (a bfloat16 one only under mode lora)' : '') +
        '; else raise AUTODIDACT_MEMORY_LIMIT if the machine has the memory.',
    );
  }
  const shapes = (micro: number, prompts: number): RunShapes => ({
    update: { ...update, microBatch: micro },
    reference: config.klCoef > 0 || services.judge,
    generate: { rows: prompts * config.votes, prompts, maxLength: longestAny + config.maxNewTokens },
    trainable,
    teacher: services.teacher,
    critic: config.advantage === 'gae',
    precision: config.precision,
  });
  if (!budget) return { microBatch: fixed ?? update.size, generationRows: allRows, estimateBytes: null, budget: null, hostEstimateBytes, mergeAdapters: adaptersMerged(c, config, shapes(fixed ?? update.size, config.promptsPerStep), null) };
  const need = (micro: number, prompts: number) => estimateRunBytes(c, shapes(micro, prompts), budget.onDevice);
  // The merged copy is kept only where it fits beside the passes the run plans without it: it never makes them smaller.
  const plan = (micro: number, prompts: number): MemoryPlan => {
    const mergeAdapters = adaptersMerged(c, config, shapes(micro, prompts), budget);
    const estimateBytes = estimateRunBytes(c, { ...shapes(micro, prompts), ...(mergeAdapters && { merged: adaptedWeightValues(c, config.loraTargets) }) }, budget.onDevice);
    return { microBatch: micro, generationRows: prompts * config.votes, estimateBytes, budget, hostEstimateBytes, mergeAdapters };
  };
  // Micro-batches first (all rows sampled at once), then fewer prompts sampled at a time.
  const candidates = fixed !== null ? [fixed] : Array.from({ length: update.size }, (_, i) => update.size - i);
  for (const micro of candidates) if (need(micro, config.promptsPerStep) <= budget.bytes) return plan(micro, config.promptsPerStep);
  const smallest = candidates[candidates.length - 1];
  for (let prompts = config.promptsPerStep - 1; prompts >= 1; prompts--) if (need(smallest, prompts) <= budget.bytes) return plan(smallest, prompts);
  const where = budget.onDevice ? 'GPU memory' : 'memory';
  throw new Error(
    `this run would need about ${formatGiB(need(smallest, 1))} of ${where}, more than the ${formatGiB(budget.bytes)} it may use (${budget.source}), even with ${smallest} of its update's ${update.size} sequences ` +
      `(promptsPerStep ${config.promptsPerStep} × trainSamples ${config.trainSamples}) in each forward/backward pass (microBatch ${fixed ?? 'chosen automatically'}) ` +
      `and one prompt's ${config.votes} samples (votes) generated at a time. ` +
      `Each sequence is ${update.seqLen} tokens (the longest prompt has ${longestPrompt} tokens, plus maxNewTokens ${config.maxNewTokens}), and attention memory grows with the square of that length. ` +
      (fixed !== null && fixed > 1 ? 'Lower microBatch (0 chooses the largest that fits), or ' : '') +
      'lower votes or maxNewTokens, train LoRA adapters (mode lora), or set maxPromptTokens with longPrompts "skip" or "truncate".',
  );
}

/**
 * Checkpoints go to `last-<step>` and `best-<step>`, never over the previous one: a run killed
 * after a save but before its caller stored the step still has the checkpoint the caller knows.
 */
export function checkpointFolder(kind: 'last' | 'best', step: number): string {
  return `${kind}-${step}`;
}

/** For each kind just saved at a step, remove that kind's other folders (older ones, or stale ones from a killed run). */
export async function pruneCheckpoints(dir: string, saved: Record<'last' | 'best', number | null>): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = /^(last|best)-(\d+)$/.exec(name);
    if (!m) continue;
    const step = saved[m[1] as 'last' | 'best'];
    if (step !== null && Number(m[2]) !== step) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

/**
 * One policy-gradient step on the chosen samples of the labeled groups: rows are prompt +
 * response, the loss counts response tokens only, the old log-probs are the rollout's. Returns
 * null when no group was labeled (nothing to learn from, so the optimizer is not touched).
 */
async function policyUpdate(
  trainer: Trainer,
  groups: readonly ScoredGroup[],
  shape: BatchShape,
  microBatch: number,
  klCoef: number,
  lr: number,
  padId: number,
  tokenAdvantages?: Float32Array | 'groups',
): Promise<StepResult | null> {
  const rows = trainedRows(groups);
  if (rows.length === 0) return null;
  const batch = trainingBatch(rows, shape, padId);
  const oldLogprobs = new Float32Array(shape.size * shape.seqLen);
  // One advantage per sequence; or per position: the critic pass's (GAE), or the groups' own
  // (a method's roles; a sample without them has its one advantage on every token).
  const perGroup = tokenAdvantages === 'groups';
  const advantages = tokenAdvantages instanceof Float32Array ? tokenAdvantages : new Float32Array(perGroup ? shape.size * shape.seqLen : shape.size);
  rows.forEach((r, b) => {
    const at = (j: number) => responsePosition(shape, b, r, j);
    if (perGroup) {
      const own = r.group.tokenAdvantages[r.index];
      for (let j = 0; j < r.sample.tokenIds.length; j++) advantages[at(j)] = own?.[j] ?? r.group.advantages[r.index];
    } else if (!tokenAdvantages) advantages[b] = r.group.advantages[r.index];
    r.sample.logprobs.forEach((lp, j) => (oldLogprobs[at(j)] = lp));
  });
  const refLogprobs = klCoef > 0 ? await trainer.logprobs(batch, { reference: true, microBatch }) : undefined;
  return trainer.step({ ...batch, advantages, oldLogprobs, refLogprobs }, lr, { microBatch, ...(klCoef > 0 ? { klCoef } : {}) });
}

/**
 * The second turns' update: every trained revision (non-zero advantage) of a labeled group as a
 * row of prompt, first reply, message and revision, the loss on the revision's tokens only, its
 * old log-probs from its sampling. Null when there is none.
 */
async function reviseUpdate(
  trainer: Trainer,
  groups: readonly ScoredGroup[],
  full: { size: number; seqLen: number },
  microBatch: number,
  klCoef: number,
  lr: number,
  padId: number,
  perToken: boolean,
): Promise<StepResult | null> {
  const rows = groups.flatMap((g) => (g.score.revisions ?? []).flatMap((r, j) => (g.revisionAdvantages[j] ? [{ r, advantage: g.revisionAdvantages[j] }] : [])));
  if (rows.length === 0) return null;
  const shape = revisionShape(
    rows.map(({ r }) => r.promptIds.length + r.tokenIds.length),
    full,
  );
  const batch = makeCausalBatch(
    rows.map(({ r }) => ({ tokens: [...r.promptIds, ...r.tokenIds], lossStart: r.promptIds.length })),
    shape,
    padId,
  );
  const n = shape.size * shape.seqLen;
  const oldLogprobs = new Float32Array(n);
  const advantages = new Float32Array(perToken ? n : shape.size);
  rows.forEach(({ r, advantage }, b) => {
    const at = (j: number) => b * shape.seqLen + r.promptIds.length - 1 + j;
    r.logprobs.forEach((lp, j) => {
      oldLogprobs[at(j)] = lp;
      if (perToken) advantages[at(j)] = advantage;
    });
    if (!perToken) advantages[b] = advantage;
  });
  const refLogprobs = klCoef > 0 ? await trainer.logprobs(batch, { reference: true, shape, microBatch }) : undefined;
  return trainer.step({ ...batch, advantages, oldLogprobs, refLogprobs }, lr, { ...(klCoef > 0 && { klCoef }), shape, microBatch });
}

/**
 * The shape the second turns' update runs at: rows for the revisions trained, rounded up to a
 * power of two, and positions for the longest (`lengths` in tokens) rounded up to the token
 * scorer's buckets (as the agent loop's mini-batches), neither past `full` (the bound the memory
 * was planned for); the trainer so compiles a few step graphs, and a step with three revisions
 * does not pay for promptsPerStep × votes rows of the longest turn possible.
 */
export function revisionShape(lengths: readonly number[], full: { size: number; seqLen: number }): { size: number; seqLen: number } {
  let size = 1;
  while (size < lengths.length) size *= 2;
  // A sequence of L tokens is L − 1 positions (each predicts the next token).
  const longest = Math.max(1, ...lengths.map((l) => l - 1));
  return { size: Math.min(size, full.size), seqLen: bucketLength(longest, full.seqLen) };
}

/**
 * What the model reads in a second turn: the prompt, its first reply and the method's message,
 * as a conversation in the chat template (the generation prompt after it) or, raw, the reply's
 * tokens as sampled (without a closing end-of-sequence) and the message after a blank line.
 */
function secondTurnIds(tok: TextTokenizer, format: PromptFormat, prompt: string, promptIds: readonly number[], replyIds: readonly number[], reply: string, message: string): number[] {
  if (format === 'chat') {
    const text = tok.applyChatTemplate(
      [
        { role: 'user', content: prompt },
        { role: 'assistant', content: reply },
        { role: 'user', content: message },
      ],
      { addGenerationPrompt: true },
    );
    return tok.encode(text, { addSpecialTokens: false });
  }
  let end = replyIds.length;
  while (end > 0 && tok.eosTokenIds.includes(replyIds[end - 1])) end--;
  return [...promptIds, ...replyIds.slice(0, end), ...tok.encode(`\n\n${message}\n\n`, { addSpecialTokens: false })];
}

/** The samples an update trains on, as batch rows in order: each labeled group's chosen samples. */
function trainedRows(groups: readonly ScoredGroup[]) {
  return groups.flatMap((g) => g.chosen.map((index) => ({ group: g, index, prompt: g.promptIds, sample: g.samples[index] })));
}

type TrainedRow = ReturnType<typeof trainedRows>[number];

/**
 * The trained rows as a batch: prompt and response, the loss on the response. With the shape's
 * logitsFrom, each prompt is left-padded to end at that position's token, so every response is
 * predicted from logitsFrom on (responsePosition).
 */
function trainingBatch(rows: readonly TrainedRow[], shape: BatchShape, padId: number) {
  return makeCausalBatch(
    rows.map((r) => ({ tokens: [...r.prompt, ...r.sample.tokenIds], lossStart: r.prompt.length, leadingPad: leadingPad(shape, r) })),
    shape,
    padId,
  );
}

function leadingPad(shape: BatchShape, r: TrainedRow): number {
  return shape.logitsFrom === undefined ? 0 : shape.logitsFrom + 1 - r.prompt.length;
}

/** Where row b's response token j is predicted in trainingBatch's layout (position t predicts token t + 1). */
function responsePosition(shape: BatchShape, b: number, r: TrainedRow, j: number): number {
  return b * shape.seqLen + leadingPad(shape, r) + r.prompt.length - 1 + j;
}

interface CriticPass {
  /** The policy's hidden states of the trained rows, which every critic update of the step reads. */
  hidden: FlatArray;
  /** The critic's value per position before its update (the old values of the clipped loss). */
  values: FlatArray;
  /** GAE returns per position (the critic's targets). */
  returns: Float32Array;
  /** Whitened GAE advantages per position (the policy's). */
  tokenAdvantages: Float32Array;
  /** 1 on the trained response tokens. */
  mask: Float32Array;
  /** critic/values/mean, critic/returns/mean, critic/vf_explained_var. */
  metrics: Record<string, number>;
}

/**
 * The critic's side of a step: the policy's hidden states and the critic's values of the trained
 * samples' tokens, and GAE over each response with its reward on the last token. Each trained
 * sample's recorded advantage (the inspector's, the signal check's) becomes the mean of its
 * tokens'. Null when no sample is trained this step.
 */
async function criticPass(trainer: Trainer, critic: Critic, groups: readonly ScoredGroup[], shape: BatchShape, padId: number, config: RunConfig): Promise<CriticPass | null> {
  const rows = trainedRows(groups);
  if (rows.length === 0) return null;
  const batch = trainingBatch(rows, shape, padId);
  const hidden = await trainer.hiddenStates(batch);
  const values = await critic.values(hidden);
  const at = (b: number, r: TrainedRow, j: number) => responsePosition(shape, b, r, j);
  const estimate = gae(
    rows.map((r, b) => {
      const n = r.sample.tokenIds.length;
      return { rewards: outcomeRewards(r.group.score.rewards[r.index], n), values: Array.from({ length: n }, (_, j) => values[at(b, r, j)]) };
    }),
    config.gaeGamma,
    config.gaeLambda,
  );
  const n = shape.size * shape.seqLen;
  const tokenAdvantages = new Float32Array(n);
  const returns = new Float32Array(n);
  const tokenReturns: number[] = [];
  const tokenValues: number[] = [];
  rows.forEach((r, b) => {
    estimate.advantages[b].forEach((a, j) => (tokenAdvantages[at(b, r, j)] = a));
    estimate.returns[b].forEach((x, j) => {
      returns[at(b, r, j)] = x;
      tokenReturns.push(x);
      tokenValues.push(values[at(b, r, j)]);
    });
    r.group.advantages[r.index] = mean(estimate.advantages[b]);
  });
  const metrics: Record<string, number> = { [CRITIC_METRICS.valuesMean]: mean(tokenValues), [CRITIC_METRICS.returnsMean]: mean(tokenReturns) };
  const explained = explainedVariance(tokenReturns, tokenValues);
  if (Number.isFinite(explained)) metrics[CRITIC_METRICS.explainedVar] = explained;
  return { hidden, values, returns, tokenAdvantages, mask: batch.lossMask as Float32Array, metrics };
}

/**
 * A group scored against a label a person gave instead of its vote: reward 1 for agreeing with it
 * (equivalence as in the vote), and always labeled, since the person's label is not in doubt.
 * The vote counts and majority ratio stay the model's own (what the person overruled).
 */
function withReviewedLabel(voted: GroupScore, answers: readonly (string | null)[], label: string, config: RunConfig): GroupScore {
  const agrees = answers.map((a) => isCorrect(a, label, config.answerFormat));
  // The person's label decides the whole response: no role keeps a reward of its own.
  return { ...voted, roles: undefined, labeled: true, pseudoLabel: label, agreesWithLabel: agrees, rewards: agrees.map((a) => (a ? 1 : 0)) };
}

/**
 * The prompts of a step whose reviewed label no sample agreed with: every reward 0, so no
 * advantage and no gradient from them. Named once each (`warned`), so a long run does not repeat it.
 */
function unmatchedReviewAlert(step: number, groups: readonly ScoredGroup[], items: readonly LoopItem[], warned: Set<number>): Alert | null {
  const unmatched = groups.filter((g) => g.labelSource === 'review' && !g.score.agreesWithLabel?.some(Boolean) && !warned.has(g.itemIndex));
  if (unmatched.length === 0) return null;
  for (const g of unmatched) warned.add(g.itemIndex);
  const quote = (t: string) => JSON.stringify(t.length > 40 ? `${t.slice(0, 37)}...` : t);
  const named = unmatched.map((g) => `${quote(items[g.itemIndex].prompt)} (label ${quote(g.score.pseudoLabel ?? '')}, 0 of ${g.samples.length} samples)`);
  return {
    kind: 'review_unmatched',
    step,
    message:
      `${unmatched.length === 1 ? 'a reviewed label' : `${unmatched.length} reviewed labels`} matched none of the samples, so ${unmatched.length === 1 ? 'that prompt gives' : 'those prompts give'} no gradient: ${named.join('; ')}. ` +
      'Check the label in the reviewed run\'s inspector, or give the model more samples (votes) or tokens (maxNewTokens) to reach it.',
    values: { unmatched: unmatched.length },
  };
}

/**
 * One validation prompt's k responses as validation scores them: their extracted answers and,
 * where the method checks responses itself (code) and the answer is of its kind, each one's
 * outcome and the response its consensus picks (maj@k), which then decide instead of the text.
 */
export async function validationGroup(
  texts: readonly string[],
  truth: string,
  format: AnswerFormat,
  hidden: { check: HiddenCheck; choose: (responses: readonly string[]) => Promise<number | null> } | null,
  signal?: AbortSignal,
): Promise<ValidationGroup> {
  const answers = texts.map((t) => extractAnswer(t, format));
  if (!hidden) return { answers, truth };
  const outcomes = await Promise.all(texts.map((t) => hidden.check(t, truth, signal)));
  if (outcomes.every((o) => o === null)) return { answers, truth };
  return { answers, truth, hidden: { outcomes, chosen: await hidden.choose(texts) } };
}

/** What the signal check reads from a scored group: the method's own counts where it gives them, else its answers and votes. */
function signalGroup(g: ScoredGroup, own: MethodSignal | null): SignalGroup {
  const trainedAdvantages = g.chosen.map((i) => g.advantages[i]);
  if (own) return { samples: g.samples.length, extracted: own.answered, clusterCounts: own.clusterCounts, majorityRatio: own.majorityRatio, tied: own.tied, trainedAdvantages, hasSignal: own.hasSignal };
  const counts = g.vote.voteCounts.map((v) => v.count);
  const top = Math.max(0, ...counts);
  return {
    samples: g.samples.length,
    extracted: g.answers.filter((a) => a !== null).length,
    clusterCounts: counts,
    majorityRatio: g.vote.majorityRatio,
    tied: top > 0 && counts.filter((c) => c === top).length > 1,
    trainedAdvantages,
  };
}

/** A scorer's answer checked where a mistake would otherwise surface far away (a NaN advantage, a short record). */
function checkScore(score: GroupScore, samples: readonly GeneratedSample[]): void {
  const n = samples.length;
  if (score.rewards.length !== n) throw new Error(`the scorer returned ${score.rewards.length} rewards for ${n} samples`);
  if (score.details !== undefined && score.details.length !== n) throw new Error(`the scorer returned reward details for ${score.details.length} of ${n} samples`);
  if (score.agreesWithLabel !== undefined && score.agreesWithLabel.length !== n) throw new Error(`the scorer returned agreesWithLabel for ${score.agreesWithLabel.length} of ${n} samples`);
  if (score.judge !== undefined && score.judge.length !== n) throw new Error(`the scorer returned judge exchanges for ${score.judge.length} of ${n} samples`);
  if (score.roles) {
    const { names, weights, rewards, tokenRoles } = score.roles;
    if (weights.length !== names.length || rewards.length !== names.length) throw new Error(`the scorer's roles (${names.join(', ')}) have ${weights.length} weights and ${rewards.length} reward lists`);
    rewards.forEach((list, r) => {
      if (list.length !== n) throw new Error(`the scorer returned role ${names[r]}'s rewards for ${list.length} of ${n} samples`);
    });
    if (tokenRoles.length !== n) throw new Error(`the scorer returned token roles for ${tokenRoles.length} of ${n} samples`);
    tokenRoles.forEach((roles, i) => {
      if (roles.length !== samples[i].tokenIds.length) throw new Error(`the scorer returned ${roles.length} token roles for sample ${i}, which has ${samples[i].tokenIds.length} tokens`);
    });
  }
}

/**
 * Where each generated token's text ends, from decoding the tokens up to it (a token's text
 * depends on its neighbours: leading spaces, bytes of one character split over tokens), never
 * going back.
 */
function tokenEnds(tok: TextTokenizer, ids: readonly number[]): number[] {
  let end = 0;
  return ids.map((_, j) => (end = Math.max(end, decodeText(tok, ids.slice(0, j + 1)).length)));
}

/** The group's vote: the method's own where it counted votes, else the loop's; a pseudo-label only where the method gave one. */
function groupVote(score: GroupScore, answers: readonly (string | null)[], config: RunConfig): GroupVote {
  if (score.voteCounts !== undefined && score.majorityRatio !== undefined) {
    return { pseudoLabel: score.pseudoLabel ?? null, voteCounts: score.voteCounts, majorityRatio: score.majorityRatio, agreesWithLabel: score.agreesWithLabel ?? null };
  }
  const vote = majorityVote(answers, { format: config.answerFormat });
  return {
    pseudoLabel: score.pseudoLabel ?? null,
    voteCounts: vote.clusters.map((c) => ({ answer: c.representative, count: c.count })),
    majorityRatio: vote.majorityRatio,
    agreesWithLabel: score.agreesWithLabel ?? null,
  };
}

function groupRecord(g: ScoredGroup, itemIdx: number, prompt: string, truth: string | null, config: RunConfig): GroupRecord {
  const used = new Set(g.chosen);
  const label = g.vote.pseudoLabel;
  return {
    itemIdx,
    prompt,
    pseudoLabel: label,
    voteCounts: g.vote.voteCounts,
    majorityRatio: g.vote.majorityRatio,
    labelCorrect: truth === null ? null : label !== null && isCorrect(label, truth, config.answerFormat),
    labeled: g.score.labeled,
    labelSource: g.labelSource,
    samples: g.samples.map((s, i) => ({
      text: g.texts[i],
      extractedAnswer: g.answers[i],
      reward: g.score.rewards[i],
      advantage: g.advantages[i],
      usedForTraining: used.has(i),
      tokenIds: Int32Array.from(s.tokenIds),
      logprobs: Float32Array.from(s.logprobs),
      entropies: Float32Array.from(s.entropies),
      selfCertainties: Float32Array.from(s.selfCertainties),
      ...(g.score.details && { details: g.score.details[i] }),
      ...(g.score.judge?.[i] && { judge: g.score.judge[i] }),
      ...(g.hidden?.[i] != null && { hiddenResult: g.hidden[i] }),
    })),
    ...(g.score.execution && { execution: g.score.execution }),
  };
}

/** A method's `truthMetrics`: per metric, the share of prompts with a hidden answer whose label of that name is right. */
function methodTruthMetrics(wanted: Record<string, string> | undefined, groups: readonly ScoredGroup[], truths: readonly (string | null)[], config: RunConfig): Record<string, number> {
  const withTruth = groups.filter((g) => truths[g.itemIndex] !== null && g.score.labels !== undefined);
  if (!wanted || withTruth.length === 0) return {};
  return Object.fromEntries(
    Object.entries(wanted).map(([key, name]) => [key, mean(withTruth.map((g) => (isCorrect(g.score.labels![name] ?? null, truths[g.itemIndex]!, config.answerFormat) ? 1 : 0)))]),
  );
}

/** Diagnostics against hidden answers, averaged over the prompts (or trained samples) that have one. */
function groundTruthMetrics(groups: readonly ScoredGroup[], truths: readonly (string | null)[], config: RunConfig, alias?: MethodDefinition['truthCorrelation']): Record<string, number> {
  const withTruth = groups.filter((g) => truths[g.itemIndex] !== null);
  // The method's hidden check where it has one (code: the hidden tests), else the answers compared.
  const correct = (g: ScoredGroup, i: number) => (g.hidden ? g.hidden[i] === 'pass' : isCorrect(g.answers[i], truths[g.itemIndex]!, config.answerFormat));
  const trained = withTruth.flatMap((g) => g.chosen.map((i) => ({ g, i })));
  const metrics: Record<string, number> = {};
  // Label and reward accuracy measure a vote's pseudo-label: only for methods that give one.
  if (withTruth.every((g) => g.score.pseudoLabel !== undefined)) {
    const labelOk = withTruth.map((g) => (g.vote.pseudoLabel !== null && isCorrect(g.vote.pseudoLabel, truths[g.itemIndex]!, config.answerFormat) ? 1 : 0));
    metrics[TRAIN_METRICS.labelAccuracy] = mean(labelOk);
  }
  if (withTruth.every((g) => g.vote.agreesWithLabel !== null)) {
    // The pseudo reward "hits" when the sample agrees with the label; the true one when it is right.
    metrics[TRAIN_METRICS.rewardAccuracy] = mean(trained.map(({ g, i }) => (g.vote.agreesWithLabel![i] === correct(g, i) ? 1 : 0)));
  }
  metrics[TRAIN_METRICS.groundTruthReward] = mean(trained.map(({ g, i }) => (correct(g, i) ? 1 : 0)));
  metrics[TRAIN_METRICS.passAtN] = mean(withTruth.map((g) => (g.answers.some((_, i) => correct(g, i)) ? 1 : 0)));
  // Every sample of the labeled groups (an unlabeled group's rewards are placeholders).
  const scored = withTruth.filter((g) => g.score.labeled).flatMap((g) => g.score.rewards.map((r, i) => ({ r, ok: correct(g, i), answered: g.answers[i] !== null })));
  const correlationOver = (xs: typeof scored) =>
    pointBiserial(
      xs.map((x) => x.r),
      xs.map((x) => x.ok),
    );
  const correlation = correlationOver(scored);
  if (correlation !== null) metrics[REWARD_TRUTH_CORRELATION] = correlation;
  // The same under the name the method's reference code logs it by.
  if (alias) {
    const named = alias.over === 'all' ? correlation : correlationOver(scored.filter((x) => x.answered));
    if (named !== null) metrics[alias.key] = named;
  }
  return metrics;
}
