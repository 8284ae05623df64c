// A self-verified distillation run (the 'distillation' pipeline): rounds of candidates, the
// cascade, supervised fine-tuning on the survivors, validation. A run's step is a round: step 0
// validates the starting model, step r records round r's cascade in numbers, its SFT loss and
// the validation after it, with a 'last' checkpoint (and 'best' when validation improves).
//
// Resume without losing or duplicating anything: a round's candidates are stored in one
// transaction before any is judged, each chunk of stage verdicts in one transaction as the judge
// answers, the selection of survivors with the round's status. A resumed run continues from its
// last checkpoint (the end of a round); the round after it finds what was stored and asks only
// what is missing (the cascade's `known`), with seeds that depend on the run, the round, the stage
// and the place of the chunk's first candidate in the round only, so the answers are the ones an
// uninterrupted run gets.
import path from 'node:path';
import { z } from 'zod';
import type { NewSvdCandidate, SvdCandidate, SvdRoundStatus, SvdSelection, SvdStageVerdict } from '../../db/svd.ts';
import { Generator } from '../generate/generator.ts';
import { type ScheduleSpec, learningRate, warmupStepsFromRatio } from '../optim/schedule.ts';
import type { Device } from '../runtime/devices.ts';
import { SeededRng } from '../runtime/rng.ts';
import { Trainer, makeCausalBatch } from '../runtime/trainer.ts';
import { extractAnswer } from '../tasks/answers.ts';
import { type RunConfig, methodOf } from '../rl/config.ts';
import { FrozenJudge } from '../rl/judge.ts';
import { type LoopItem, type LoopModel, type LoopProgress, type LoopResult, PromptOrder, type StepRecord, checkpointFolder, pruneCheckpoints } from '../rl/loop.ts';
import { valMetricName, validationScores } from '../rl/metrics.ts';
import { SFT_LOSS, svd } from '../rl/methods/svd.ts';
import { encodePrompt } from '../rl/prompts.ts';
import { mean } from '../rl/stats.ts';
import { checkRunFits, weightCount } from '../rl/memory.ts';
import type { LlamaConfig } from '../nn/config.ts';
import { type CascadeCandidate, type StageId, type StageOutcome, SVD_METRICS, candidateCorrect, cascadeMetrics, runCascade, selectSurvivors } from './cascade.ts';
import { DOMAIN_TEMPLATES, type StageTemplates, modelStageJudge, patternMismatch } from './stages.ts';

/** Where a distillation run keeps its rounds (the database, bound to the run: `runs/svd-store.ts`). */
export interface SvdStore {
  round(round: number): { stages: string[]; status: SvdRoundStatus; candidates: SvdCandidate[]; verdicts: SvdStageVerdict[] } | null;
  createRound(round: number, stages: readonly string[], candidates: readonly NewSvdCandidate[]): SvdCandidate[];
  recordVerdicts(round: number, verdicts: readonly (SvdStageVerdict & { accepted: boolean })[]): void;
  recordSelection(round: number, selection: ReadonlyMap<number, SvdSelection>, status: SvdRoundStatus): void;
  setStatus(round: number, status: SvdRoundStatus): void;
  /** The selected survivors less those a person rejected. */
  trainingSet(round: number): SvdCandidate[];
  /** Keeps a trained round's SFT set as a dataset of its own (once; a resume that trains the round again finds it). */
  publish?(round: number): void;
}

export interface SvdInput {
  /** Checked where the run was created (parseRunConfig, checkRunConfig): not checked again here. */
  config: RunConfig;
  model: LoopModel;
  device: Device;
  /** Unlabeled questions (hidden answers measure the cascade only). */
  items: readonly LoopItem[];
  /** dataset_items.idx of each item, stored with its candidates. */
  itemIdx?: readonly number[];
  validation?: readonly { prompt: string; answer: string }[];
  checkpointDir?: string;
  resumeFrom?: string;
  store: SvdStore;
  /** The model folder's own svd settings (its svd.json), under what the run's settings leave empty. */
  modelSettings?: Record<string, unknown>;
}

