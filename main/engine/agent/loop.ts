// The agent run loop (issue 18): a method of pipeline 'agent-episodes' trains a policy in a text
// environment from its own finished episodes.
//
// Per step: `promptsPerStep` tasks in the seeded order (OPID: 16), `votes` episodes each (OPID's
// group of 8), all played in lockstep (one batched generation per turn) until done or the step
// limit. Each episode's reward is the environment's final reward discounted by γ^(T−1); GRPO over
// its group gives the episode advantage. With OPID (`agentSignal` opid) the analyzer (the policy,
// a frozen model or an endpoint) turns each finished episode into an episode skill and up to five
// step skills; every reply a skill teaches is re-scored by the same policy reading the skill
// (Δ per token, `opid.ts`) and trained at A_episode + w·Δ. The update is PPO's clipped objective
// over the step's sequences in mini-batches of `agentMiniBatch`, the old log-probs recomputed
// before the first one, as verl does. Everything an episode did goes to `onStep` turn by turn,
// with its skills, so it can be opened later.
//
// Resume: the loop's state (step, task cursor, RNG, best) is saved with each checkpoint in the
// run loop's format, so a resumed run draws the tasks and seeds the uninterrupted run would have.
import path from 'node:path';
import { Generator } from '../generate/generator.ts';
import type { LlamaConfig } from '../nn/config.ts';
import type { ChatMessage } from '../nn/tokenizer.ts';
import { type ScheduleSpec, learningRate, warmupStepsFromRatio } from '../optim/schedule.ts';
import type { Device } from '../runtime/devices.ts';
import { SeededRng } from '../runtime/rng.ts';
import { TokenScorer, bucketLength } from '../runtime/token-logprobs.ts';
import { type BatchShape, type SequenceExample, type StepResult, Trainer, makeCausalBatch } from '../runtime/trainer.ts';
import { environment } from '../envs/index.ts';
import type { TaskRef } from '../envs/types.ts';
import { groupAdvantages, groupEstimator } from '../rl/advantages.ts';
import { type RunConfig, methodOf, signalThresholdsOf } from '../rl/config.ts';
import { type CheckpointRecord, type LoopHooks, type LoopModel, type LoopProgress, type LoopResult, type LoopState, LoopStateSchema, PromptOrder, type StepRecord, checkpointFolder } from '../rl/loop.ts';
import { TRAIN_METRICS } from '../rl/metrics.ts';
import { AGENT_METRICS, type AgentSettings } from '../rl/methods/agent.ts';
import { type MemoryBudget, checkRunFits, weightCount } from '../rl/memory.ts';
import { SIGNAL_METRICS, SignalWatch } from '../rl/signal.ts';
import { mean } from '../rl/stats.ts';
import { type Analysis, AnalyzerRefused, type ChatComplete, analyzeEpisode } from './analyzer.ts';
import { encodeConversation } from './conversation.ts';
import { type Episode, runEpisodes } from './episode.ts';
import { type TurnDelta, teacherMessages, turnDeltas } from './opid.ts';
import type { EpisodeRecord, SkillRecord, TurnRecord } from './records.ts';
import { episodeExamples } from './training.ts';

/** The shortest analysis worth asking for (opidAnalyzerMaxTokens' own lower bound). */
const MIN_ANALYSIS_TOKENS = 16;

export interface AgentLoopInput {
  /** Checked where the run was created (parseRunConfig, checkRunConfig): not checked again here. */
  config: RunConfig;
  model: LoopModel;
  device: Device;
  /** The training tasks (the run's prompts, in the dataset's order). */
  tasks: readonly TaskRef[];
  /** Each task's id in its dataset (dataset_items.idx), which the records carry; absent: its position in `tasks`. */
  itemIdx?: readonly number[];
  /** Held-out tasks: one episode each at every validation (val/success). */
  validation?: readonly TaskRef[];
  checkpointDir?: string;
  resumeFrom?: string;
  /**
   * The analyzer when it is not the policy (opidAnalyzer model or endpoint): the caller builds it
   * from the settings (a frozen model's generation, or a ChatEndpoint).
   */
  analyzer?: ChatComplete;
}

