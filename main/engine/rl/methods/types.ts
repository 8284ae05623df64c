// What a label-free method is: one `MethodDefinition` per module, listed once in `registry.ts`.
// Everything else (the run configuration's validation, the API's `runs.methods`, the New run
// form, the command line's help, the charts) reads the registry, so adding a method is one
// module and one registry entry.
import type { z } from 'zod';
import type { CommonRunConfig } from '../common-settings.ts';
import type { ChartDefinition, MetricDefinition } from '../metrics.ts';
import type { GroupScore, Scorer } from '../rewards.ts';

/**
 * How a run of this method is driven. 'group-reward': sample a group per prompt, score it, and
 * take one group-relative policy-gradient step (the run loop in `loop.ts`). 'distillation':
 * rounds of candidates curated by the frozen model's judgments, then supervised fine-tuning on the
 * survivors (`svd/round.ts`); such a method has no scorer. 'agent-episodes': the prompts are
 * tasks of an environment; a group of episodes per task is played turn by turn and trained on its
 * outcome (and OPID's skills), in `agent/loop.ts`; its reward is the environment's, no scorer.
 */
export type PipelineKind = 'group-reward' | 'distillation' | 'agent-episodes';

/** What a method's step metrics are computed from: every scored group of the step. */
export interface ScoredGroupView {
  score: GroupScore;
  /** Indices of the samples used for the update (empty when the group got no label). */
  chosen: readonly number[];
}

export interface MethodDefinition<S extends z.ZodObject = z.ZodObject> {
  /** Lower-case id, as `--method` and the stored config name it: `ttrl`, `self-certainty`. */
  id: string;
  /** Short name for people: 'TTRL'. */
  label: string;
  /** One line: what the reward is. */
  description: string;
  pipeline: PipelineKind;
  /**
   * What its scorer needs in its context beyond the group, given its settings: `judge`, the frozen model (the run
   * then keeps the reference weights under full fine-tuning even without a KL term); `teacher`,
   * an EMA copy of the policy (`rl/teacher.ts`), with its α schedule from the method's settings.
   */
  services?: {
    judge?(settings: z.output<S>): boolean;
    teacher?(settings: z.output<S>): { alphaStart: number; alphaEnd: number };
    /** A second turn from the policy (`ScorerContext.revise`), its user message at most `messageTokens` tokens; null: none. */
    revise?(settings: z.output<S>): { messageTokens: number } | null;
  };
  /**
   * The method's own settings, each with a default and a description. They are flat keys of the
   * run configuration (e.g. `srtThreshold`), so no two methods, and no method and the common
   * settings, may share a name.
   */
  settings: S;
  /** Common settings whose default this method changes (its reference recipe), e.g. `{ klCoef: 0.005 }`. */
  defaults?: Partial<CommonRunConfig>;
  /** The metrics its steps log beyond the ones every run logs (`metrics.ts`). */
  metrics: readonly MetricDefinition[];
  /** Charts of its own that its metrics name (the common ones are in `metrics.ts`). */
  charts?: readonly ChartDefinition[];
  /** Checks across its settings that their schema cannot express: each problem at the setting to change (none: fine). */
  check?(settings: z.output<S>): SettingProblem[];
  /**
   * Checks at launch against the model (before the run is recorded): e.g. that the prompts it
   * builds around the run's prompts fit the model's context. Each problem at the setting to change.
   */
  checkLaunch?(settings: z.output<S>, launch: LaunchContext): SettingProblem[];
  /** The scorer of a run: `settings` are the method's own, parsed; `run` the common settings. Every 'group-reward' method has one. */
  scorer?(settings: z.output<S>, run: CommonRunConfig): Scorer;
  /**
   * Metrics (keys of `metrics`) the loop computes against the hidden answers, where the data has
   * them: the share of prompts whose label of that name (`GroupScore.labels`) is right. The
   * scorer never sees the answers.
   */
  truthMetrics?: Record<string, string>;
  /**
   * The name its reference code logs the reward's correlation with correctness under, which the
   * loop then logs too (beside train/reward_truth_correlation, from the hidden answers): over the
   * samples of labeled groups, or only those with an extracted answer (RENT's "valid" ones).
   */
  truthCorrelation?: { key: string; over: 'all' | 'with-answer' };
  /**
   * Whether its scorer gives per-role rewards over the response's tokens (`GroupScore.roles`), so
   * the update reads one advantage per token (the trainer's `tokenAdvantages`).
   */
  tokenAdvantages?(settings: z.output<S>): boolean;
  /**
   * Where comparing extracted answers with the hidden answer says nothing (code), how the loop
   * checks a response against its item's hidden answer: `check` gives an outcome ('pass' is
   * correct) or null where the hidden answer is not of its kind. The loop then stores each
   * sample's outcome, judges correctness by it in the ground-truth metrics and in validation
   * (avg@k, pass@k, and maj@k through `choose`), and logs `metric` (a key of `metrics`): the share
   * of the step's responses that pass. Evaluation only: no reward reads it.
   */
  hidden?: {
    metric: string;
    check(settings: z.output<S>): HiddenCheck;
    /**
     * The response the method's own agreement picks among a validation prompt's k samples (an
     * index, or null: none), whose outcome is `val/maj@k`; avg@k and pass@k read every sample's.
     */
    choose(settings: z.output<S>): (responses: readonly string[]) => Promise<number | null>;
  };
  /**
   * Where extracted answers and their votes are not what the method learns from (code), what the
   * signal check (`rl/signal.ts`) counts in a group: `answered` names, for its alert, what a
   * sample has to give ("a runnable function ... was written"), and `of` reads a scored group
   * (null: the score lacks what it reads; the check then counts answers and votes as for TTRL).
   */
  signal?: { answered: string; of(group: ScoredGroupView): MethodSignal | null };
  /** The method's own step metrics (the keys of `metrics`), from the step's scored groups. */
  stepMetrics?(groups: readonly ScoredGroupView[], settings: z.output<S>): Record<string, number>;
}

/** A group as the signal check counts it, in the method's terms (see `signal`). */
export interface MethodSignal {
  /** Samples that gave something to score (the extraction rate's numerator). */
  answered: number;
  /** Sizes of the groups of samples that agree (the clusters chance is measured against); their sum at most `answered`. */
  clusterCounts: number[];
  /** The agreeing group the method picks, its size over the samples drawn (0: none picked). */
  majorityRatio: number;
  tied: boolean;
  /** Whether the update learns anything from the group: its trained samples' rewards differ. */
  hasSignal: boolean;
}

/** A response against its item's hidden answer: an outcome ('pass': correct), or null where the answer is not of the method's kind. */
export type HiddenCheck = (response: string, hiddenAnswer: string, signal?: AbortSignal) => Promise<string | null>;

/** What a method's launch check knows of the run: the model's context, and its longest training prompt. */
export interface LaunchContext {
  /** Encodes a prompt as the run's prompts are (promptFormat: raw, or in the chat template). */
  encode(text: string): number[];
  /** The model's max_position_embeddings, and its folder's name. */
  contextLength: number;
  model: string;
  /** The run's maxNewTokens: the longest response. */
  maxNewTokens: number;
  /** The longest training prompt (in characters) the run keeps, and how a person finds it. */
  longestPrompt: { text: string; label: string };
}

/** A problem with a run's settings that no one setting's schema sees: the setting to change, and a sentence naming it. */
export interface SettingProblem {
  setting: string;
  message: string;
}

/** Declare a method with its settings' type checked against its scorer. */
export function defineMethod<S extends z.ZodObject>(m: MethodDefinition<S>): MethodDefinition<S> {
  return m;
}