export interface SvdHooks {
  onStep?: (record: StepRecord) => void | Promise<void>;
  onProgress?: (progress: LoopProgress) => void;
  /** Stops the run; a round in progress keeps what it stored and continues on resume. */
  signal?: AbortSignal;
  /** Asked at each round boundary, and where a round waits for review. */
  pauseRequested?: () => boolean;
  /** Called after each chunk of verdicts is stored (tests inject a crash here). */
  afterWrite?: (what: 'candidates' | 'verdicts' | 'selection') => void;
}

export interface SvdResult extends LoopResult {
  /** Set when the run paused for a person's review of round `round`'s survivors (svdReview). */
  awaitingReview?: number;
}

/** What a distillation checkpoint's `extra` holds. */
export const SvdStateSchema = z.object({
  kind: z.literal('autodidact-svd'),
  /** The last round trained (0: none). */
  step: z.number().int().min(0),
  /** Questions consumed so far (position in the seeded order). */
  cursor: z.number().int().min(0),
  itemCount: z.number().int().min(1),
  best: z.object({ metric: z.string(), value: z.number(), step: z.number().int() }).nullable(),
});
export type SvdState = z.infer<typeof SvdStateSchema>;

type SvdSettings = z.output<typeof svd.settings>;

/** The stages' templates: the run's settings, else the model folder's, else the domain's defaults. */
export function resolveTemplates(s: SvdSettings, modelSettings: Partial<SvdSettings> = {}): StageTemplates {
  const d = DOMAIN_TEMPLATES[s.svdDomain];
  const pick = (own: string, model: string | undefined, fallback: string) => (own !== '' ? own : model !== undefined && model !== '' ? model : fallback);
  return {
    cycleAsk: pick(s.svdCycleAsk, modelSettings.svdCycleAsk, d.cycleAsk),
    cycleJudge: pick(s.svdCycleJudge, modelSettings.svdCycleJudge, d.cycleJudge),
    cycleMatch: pick(s.svdCycleMatch, modelSettings.svdCycleMatch, d.cycleMatch),
    factualityJudge: pick(s.svdFactualityJudge, modelSettings.svdFactualityJudge, d.factualityJudge),
    correctnessAsk: pick(s.svdCorrectnessAsk, modelSettings.svdCorrectnessAsk, d.correctnessAsk),
    correctnessJudge: pick(s.svdCorrectnessJudge, modelSettings.svdCorrectnessJudge, d.correctnessJudge),
    correctnessMatch: pick(s.svdCorrectnessMatch, modelSettings.svdCorrectnessMatch, d.correctnessMatch),
    yes: pick(s.svdVerdictYes, modelSettings.svdVerdictYes, d.yes),
    no: pick(s.svdVerdictNo, modelSettings.svdVerdictNo, d.no),
  };
}

/** A model folder's svd.json checked against the method's settings (svd keys only), naming the file. */
export function parseModelSettings(raw: unknown, file: string): Partial<SvdSettings> {
  const parsed = svd.settings.partial().strict().safeParse(raw);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'the file'}: ${i.message}`).join('; ')}`);
  return parsed.data as Partial<SvdSettings>;
}

const DEFAULT_TOKENS = 256;

const seedOf = (...parts: number[]) => parts.reduce((h, p, i) => (Math.imul(h ^ p, 0x9e3779b1) + Math.imul(i + 1, 0x85ebca6b)) >>> 0, 0x5bd1e995);

class Aborted extends Error {}