const seconds = (since: number): number => (performance.now() - since) / 1000;

class Aborted extends Error {}

function agentSettingsOf(config: RunConfig): AgentSettings {
  const method = methodOf(config);
  if (method.pipeline !== 'agent-episodes') throw new Error(`method "${method.id}" is not an agent method; the agent loop trains only those`);
  return method.settings.parse(config) as AgentSettings;
}

/** The trajectory's one-line text (the sample text the inspector lists): each action, then the outcome. */
export function episodeSummary(e: Episode): string {
  const actions = e.turns.map((t, i) => `${i + 1}. ${t.action}`).join('\n');
  const end = e.success ? 'success' : e.contextFull ? 'context full' : e.turns.at(-1)?.done ? 'done' : 'step limit';
  return `${e.goal}\n${actions}\n→ ${end}, reward ${e.reward}`;
}

export async function runAgentLoop(input: AgentLoopInput, hooks: LoopHooks = {}): Promise<LoopResult> {
  const config = input.config;
  const s = agentSettingsOf(config);
  const { model, device } = input;
  const tok = model.tokenizer;
  const signal = hooks.signal;
  const check = () => {
    if (signal?.aborted) throw new Aborted();
  };
  const progress = (step: number, phase: LoopProgress['phase']) => hooks.onProgress?.({ step, totalSteps: config.steps, phase });
  progress(0, 'setup');
  if (input.tasks.length === 0) throw new Error('the run has no training tasks');
  for (const t of [...input.tasks, ...(input.validation ?? [])]) environment(t.env);
  const opid = s.agentSignal === 'opid';
  const ctx = Math.min(model.config.maxPositionEmbeddings, model.config.slidingWindow ?? Infinity);
  if (config.maxNewTokens >= ctx) throw new Error(`maxNewTokens (${config.maxNewTokens}) leaves no room for a turn's prompt in the model's ${ctx} positions`);
  // The trainer is created at the longest shape a turn can have; each mini-batch runs at its own
  // (updateShape), so a step of short turns does not pay for the model's whole context.
  const shape = { size: s.agentMiniBatch, seqLen: ctx - 1 };
  const validating = (input.validation?.length ?? 0) > 0 && config.valEvery > 0;
  const { mergeAdapters } = await checkAgentMemory(model.config, config, s, device, ctx, Math.max(config.promptsPerStep * config.votes, validating ? input.validation!.length : 0));
  const trainer = await Trainer.create({
    config: model.config,
    weights: model.weights,
    device,
    mode: config.mode === 'full' ? { kind: 'full' } : { kind: 'lora', rank: config.loraRank, alpha: config.loraAlpha, targetModules: config.loraTargets },
    loss: { kind: 'policy', temperature: config.temperature, clipLow: config.clipLow, clipHigh: config.clipHigh, klCoef: config.klCoef, entropyCoef: config.entropyCoef, tokenAdvantages: true },
    optimizer: { weightDecay: config.weightDecay, maxGradNorm: config.maxGradNorm },
    batch: shape,
    seed: config.seed,
    source: model.dir ? { dir: model.dir } : undefined,
    precision: config.precision,
    mergeAdapters,
  });
  let generator: Generator | null = null;
  let scorer: TokenScorer | null = null;
  try {
    generator = await Generator.create({ config: model.config, weights: trainer.weights(), device, maxLength: ctx, precision: config.precision });
    const gen = generator;
    scorer = new TokenScorer({ config: model.config, weights: trainer.weights(), device, precision: config.precision });
    const deltaScorer = scorer;
    const promptOf = (messages: readonly ChatMessage[]) => tok.encode(tok.applyChatTemplate([...messages], { addGenerationPrompt: true }), { addSpecialTokens: false });

    /** One batched generation over the conversations that fit; null for those that do not. */
    const answer = async (conversations: ChatMessage[][], sampling: { temperature: number; topP: number; topK: number; seed: number; maxNewTokens: number }) => {
      check();
      const ids = conversations.map(promptOf);
      const fits = ids.map((p) => p.length + sampling.maxNewTokens <= ctx);
      const asked = ids.filter((_, i) => fits[i]);
      const out: (string | null)[] = ids.map(() => null);
      if (asked.length === 0) return out;
      const result = await gen.generate({
        promptIds: asked,
        maxNewTokens: sampling.maxNewTokens,
        temperature: sampling.temperature,
        topP: sampling.topP,
        topK: sampling.topK,
        seed: sampling.seed,
        // The action closes the reply; a model that goes on after it would only add noise.
        stopStrings: [...config.stopStrings, '</action>'],
        tokenizer: tok,
        signal,
      });
      let k = 0;
      ids.forEach((_, i) => {
        if (fits[i]) out[i] = result.samples[k++].text ?? '';
      });
      return out;
    };

    const play = async (tasks: readonly TaskRef[], perTask: number, sampling: { temperature: number; topP: number; topK: number }, rng: SeededRng) => {
      const jobs = tasks.flatMap((task) => Array.from({ length: perTask }, () => ({ env: environment(task.env).create(), task })));
      return runEpisodes(jobs, (conversations) => answer(conversations, { ...sampling, seed: rng.nextUint32(), maxNewTokens: config.maxNewTokens }), {
        maxSteps: s.agentMaxSteps,
        historyTurns: s.agentHistory,
        promptStyle: s.agentPromptStyle,
      });
    };

    const analyzer: ChatComplete =
      input.analyzer ??
      (async (messages) => {
        const prompt = promptOf(messages);
        // The analysis takes what room the policy's context leaves, up to opidAnalyzerMaxTokens
        // (its default, 512, is all of a small model's context); too little room is a refusal.
        const room = Math.min(s.opidAnalyzerMaxTokens, ctx - prompt.length);
        if (room < MIN_ANALYSIS_TOKENS) {
          throw new AnalyzerRefused(`the analysis prompt has ${prompt.length} tokens, which leaves fewer than ${MIN_ANALYSIS_TOKENS} of the policy's ${ctx} positions for the analysis`);
        }
        const r = await gen.generate({ promptIds: [prompt], maxNewTokens: room, temperature: 0, tokenizer: tok, signal });
        return r.samples[0].text ?? '';
      });

    const warmupSteps = warmupStepsFromRatio(config.warmupRatio, config.steps);
    const schedule: ScheduleSpec =
      config.lrSchedule === 'cosine'
        ? { kind: 'cosine', lr: config.lr, warmupSteps, totalSteps: config.steps, minLrRatio: config.minLrRatio }
        : { kind: 'constant', lr: config.lr, warmupSteps };
    const order = new PromptOrder(config.seed, input.tasks.length);
    const validation = input.validation ?? [];

    let state: LoopState = {
      kind: 'autodidact-rl-loop',
      step: 0,
      cursor: 0,
      itemCount: input.tasks.length,
      rng: new SeededRng(config.seed + 1).state(),
      best: null,
      watch: { collapsed: false, dropped: false },
    };
    if (input.resumeFrom) {
      const { extra } = await trainer.load(input.resumeFrom);
      const parsed = LoopStateSchema.safeParse(extra);
      if (!parsed.success) throw new Error(`${input.resumeFrom} holds no run-loop state to resume from`);
      state = parsed.data;
      if (state.itemCount !== input.tasks.length) throw new Error(`${input.resumeFrom} was saved by a run over ${state.itemCount} tasks; this one has ${input.tasks.length}, so the task order would differ`);
    }
    const rng = SeededRng.fromState(state.rng);

    const validate = async (step: number): Promise<Record<string, number>> => {
      progress(step, 'validation');
      // Its own seed per step, so validating never moves the training RNG.
      const episodes = await play(validation, 1, { temperature: config.valTemperature, topP: config.valTopP, topK: 0 }, new SeededRng((config.seed * 1_000_003 + step * 7_919) >>> 0));
      return {
        [AGENT_METRICS.valSuccess]: mean(episodes.map((e) => (e.success ? 1 : 0))),
        [AGENT_METRICS.valReward]: mean(episodes.map((e) => e.reward)),
        [AGENT_METRICS.valLength]: mean(episodes.map((e) => e.turns.length)),
      };
    };
    const afterValidation = async (step: number, metrics: Record<string, number>, record: StepRecord) => {
      const value = metrics[AGENT_METRICS.valSuccess];
      if (state.best !== null && value <= state.best.value) return;
      state.best = { metric: AGENT_METRICS.valSuccess, value, step };
      record.best = { metric: AGENT_METRICS.valSuccess, value };
      if (step > 0 && input.checkpointDir) {
        progress(step, 'checkpoint');
        const dir = path.join(input.checkpointDir, checkpointFolder('best', step));
        await trainer.save(dir, state);
        record.checkpoints.push({ kind: 'best', path: dir, metric: { name: AGENT_METRICS.valSuccess, value } });
      }
    };

    try {
      if (state.step === 0 && config.valBeforeTrain && validation.length > 0 && config.valEvery > 0) {
        const record: StepRecord = { step: 0, metrics: await validate(0), groups: [], checkpoints: [], alerts: [] };
        await afterValidation(0, record.metrics, record);
        await hooks.onStep?.(record);
      }
      // The signal check of the group-reward loop, on what an agent's step learns from: tasks
      // whose episodes give any gradient (rewards that differ, or a skill that taught a token).
      // Nothing is extracted or voted on here, so those two checks are off.
      const signalWatch = new SignalWatch({ ...signalThresholdsOf(config), minExtraction: 0, minLift: 0 });
      let resumableAt = state.step;
      for (let step = state.step + 1; step <= config.steps; step++) {
        check();
        if (hooks.pauseRequested?.() && state.step === resumableAt) return { lastStep: state.step, aborted: false, paused: true, best: state.best };
        const stepStart = performance.now();

        // Rollout: votes episodes of each task, in lockstep.
        progress(step, 'rollout');
        const itemIndices = Array.from({ length: config.promptsPerStep }, (_, i) => order.at(state.cursor + i));
        const rolloutStart = performance.now();
        const episodes = await play(
          itemIndices.map((i) => input.tasks[i]),
          config.votes,
          { temperature: config.temperature, topP: config.topP, topK: config.topK },
          rng,
        );
        const rolloutSeconds = seconds(rolloutStart);
        state = { ...state, cursor: state.cursor + config.promptsPerStep, rng: rng.state() };
        const groups = itemIndices.map((itemIndex, p) => ({ itemIndex, episodes: episodes.slice(p * config.votes, (p + 1) * config.votes) }));

        // Advantages: GRPO over each task's group, on the discounted episode reward.
        const advantages = groups.map((g) =>
          groupAdvantages(
            g.episodes.map((e) => Math.pow(s.agentGamma, Math.max(0, e.turns.length - 1)) * e.reward),
            groupEstimator(config.advantage),
            config.advantageEpsilon,
          ),
        );

        // OPID: skills from the analyzer, then Δ of every taught reply.
        const analyses: (Analysis | null)[] = episodes.map(() => null);
        const deltas: Map<number, TurnDelta>[] = episodes.map(() => new Map());
        if (opid) {
          const toScore: { episode: number; turn: number; messages: ChatMessage[]; reply: string; skills: { episodeSkill: string; stepSkill?: string } }[] = [];
          for (const [i, e] of episodes.entries()) {
            check();
            if (e.turns.length === 0) continue;
            analyses[i] = await analyzeEpisode(e, e.firstObservation, analyzer, s.opidAnalyzerTemplate).catch((err: unknown) => {
              if (signal?.aborted) throw new Aborted();
              if (err instanceof AnalyzerRefused) return { ok: false as const, reason: err.message, raw: '' };
              throw err;
            });
            const a = analyses[i]!;
            if (!a.ok) continue;
            const stepSkills = new Map(a.skills.stepSkills.map((x) => [x.step, x.skill]));
            for (const [t, turn] of e.turns.entries()) {
              const skills = { episodeSkill: a.skills.episodeSkill, stepSkill: stepSkills.get(t + 1) };
              if (!skills.episodeSkill.trim() && !skills.stepSkill?.trim()) continue;
              // A reply whose teacher's conversation does not fit the model is not re-scored.
              const taught = encodeConversation(tok, [...teacherMessages(turn.messages, skills), { role: 'assistant', content: turn.reply }]);
              if (taught.ids.length <= ctx) toScore.push({ episode: i, turn: t, messages: turn.messages, reply: turn.reply, skills });
            }
          }
          // Every taught reply of the step re-scored in batches.
          const scored = await turnDeltas(deltaScorer, tok, toScore);
          toScore.forEach((x, k) => {
            if (scored[k]) deltas[x.episode].set(x.turn, scored[k]);
          });
        }

        // The step's sequences, each with its per-token advantages (A_episode + w·Δ).
        const weights = { episode: s.opidEpisodeWeight, step: s.opidStepWeight };
        const examples: SequenceExample[] = [];
        groups.forEach((g, p) =>
          g.episodes.forEach((e, j) => {
            const i = p * config.votes + j;
            for (const ex of episodeExamples(e, tok, advantages[p][j], deltas[i], weights)) {
              // A sequence whose every advantage is zero moves nothing but the KL term: skipped.
              if (Array.from(ex.tokenAdvantages!).some((a, t) => a !== 0 && ex.trainTokens![t])) examples.push(ex);
            }
          }),
        );

        const withSignal = mean(groups.map((g, p) => (g.episodes.some((_, j) => advantages[p][j] !== 0 || deltas[p * config.votes + j].size > 0) ? 1 : 0)));
        const signalNumbers = { [SIGNAL_METRICS.extractionRate]: 1, [SIGNAL_METRICS.majorityLift]: 1, [SIGNAL_METRICS.majorityRatioChance]: 1, [SIGNAL_METRICS.groupsWithSignal]: withSignal, [TRAIN_METRICS.majorityRatio]: 1 };
        const signalAlert = signalWatch.onStep(step, signalNumbers, step === 1);
        // signalAction stop: no update from a step that gives nothing to learn from.
        const stopForSignal = signalAlert !== null && config.signalAction === 'stop';

        // Update: PPO mini-batches, old log-probs from the policy before the first one.
        check();
        progress(step, 'update');
        const updateStart = performance.now();
        const lr = learningRate(schedule, step - 1);
        const updates: StepResult[] = [];
        const batches = [];
        for (let b = 0; !stopForSignal && b < examples.length; b += shape.size) {
          const rows = examples.slice(b, b + shape.size);
          const batchShape = updateShape(rows, shape);
          const batch = makeCausalBatch(rows, batchShape, tok.padTokenId ?? 0);
          const oldLogprobs = await trainer.logprobs(batch, { shape: batchShape });
          const refLogprobs = config.klCoef > 0 ? await trainer.logprobs(batch, { reference: true, shape: batchShape }) : undefined;
          batches.push({ batch: { ...batch, advantages: batch.tokenAdvantages ?? new Float32Array(batchShape.size * batchShape.seqLen), oldLogprobs, refLogprobs }, shape: batchShape });
        }
        for (const { batch, shape: batchShape } of batches) {
          check();
          updates.push(await trainer.step(batch, lr, { shape: batchShape }));
        }
        const updateSeconds = seconds(updateStart);

        // The record: a group per task, a sample per episode with its turns and skills.
        const record: StepRecord = { step, metrics: {}, groups: [], checkpoints: [], alerts: [] };
        record.groups = groups.map((g, p) => ({
          itemIdx: input.itemIdx?.[g.itemIndex] ?? g.itemIndex,
          prompt: g.episodes[0]?.goal ?? '',
          pseudoLabel: null,
          voteCounts: [],
          majorityRatio: Number.NaN,
          labelCorrect: null,
          labeled: true,
          labelSource: 'vote',
          samples: g.episodes.map((e, j) => {
            const i = p * config.votes + j;
            return {
              text: episodeSummary(e),
              extractedAnswer: null,
              reward: e.reward,
              advantage: advantages[p][j],
              usedForTraining: true,
              tokenIds: new Int32Array(0),
              logprobs: new Float32Array(0),
              entropies: new Float32Array(0),
              selfCertainties: new Float32Array(0),
              details: { success: e.success ? 1 : 0, turns: e.turns.length },
              episode: episodeRecord(e, analyses[i], deltas[i]),
            };
          }),
        }));
        const m = record.metrics;
        const turns = episodes.flatMap((e) => e.turns);
        m[AGENT_METRICS.success] = mean(episodes.map((e) => (e.success ? 1 : 0)));
        m[AGENT_METRICS.reward] = mean(episodes.map((e) => e.reward));
        m[AGENT_METRICS.length] = mean(episodes.map((e) => e.turns.length));
        m[AGENT_METRICS.formatValid] = mean(turns.map((t) => (t.formatValid ? 1 : 0)));
        m[AGENT_METRICS.contextFull] = mean(episodes.map((e) => (e.contextFull ? 1 : 0)));
        if (opid) Object.assign(m, opidMetrics(episodes, analyses, deltas, advantages.flat(), weights));
        m[TRAIN_METRICS.lr] = lr;
        m[SIGNAL_METRICS.groupsWithSignal] = withSignal;
        if (signalAlert) record.alerts.push(signalAlert);
        m[TRAIN_METRICS.kl] = mean(updates.map((u) => u.kl ?? 0));
        m[TRAIN_METRICS.klCoef] = config.klCoef;
        m[TRAIN_METRICS.gradNorm] = mean(updates.map((u) => u.gradNorm));
        m[TRAIN_METRICS.pgLoss] = mean(updates.map((u) => u.pgLoss ?? 0));
        m[TRAIN_METRICS.clipRatio] = mean(updates.map((u) => u.clipRatio ?? 0));
        m[TRAIN_METRICS.ppoKl] = mean(updates.map((u) => u.ppoKl ?? 0));
        const replyChars = turns.reduce((a, t) => a + t.reply.length, 0);
        m[TRAIN_METRICS.responseLength] = turns.length ? replyChars / turns.length : 0;
        record.tokens = examples.reduce((a, ex) => a + ex.tokens.length, 0);

        state = { ...state, step };
        if (validation.length > 0 && config.valEvery > 0 && (step % config.valEvery === 0 || step === config.steps)) {
          const val = await validate(step);
          Object.assign(m, val);
          await afterValidation(step, val, record);
        }
        const pausing = step < config.steps && (hooks.pauseRequested?.() ?? false);
        if (input.checkpointDir && (pausing || stopForSignal || (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) || step === config.steps)) {
          progress(step, 'checkpoint');
          const dir = path.join(input.checkpointDir, checkpointFolder('last', step));
          await trainer.save(dir, state);
          record.checkpoints.push({ kind: 'last', path: dir, metric: null } satisfies CheckpointRecord);
          resumableAt = step;
        }
        const stepSeconds = seconds(stepStart);
        m[TRAIN_METRICS.timingRollout] = rolloutSeconds;
        m[TRAIN_METRICS.timingUpdate] = updateSeconds;
        m[TRAIN_METRICS.timingStep] = stepSeconds;
        m[TRAIN_METRICS.tokensPerSecond] = stepSeconds > 0 ? record.tokens / stepSeconds : 0;
        await hooks.onStep?.(record);
        if (stopForSignal) return { lastStep: state.step, aborted: false, paused: false, best: state.best, signalStop: { step, message: signalAlert.message } };
        if (pausing) return { lastStep: state.step, aborted: false, paused: true, best: state.best };
      }
      return { lastStep: state.step, aborted: false, paused: false, best: state.best };
    } catch (e) {
      if (e instanceof Aborted || signal?.aborted) return { lastStep: state.step, aborted: true, paused: false, best: state.best };
      throw e;
    }
  } finally {
    await generator?.release();
    await scorer?.release();
    await trainer.release();
  }
}