export async function runSvd(input: SvdInput, hooks: SvdHooks = {}): Promise<SvdResult> {
  const config = input.config;
  if (methodOf(config).pipeline !== 'distillation') throw new Error(`runSvd runs the distillation pipeline; method "${config.method}" is not one`);
  const s = svd.settings.parse(config);
  const modelSettings = input.modelSettings ? parseModelSettings(input.modelSettings, 'the model folder\'s svd.json') : {};
  const templates = resolveTemplates(s, modelSettings);
  const patternText = s.svdQuestionPattern || modelSettings.svdQuestionPattern || '';
  const questionPattern = patternText ? new RegExp(patternText) : null;
  const mismatch = patternMismatch(templates, s.svdStages as StageId[], questionPattern, patternText, input.items.map((it) => it.prompt));
  if (mismatch) throw new Error(mismatch);
  const judgeMaxTokens = s.svdJudgeMaxTokens || modelSettings.svdJudgeMaxTokens || DEFAULT_TOKENS;
  const askMaxTokens = s.svdAskMaxTokens || modelSettings.svdAskMaxTokens || DEFAULT_TOKENS;
  const stages = s.svdStages as StageId[];
  const { model, device, store } = input;
  const tok = model.tokenizer;
  const signal = hooks.signal;
  const progress = (step: number, phase: LoopProgress['phase']) => hooks.onProgress?.({ step, totalSteps: config.steps, phase });
  const check = () => {
    if (signal?.aborted) throw new Aborted();
  };
  progress(0, 'setup');

  const promptIds = input.items.map((it) => encodePrompt(tok, it.prompt, config.promptFormat));
  const truths = input.items.map((it) => it.answer ?? null);
  const validation = input.validation ?? [];
  const valIds = validation.map((v) => encodePrompt(tok, v.prompt, config.promptFormat));
  const longestPrompt = Math.max(...promptIds.map((p) => p.length));
  const longestAny = Math.max(longestPrompt, ...valIds.map((p) => p.length));
  const order = new PromptOrder(config.seed, input.items.length);
  const contextLength = Math.min(model.config.maxPositionEmbeddings, model.config.slidingWindow ?? Infinity);

  const { mergeAdapters } = await checkSvdMemory(model.config, config, s, device, { seqLen: longestPrompt + config.maxNewTokens - 1, maxLength: longestAny + config.maxNewTokens });
  const trainer = await Trainer.create({
    config: model.config,
    weights: model.weights,
    device,
    mode: config.mode === 'full' ? { kind: 'full' } : { kind: 'lora', rank: config.loraRank, alpha: config.loraAlpha, targetModules: config.loraTargets },
    loss: { kind: 'sft' },
    optimizer: { weightDecay: config.weightDecay, maxGradNorm: config.maxGradNorm },
    batch: { size: s.svdBatch, seqLen: longestPrompt + config.maxNewTokens - 1 },
    seed: config.seed,
    source: model.dir ? { dir: model.dir } : undefined,
    precision: config.precision,
    mergeAdapters,
    // The judge is the model the run started from.
    keepReference: true,
  });
  let generator: Generator | null = null;
  let judgeGenerator: Generator | null = null;
  let state: SvdState = { kind: 'autodidact-svd', step: 0, cursor: 0, itemCount: input.items.length, best: null };
  try {
    generator = await Generator.create({ config: model.config, weights: trainer.weights(), device, maxLength: longestAny + config.maxNewTokens, precision: config.precision });
    judgeGenerator = await Generator.create({ config: model.config, weights: await trainer.referenceWeights(), device, maxLength: contextLength, precision: config.precision });
    const gen = generator;
    const frozen = new FrozenJudge({ generator: judgeGenerator, tokenizer: tok, promptFormat: config.promptFormat, contextLength });
    if (input.resumeFrom) {
      const { extra } = await trainer.load(input.resumeFrom);
      const parsed = SvdStateSchema.safeParse(extra);
      if (!parsed.success) throw new Error(`${input.resumeFrom} holds no distillation state to resume from`);
      state = parsed.data;
      if (state.itemCount !== input.items.length) throw new Error(`${input.resumeFrom} was saved by a run over ${state.itemCount} questions; this one has ${input.items.length}, so the question order would differ`);
    }
    const bestName = valMetricName(config.bestMetric, config.valSamples);

    const validate = async (step: number): Promise<Record<string, number>> => {
      progress(step, 'validation');
      const k = config.valSamples;
      const perChunk = Math.max(1, Math.floor((s.svdQuestions * s.svdCandidates) / k));
      const groups: { answers: (string | null)[]; truth: string }[] = [];
      for (let start = 0; start < validation.length; start += perChunk) {
        check();
        const out = await gen.generate({
          promptIds: valIds.slice(start, start + perChunk),
          samplesPerPrompt: k,
          maxNewTokens: config.maxNewTokens,
          temperature: config.valTemperature,
          topP: config.valTopP,
          seed: (config.seed * 1_000_003 + step * 7_919) >>> 0,
          firstPromptIndex: start,
          stopStrings: config.stopStrings,
          tokenizer: tok,
          signal,
        });
        for (let p = 0; p * k < out.samples.length; p++) groups.push({ answers: out.samples.slice(p * k, (p + 1) * k).map((x) => extractAnswer(x.text ?? '', config.answerFormat)), truth: validation[start + p].answer });
      }
      const v = validationScores(groups, config.answerFormat);
      return { [valMetricName('avg', k)]: v.avg, [valMetricName('maj', k)]: v.maj, [valMetricName('pass', k)]: v.pass };
    };
    const validates = validation.length > 0 && config.valEvery > 0;

    try {
      if (state.step === 0 && config.valBeforeTrain && validates) {
        const metrics = await validate(0);
        const record: StepRecord = { step: 0, metrics, groups: [], checkpoints: [], alerts: [] };
        state.best = { metric: bestName, value: metrics[bestName], step: 0 };
        record.best = { metric: bestName, value: metrics[bestName] };
        await hooks.onStep?.(record);
      }
      const resumableAt = state.step;
      for (let round = state.step + 1; round <= config.steps; round++) {
        check();
        if (hooks.pauseRequested?.() && state.step === resumableAt && !store.round(round)) return { lastStep: state.step, aborted: false, paused: true, best: state.best };
        const questions = Array.from({ length: Math.min(s.svdQuestions, input.items.length) }, (_, i) => order.at(state.cursor + i));

        // 1. Candidates, stored whole before any is judged.
        let stored = store.round(round);
        if (!stored) {
          progress(round, 'rollout');
          const out = await gen.generate({
            promptIds: questions.map((i) => promptIds[i]),
            samplesPerPrompt: s.svdCandidates,
            maxNewTokens: config.maxNewTokens,
            temperature: config.temperature,
            topP: config.topP,
            topK: config.topK,
            seed: seedOf(config.seed, round, 1),
            stopStrings: config.stopStrings,
            tokenizer: tok,
            signal,
          });
          const fresh: NewSvdCandidate[] = out.samples.map((x) => {
            const item = questions[x.promptIndex];
            const text = x.text ?? tok.decode(x.tokenIds, { skipSpecialTokens: true });
            const answer = extractAnswer(text, config.answerFormat);
            return { question: x.promptIndex, itemIdx: input.itemIdx?.[item] ?? item, prompt: input.items[item].prompt, idx: x.sampleIndex, text, answer, tokenIds: x.tokenIds, correct: candidateCorrect(answer, truths[item], config.answerFormat) };
          });
          store.createRound(round, stages, fresh);
          hooks.afterWrite?.('candidates');
          stored = store.round(round)!;
        }
        if (stored.stages.join() !== stages.join()) throw new Error(`round ${round} was judged with the stages ${stored.stages.join(', ')}; the run's svdStages are now ${stages.join(', ')}`);
        const candidates = stored.candidates;
        const cascadeCandidates: CascadeCandidate[] = candidates.map((c) => ({ id: c.id, question: c.question, text: c.text, answer: c.answer }));
        const known: StageOutcome[] = stored.verdicts.map((v) => ({ ...v, accepted: candidates.find((c) => c.id === v.candidateId)!.rejectedStage !== v.stage }));

        // 2. The cascade: each chunk's verdicts stored as the judge answers.
        progress(round, 'rollout');
        const questionText = new Map(candidates.map((c) => [c.id, c.prompt]));
        const ordinal = new Map(candidates.map((c, i) => [c.id, i]));
        const cascade = await runCascade(cascadeCandidates, {
          stages,
          votes: s.svdJudgeVotes,
          rule: s.svdVoteRule,
          chunkSize: s.svdJudgeChunk,
          known,
          signal,
          judge: (stage, batch, votes) =>
            modelStageJudge({
              // Seeded by the chunk's first candidate's place in the round, not its row id: the same run in another database asks the same.
              judge: frozen.bind(seedOf(config.seed, round, 2 + stages.indexOf(stage), ordinal.get(batch[0].id)!), signal),
              templates,
              questionOf: (c) => questionText.get(c.id)!,
              questionPattern,
              answerFormat: config.answerFormat,
              temperature: s.svdJudgeTemperature,
              judgeMaxTokens,
              askMaxTokens,
            })(stage, batch, votes),
          onOutcomes: (outcomes) => {
            store.recordVerdicts(round, outcomes);
            hooks.afterWrite?.('verdicts');
          },
        });

        // 3. The SFT set: at most M per question, one per answer; a pause for review where asked.
        const survived = new Set([...cascade.rejectedAt].filter(([, r]) => r === null).map(([id]) => id));
        const selected = selectSurvivors(cascadeCandidates, survived, { cap: s.svdMaxPerQuestion, format: config.answerFormat });
        if (stored.status === 'judging') {
          const selection = new Map<number, SvdSelection>([...selected.kept.map((id) => [id, 'sft'] as const), ...selected.dropped]);
          store.recordSelection(round, selection, s.svdReview ? 'review' : 'training');
          hooks.afterWrite?.('selection');
          if (s.svdReview) return { lastStep: state.step, aborted: false, paused: true, best: state.best, awaitingReview: round };
        } else if (stored.status === 'review') store.setStatus(round, 'training');

        // 4. SFT on the survivors a person did not reject.
        check();
        progress(round, 'update');
        const set = store.trainingSet(round);
        const rejected = candidates.filter((c) => c.selection === 'sft' && c.review?.verdict === 'reject').length;
        const losses = await fineTune(trainer, set, { s, config, round, promptIds: (c) => encodePrompt(tok, c.prompt, config.promptFormat), padId: tok.padTokenId ?? 0, check });
        store.setStatus(round, 'trained');
        store.publish?.(round);

        state = { ...state, step: round, cursor: state.cursor + questions.length };
        const record: StepRecord = { step: round, metrics: {}, groups: [], checkpoints: [], alerts: [] };
        const m = record.metrics;
        Object.assign(m, cascadeMetrics(candidates, stages, cascade.rejectedAt, cascade.outcomes, set.map((c) => c.id)));
        m[SVD_METRICS.reviewRejected] = rejected;
        if (losses.length > 0) m[SFT_LOSS] = mean(losses);
        record.tokens = candidates.reduce((n, c) => n + c.tokenIds.length + encodePrompt(tok, c.prompt, config.promptFormat).length, 0);
        if (validates && (round % config.valEvery === 0 || round === config.steps)) {
          Object.assign(m, await validate(round));
          const value = m[bestName];
          if (state.best === null || value > state.best.value) {
            state.best = { metric: bestName, value, step: round };
            record.best = { metric: bestName, value };
            if (input.checkpointDir) {
              progress(round, 'checkpoint');
              const dir = path.join(input.checkpointDir, checkpointFolder('best', round));
              await trainer.save(dir, state);
              record.checkpoints.push({ kind: 'best', path: dir, metric: { name: bestName, value } });
            }
          }
        }
        // Every round ends with a checkpoint: the next round samples from this model.
        if (input.checkpointDir) {
          progress(round, 'checkpoint');
          const dir = path.join(input.checkpointDir, checkpointFolder('last', round));
          await trainer.save(dir, state);
          record.checkpoints.push({ kind: 'last', path: dir, metric: null });
        }
        await hooks.onStep?.(record);
        if (input.checkpointDir) await pruneCheckpoints(input.checkpointDir, { last: round, best: record.checkpoints.some((c) => c.kind === 'best') ? round : null });
        if (round < config.steps && hooks.pauseRequested?.()) return { lastStep: state.step, aborted: false, paused: true, best: state.best };
      }
      return { lastStep: state.step, aborted: false, paused: false, best: state.best };
    } catch (e) {
      if (e instanceof Aborted || signal?.aborted) return { lastStep: state.step, aborted: true, paused: false, best: state.best };
      throw e;
    }
  } finally {
    await generator?.release();
    await judgeGenerator?.release();
    await trainer.release();
  }
}