/**
 * The shape a mini-batch of `rows` is trained at: `full`'s rows, and positions for its longest
 * sequence rounded up to a few bucket lengths (bucketLength, as the token scorer's), so the
 * trainer compiles a handful of step graphs rather than one per length, and never more than `full`.
 */
export function updateShape(rows: readonly SequenceExample[], full: BatchShape): BatchShape {
  const longest = rows.reduce((a, r) => Math.max(a, r.tokens.length), 0);
  // A sequence of L tokens is L − 1 positions (each predicts the next token).
  return { size: full.size, seqLen: bucketLength(Math.max(1, longest - 1), full.seqLen) };
}

/** An episode as it is stored: each turn with the skill that taught it and its Δ. */
export function episodeRecord(e: Episode, analysis: Analysis | null, deltas: ReadonlyMap<number, TurnDelta>): EpisodeRecord {
  const skills: SkillRecord[] = [];
  const stepSkill = new Map<number, number>();
  let episodeSkill: number | null = null;
  if (analysis?.ok) {
    episodeSkill = skills.push({ kind: e.success ? 'workflow' : 'avoidance', text: analysis.skills.episodeSkill, turn: null, uses: 0 }) - 1;
    for (const x of analysis.skills.stepSkills) stepSkill.set(x.step, skills.push({ kind: 'step', text: x.skill, turn: x.step, uses: 0 }) - 1);
  }
  const turns = e.turns.map((t, i): TurnRecord => {
    const d = deltas.get(i) ?? null;
    const skill = d === null ? null : d.source === 'step' ? (stepSkill.get(i + 1) ?? null) : episodeSkill;
    if (skill !== null) skills[skill].uses++;
    return {
      prompt: t.messages.at(-1)?.content ?? '',
      reply: t.reply,
      action: t.action,
      formatValid: t.formatValid,
      observation: t.observation,
      reward: t.reward,
      done: t.done,
      skill,
      tokenIds: d ? Int32Array.from(d.ids) : null,
      delta: d ? Float32Array.from(d.delta) : null,
    };
  });
  return {
    task: e.task,
    goal: e.goal,
    success: e.success,
    reward: e.reward,
    contextFull: e.contextFull === true,
    turns,
    skills,
    analysisError: analysis && !analysis.ok ? { reason: analysis.reason, raw: analysis.raw } : null,
  };
}

/** OPID's step metrics: how many turns a skill teaches, and the parts of the mixed advantage. */
export function opidMetrics(
  episodes: readonly Episode[],
  analyses: readonly (Analysis | null)[],
  deltas: readonly ReadonlyMap<number, TurnDelta>[],
  episodeAdvantage: readonly number[],
  weights: { episode: number; step: number },
): Record<string, number> {
  const turns = episodes.reduce((a, e) => a + e.turns.length, 0);
  const taught = deltas.flatMap((d) => [...d.values()]);
  const stepTaught = taught.filter((d) => d.source === 'step');
  const deltaMean = (ds: readonly TurnDelta[]) => {
    const all = ds.flatMap((d) => Array.from(d.delta));
    return all.length ? mean(all) : 0;
  };
  // Every reply token: its episode's advantage plus, where taught, the weighted Δ.
  // The mixed advantage of every token a skill taught (the others carry A_episode alone).
  const mixed: number[] = [];
  deltas.forEach((byTurn, i) =>
    byTurn.forEach((d) => {
      const w = d.source === 'step' ? weights.step : weights.episode;
      d.delta.forEach((x) => mixed.push(episodeAdvantage[i] + w * x));
    }),
  );
  const analysed = analyses.filter((a) => a !== null);
  const mixedMean = mixed.length > 0 ? mean(mixed) : 0;
  return {
    [AGENT_METRICS.criticalStepRatio]: turns ? stepTaught.length / turns : 0,
    [AGENT_METRICS.teacherAvailable]: turns ? taught.length / turns : 0,
    [AGENT_METRICS.analyzerFailed]: analysed.length ? analysed.filter((a) => !a.ok).length / analysed.length : 0,
    [AGENT_METRICS.advEpisode]: mean(episodeAdvantage.slice()),
    [AGENT_METRICS.advDeltaEpisode]: deltaMean(taught.filter((d) => d.source === 'episode')),
    [AGENT_METRICS.advDeltaStep]: deltaMean(stepTaught),
    // Over the taught tokens only: a step where no skill taught any has none (not zeros that
    // read as "every advantage was 0" beside a step that trained on ±1.5).
    ...(mixed.length > 0 && {
      [AGENT_METRICS.advMean]: mixedMean,
      [AGENT_METRICS.advStd]: Math.sqrt(mean(mixed.map((x) => (x - mixedMean) ** 2))),
      [AGENT_METRICS.advMax]: mixed.reduce((a, x) => Math.max(a, x), -Infinity),
      [AGENT_METRICS.advMin]: mixed.reduce((a, x) => Math.min(a, x), Infinity),
    }),
  };
}