/**
 * Supervised fine-tuning on a round's set: the question as the run encodes it, the candidate's
 * generated tokens (its EOS included) as the target, the loss on those only; svdEpochs passes in
 * a seeded order, svdBatch sequences a step, the run's learning rate on its schedule over the
 * round's steps. Returns each step's loss.
 */
async function fineTune(
  trainer: Trainer,
  set: readonly SvdCandidate[],
  o: { s: SvdSettings; config: RunConfig; round: number; promptIds: (c: SvdCandidate) => number[]; padId: number; check: () => void },
): Promise<number[]> {
  if (set.length === 0) return [];
  const { s, config } = o;
  const shape = trainer.batchShape;
  const examples = set.map((c) => {
    const prompt = o.promptIds(c);
    // A candidate longer than the batch (it cannot be: the batch fits the longest prompt and maxNewTokens) is cut.
    return { tokens: [...prompt, ...c.tokenIds].slice(0, shape.seqLen + 1), lossStart: prompt.length };
  });
  const batches = Math.ceil(examples.length / s.svdBatch);
  const total = batches * s.svdEpochs;
  const warmupSteps = warmupStepsFromRatio(config.warmupRatio, total);
  const schedule: ScheduleSpec =
    config.lrSchedule === 'cosine' ? { kind: 'cosine', lr: config.lr, warmupSteps, totalSteps: total, minLrRatio: config.minLrRatio } : { kind: 'constant', lr: config.lr, warmupSteps };
  const rng = new SeededRng(seedOf(config.seed, o.round, 99));
  const losses: number[] = [];
  for (let epoch = 0; epoch < s.svdEpochs; epoch++) {
    const perm = rng.shuffle(examples.map((_, i) => i));
    for (let b = 0; b < batches; b++) {
      o.check();
      const rows = perm.slice(b * s.svdBatch, (b + 1) * s.svdBatch).map((i) => examples[i]);
      const r = await trainer.step(makeCausalBatch(rows, shape, o.padId), learningRate(schedule, epoch * batches + b));
      losses.push(r.loss);
    }
  }
  return losses;
}