/**
 * Refuses before any graph is built a run whose graphs could outgrow the memory it may use, the
 * host's on the CPU and the GPU's on a GPU that reports it (checkRunFits). A turn's length is not
 * known before it is played (earlier turns, a long results page), so the bound is the model's
 * context: a mini-batch of agentMiniBatch sequences of up to its positions, the reference pass,
 * and every episode of a rollout (or of a validation) prefilled together with its KV cache at
 * that length.
 */
export async function checkAgentMemory(c: LlamaConfig, config: RunConfig, s: AgentSettings, device: Device, ctx: number, rows: number, budgetOf?: (device: Device) => Promise<MemoryBudget | null>): Promise<{ mergeAdapters: boolean }> {
  const lora = c.numLayers * config.loraTargets.length * config.loraRank * 2 * Math.max(c.hiddenSize, c.intermediateSize);
  const shapes = {
    update: { size: s.agentMiniBatch, seqLen: ctx - 1 },
    reference: config.klCoef > 0,
    generate: { rows, prompts: rows, maxLength: ctx },
    trainable: config.mode === 'full' ? weightCount(c) : lora,
    precision: config.precision,
  };
  return checkRunFits(
    c,
    config,
    shapes,
    device,
    `Its update trains up to ${s.agentMiniBatch} sequences (agentMiniBatch) of up to the model's ${ctx} positions at once, and its rollout plays ${rows} episodes in lockstep ` +
      `(promptsPerStep ${config.promptsPerStep} × votes ${config.votes}, or the held-out tasks of a validation), each turn's prompts prefilled together; attention memory grows with the square of a turn's length. ` +
      'Lower agentMiniBatch, promptsPerStep or votes.',
    budgetOf,
  );
}