/**
 * Refuses before any graph is built a run whose graphs would not fit the memory it may use, the
 * host's on the CPU and the GPU's on a GPU that reports it (checkRunFits): its SFT step trains
 * svdBatch sequences, its sampling decodes svdQuestions × svdCandidates rows, and the judge keeps
 * the starting weights.
 */
async function checkSvdMemory(c: LlamaConfig, config: RunConfig, s: SvdSettings, device: Device, shape: { seqLen: number; maxLength: number }): Promise<{ mergeAdapters: boolean }> {
  const lora = c.numLayers * config.loraTargets.length * config.loraRank * 2 * Math.max(c.hiddenSize, c.intermediateSize);
  const shapes = {
    update: { size: s.svdBatch, seqLen: shape.seqLen },
    reference: true,
    generate: { rows: s.svdQuestions * s.svdCandidates, prompts: s.svdQuestions, maxLength: shape.maxLength },
    trainable: config.mode === 'full' ? weightCount(c) : lora,
    teacher: false,
    precision: config.precision,
  };
  return checkRunFits(
    c,
    config,
    shapes,
    device,
    `Its SFT step trains ${s.svdBatch} sequences of ${shape.seqLen} tokens (svdBatch; the longest prompt plus maxNewTokens ${config.maxNewTokens}) and its sampling decodes ` +
      `${s.svdQuestions * s.svdCandidates} rows at once (svdQuestions ${s.svdQuestions} × svdCandidates ${s.svdCandidates}). Lower svdBatch, svdQuestions or svdCandidates, or train LoRA adapters (mode lora).`,
  );
}
