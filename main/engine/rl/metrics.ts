// Metric names (those of the TTRL reference implementation), validation scores, and the
// collapse watch.
//
// Naming decision: the training pass rate is logged under the fixed key `train/pass@N` (N =
// the votes per prompt, given by the run's config), exactly as the issue lists it, so a chart or
// query never depends on the run's settings. Validation keys carry the literal k
// (`val/avg@16`), because runs are compared on a given k (the demo reports avg@16 and maj@16).
import { type AnswerFormat, answersEquivalent, majorityVote } from '../tasks/answers.ts';
import { SIGNAL_METRICS } from './signal.ts';

/** Keys every training step reports. Those marked ground truth only appear when items have hidden answers. */
export const TRAIN_METRICS = {
  labelAccuracy: 'train/label_accuracy',
  rewardAccuracy: 'train/reward_accuracy',
  majorityRatio: 'train/majority_ratio',
  labeledRatio: 'train/labeled_ratio',
  majorityVotingReward: 'train/majority_voting_reward',
  groundTruthReward: 'train/ground_truth_reward',
  passAtN: 'train/pass@N',
  entropy: 'train/entropy',
  responseLength: 'train/response_length',
  clipRatio: 'train/clip_ratio',
  ppoKl: 'actor/ppo_kl',
  kl: 'actor/kl',
  klCoef: 'actor/kl_coef',
  gradNorm: 'actor/grad_norm',
  lr: 'actor/lr',
  pgLoss: 'actor/pg_loss',
  timingRollout: 'timing/rollout',
  timingUpdate: 'timing/update',
  timingStep: 'timing/step',
  tokensPerSecond: 'perf/tokens_per_s',
} as const;

/**
 * The most GPU memory the engine's own buffers held during the step (weights, optimizer state,
 * KV cache: runtime/device-buffers.ts), in MB. Only on a device that keeps them (WebGPU).
 */
export const DEVICE_BUFFERS_METRIC = 'perf/device_buffers_mb';

/** Mixed precision's loss scaling (precision mixed only). */
export const MIXED_PRECISION_METRICS = {
  lossScale: 'train/loss_scale',
  skippedUpdates: 'train/skipped_updates',
} as const;

/** The actor–critic's metrics (advantage gae), under verl's names. */
/** The update of a method's second turns (self-debugging), logged at steps that trained any. */
export const REVISION_METRICS = {
  pgLoss: 'actor/revision_pg_loss',
  gradNorm: 'actor/revision_grad_norm',
} as const;

export const CRITIC_METRICS = {
  vfLoss: 'critic/vf_loss',
  vfClipfrac: 'critic/vf_clipfrac',
  vpredMean: 'critic/vpred_mean',
  valuesMean: 'critic/values/mean',
  returnsMean: 'critic/returns/mean',
  explainedVar: 'critic/vf_explained_var',
  gradNorm: 'critic/grad_norm',
  lr: 'critic/lr',
} as const;

/**
 * How well a method's reward tracks the truth (TTRL's urlvr branch logs it as
 * `train/certainty/point_biserial_correlation`). Not in TRAIN_METRICS: a step where every reward,
 * or every correctness, is the same has none.
 */
export const REWARD_TRUTH_CORRELATION = 'train/reward_truth_correlation';

/** Pearson correlation of `x` with the 0/1 `y` (point-biserial); null when either is constant or empty. */
export function pointBiserial(x: readonly number[], y: readonly boolean[]): number | null {
  const n = x.length;
  if (n === 0 || y.length !== n) return null;
  const yn = y.map((b) => (b ? 1 : 0));
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = yn.reduce((a: number, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (yn[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (yn[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : null;
}

/** The keys that need hidden answers (diagnostics only). */
export const GROUND_TRUTH_METRICS: readonly string[] = [
  TRAIN_METRICS.labelAccuracy,
  TRAIN_METRICS.rewardAccuracy,
  TRAIN_METRICS.groundTruthReward,
  TRAIN_METRICS.passAtN,
  REWARD_TRUTH_CORRELATION,
];

/**
 * A metric a run logs: its key, how people see it, and the chart that draws it. Keys ending in
 * `@k` stand for every k (`val/avg@k` covers `val/avg@16`).
 */
export interface MetricDefinition {
  key: string;
  label: string;
  /** One line: what it measures. */
  description: string;
  /** The id of the chart (CHARTS) that draws it; null: offered under "More metrics". */
  chart: string | null;
  /** Values lie in [0, 1]. */
  unit?: boolean;
  /** Measured against hidden answers (never a reward): drawn dashed beside pseudo metrics. */
  groundTruth?: boolean;
}

/** A run view's chart: the metrics whose `chart` names it are drawn together, in table order. */
export interface ChartDefinition {
  id: string;
  title: string;
  hint: string;
  unit?: boolean;
  /** Only for runs whose setting has this value (the critic's charts: advantage gae). */
  when?: { setting: string; equals: string };
}

const WITH_CRITIC = { setting: 'advantage', equals: 'gae' };

/** The charts of a run, in the order the run view shows them. */
export const CHARTS: readonly ChartDefinition[] = [
  { id: 'reward', title: 'Reward', hint: 'Mean pseudo reward of the trained samples (and, for measurement, against hidden answers)' },
  { id: 'accuracy', title: 'Label & reward accuracy', unit: true, hint: 'Measured against hidden answers only — never used for training' },
  { id: 'majority', title: 'Majority ratio', unit: true, hint: 'Winning answer’s share of the votes, and what chance would give (answers drawn at random from the distinct answers seen); → 1 while validation falls means collapse' },
  { id: 'signal', title: 'Signal check', unit: true, hint: 'Share of samples with an answer, of prompts whose trained samples got a non-zero advantage, and of tied votes: a weak signal means training on noise' },
  { id: 'entropy', title: 'Entropy', hint: 'Mean token entropy of the rollouts (nats)' },
  { id: 'validation', title: 'Validation avg@k vs maj@k', unit: true, hint: 'avg@k: mean accuracy of k samples; maj@k: accuracy of their majority answer; pass@k: any correct' },
  { id: 'length', title: 'Response length', hint: 'Mean tokens per response' },
  { id: 'kl', title: 'KL to reference', hint: 'low_var_kl over response tokens' },
  { id: 'klcoef', title: 'KL coefficient', hint: 'Fixed, or moved each step toward the adaptive KL target' },
  { id: 'gradnorm', title: 'Gradient norm', hint: 'Global norm before clipping' },
  { id: 'throughput', title: 'Throughput', hint: 'Generated tokens per second of step time' },
  { id: 'correlation', title: 'Proxy–truth correlation', hint: 'Point-biserial correlation of the reward with correctness against hidden answers: how honest the method’s signal is on this data' },
  { id: 'critic-values', title: 'Critic values', when: WITH_CRITIC, hint: 'What the critic predicted for the rollout’s response tokens, the returns it learns (GAE), and its predictions during its update' },
  { id: 'critic-loss', title: 'Critic value loss', when: WITH_CRITIC, hint: 'Clipped value loss: ½ squared error of the predictions to the returns, token mean' },
  { id: 'critic-explained', title: 'Critic explained variance', when: WITH_CRITIC, hint: '1 − Var(returns − values) / Var(returns): 1 when the critic predicts the returns, 0 when it does no better than their mean, below 0 when worse' },
];

/** The metrics every run logs (a method's own are in its definition): one table for help, API and charts. */
export const RUN_METRICS: readonly MetricDefinition[] = [
  // Not in [0, 1] for every method (token entropy's rewards are negative).
  { key: TRAIN_METRICS.majorityVotingReward, label: 'Pseudo reward', chart: 'reward', description: 'Mean pseudo reward of the trained samples' },
  { key: TRAIN_METRICS.groundTruthReward, label: 'Reward against hidden answers', chart: 'reward', unit: true, groundTruth: true, description: 'Mean reward against the hidden answers of the trained samples (training accuracy)' },
  { key: TRAIN_METRICS.labelAccuracy, label: 'Label accuracy', chart: 'accuracy', unit: true, groundTruth: true, description: 'Share of prompts whose pseudo-label equals the hidden answer' },
  { key: TRAIN_METRICS.rewardAccuracy, label: 'Reward accuracy', chart: 'accuracy', unit: true, groundTruth: true, description: 'Share of trained samples whose pseudo reward (agrees with the label) equals the reward the hidden answer gives' },
  { key: TRAIN_METRICS.majorityRatio, label: 'Majority ratio', chart: 'majority', unit: true, description: 'Mean over prompts of the winning answer’s share of the votes (code-consensus: the top consensus set’s share of the functions); the collapse watch reads it' },
  { key: TRAIN_METRICS.labeledRatio, label: 'Prompts labeled', chart: 'signal', unit: true, description: 'Share of the step\'s prompts that got a label and so an update (SRT\'s threshold, a tied vote or a method\'s band leave a prompt unlabeled)' },
  { key: SIGNAL_METRICS.majorityRatioChance, label: 'Majority ratio by chance', chart: 'majority', unit: true, description: 'Mean over prompts of the majority ratio chance would give: answers drawn at random from the distinct answers seen (at least 2; code-consensus: the consensus sets of runnable functions, against the top set)' },
  { key: SIGNAL_METRICS.extractionRate, label: 'Answers extracted', chart: 'signal', unit: true, description: 'Share of samples with an extracted answer (code-consensus: with a function that passed or failed some test)' },
  { key: SIGNAL_METRICS.groupsWithSignal, label: 'Prompts with signal', chart: 'signal', unit: true, description: 'Share of prompts whose trained samples got any non-zero advantage (code-consensus: whose trained rewards differ, in total or in a role); the rest teach nothing' },
  { key: SIGNAL_METRICS.tiedGroups, label: 'Tied votes', chart: 'signal', unit: true, description: 'Share of prompts whose vote tied for the most votes' },
  { key: SIGNAL_METRICS.majorityLift, label: 'Majority ÷ chance', chart: null, description: 'Mean majority ratio ÷ mean chance majority ratio: about 1 or below when the votes look like random guesses' },
  { key: REWARD_TRUTH_CORRELATION, label: 'Proxy–truth correlation', chart: 'correlation', groundTruth: true, description: 'Point-biserial correlation, over the samples of labeled groups, of the reward with being correct against the hidden answer (absent when either is constant)' },
  { key: TRAIN_METRICS.passAtN, label: 'pass@N (train)', chart: null, unit: true, groundTruth: true, description: 'Share of prompts where any of the N votes is correct' },
  { key: TRAIN_METRICS.entropy, label: 'Token entropy (nats)', chart: 'entropy', description: 'Mean token entropy of the rollouts (nats)' },
  {
    key: 'val/avg@k',
    label: 'avg@k (validation)',
    chart: 'validation',
    unit: true,
    groundTruth: true,
    description: 'Mean accuracy of k samples per validation prompt (pass@1 estimate; code-consensus: the share whose function passes the task’s hidden tests)',
  },
  {
    key: 'val/maj@k',
    label: 'maj@k (validation)',
    chart: 'validation',
    unit: true,
    groundTruth: true,
    description:
      'Accuracy of the majority answer of k samples per validation prompt (code-consensus: CodeT’s pass@1, whether the first function of the top consensus set of the k samples’ own functions and tests passes the hidden tests; 0 where no function passes any of them)',
  },
  {
    key: 'val/pass@k',
    label: 'pass@k (validation)',
    chart: 'validation',
    unit: true,
    groundTruth: true,
    description: 'Share of validation prompts where any of k samples is correct (code-consensus: passes the hidden tests)',
  },
  { key: TRAIN_METRICS.responseLength, label: 'Response length (tokens)', chart: 'length', description: 'Mean response length of the rollouts (tokens)' },
  { key: TRAIN_METRICS.kl, label: 'KL to reference', chart: 'kl', description: 'KL to the reference model (low_var_kl), over response tokens' },
  { key: TRAIN_METRICS.klCoef, label: 'KL coefficient', chart: 'klcoef', description: 'KL loss coefficient of the update (changes step to step under an adaptive KL target)' },
  { key: TRAIN_METRICS.gradNorm, label: 'Gradient norm', chart: 'gradnorm', description: 'Global gradient norm before clipping' },
  { key: TRAIN_METRICS.tokensPerSecond, label: 'Tokens / s', chart: 'throughput', description: 'Generated tokens per second of step time' },
  {
    key: DEVICE_BUFFERS_METRIC,
    label: 'GPU buffers (MB)',
    chart: null,
    description: 'Most GPU memory the engine’s own buffers held during the step: weights, optimizer state and KV cache (onnxruntime’s working memory for activations comes on top); WebGPU only',
  },
  { key: TRAIN_METRICS.clipRatio, label: 'Clip ratio', chart: null, unit: true, description: 'Share of response tokens whose ratio was clipped' },
  {
    key: TRAIN_METRICS.ppoKl,
    label: 'Sampler–trainer gap',
    chart: null,
    description:
      'Mean of the sampled log-prob minus the trainer’s over the update’s response tokens (verl’s ppo_kl). With one update per rollout the two score the same policy, so this is their numeric gap: near 0 in fp32, larger under mixed precision',
  },
  { key: TRAIN_METRICS.lr, label: 'Learning rate', chart: null, description: 'Learning rate of the update' },
  { key: TRAIN_METRICS.pgLoss, label: 'Policy loss', chart: null, description: 'Clipped policy-gradient loss' },
  { key: REVISION_METRICS.pgLoss, label: 'Second-turn policy loss', chart: null, description: 'Clipped policy-gradient loss of the update on a method’s second turns (self-debugging revisions)' },
  { key: REVISION_METRICS.gradNorm, label: 'Second-turn gradient norm', chart: null, description: 'Gradient norm of the update on a method’s second turns, before clipping' },
  { key: CRITIC_METRICS.valuesMean, label: 'Critic value', chart: 'critic-values', description: 'Mean value the critic gave the rollout’s trained response tokens, before its update (verl’s critic/values/mean)' },
  { key: CRITIC_METRICS.returnsMean, label: 'Return', chart: 'critic-values', description: 'Mean GAE return of those tokens: what the critic learns to predict (verl’s critic/returns/mean)' },
  { key: CRITIC_METRICS.vpredMean, label: 'Critic prediction (update)', chart: 'critic-values', description: 'Mean prediction of the critic during its update, averaged over its updates (verl’s critic/vpred_mean)' },
  { key: CRITIC_METRICS.vfLoss, label: 'Value loss', chart: 'critic-loss', description: 'Clipped value loss of the critic’s update, averaged over its updates (verl’s critic/vf_loss)' },
  { key: CRITIC_METRICS.explainedVar, label: 'Explained variance', chart: 'critic-explained', description: '1 − Var(returns − values) / Var(returns) over the trained tokens (verl’s critic/vf_explained_var)' },
  { key: CRITIC_METRICS.vfClipfrac, label: 'Value clip fraction', chart: null, unit: true, description: 'Share of tokens whose clipped value loss was the larger (verl’s critic/vf_clipfrac)' },
  { key: CRITIC_METRICS.gradNorm, label: 'Critic gradient norm', chart: null, description: 'Norm of the value head’s gradient before clipping (verl’s critic/grad_norm)' },
  { key: CRITIC_METRICS.lr, label: 'Critic learning rate', chart: null, description: 'Learning rate of the critic’s update (verl’s critic/lr)' },
  { key: MIXED_PRECISION_METRICS.lossScale, label: 'Loss scale', chart: null, description: 'Mixed precision: the dynamic loss scale the step’s update ran at (halved after an update whose float16 gradient overflowed, doubled after 2000 good ones)' },
  { key: MIXED_PRECISION_METRICS.skippedUpdates, label: 'Skipped updates', chart: null, description: 'Mixed precision: updates skipped so far because their gradient overflowed float16 (or was not finite)' },
  { key: TRAIN_METRICS.timingRollout, label: 'Rollout time (s)', chart: null, description: 'Seconds spent sampling the votes' },
  { key: TRAIN_METRICS.timingUpdate, label: 'Update time (s)', chart: null, description: 'Seconds spent on reference log-probs and the update' },
  { key: TRAIN_METRICS.timingStep, label: 'Step time (s)', chart: null, description: 'Seconds for the whole step' },
];

export const valMetricName = (kind: 'avg' | 'maj' | 'pass', k: number): string => `val/${kind}@${k}`;

/** Whether `answer` is equivalent to the hidden answer (false when there is no answer). */
export function isCorrect(answer: string | null, truth: string, format: AnswerFormat): boolean {
  return answer !== null && answersEquivalent(answer, truth, { format });
}

export interface ValidationGroup {
  /** The k extracted answers of one prompt. */
  answers: readonly (string | null)[];
  truth: string;
  /**
   * Where the method checks responses itself (its `hidden` check: code's hidden tests), each
   * sample's outcome ('pass': correct) and the sample its own consensus picks (null: none), which
   * then decide in place of the answers compared as text.
   */
  hidden?: { outcomes: readonly (string | null)[]; chosen: number | null };
}

/** avg@k (mean accuracy), maj@k (the majority answer is right) and pass@k (any is right), averaged over prompts. */
export function validationScores(groups: readonly ValidationGroup[], format: AnswerFormat): { avg: number; maj: number; pass: number } {
  if (groups.length === 0) return { avg: 0, maj: 0, pass: 0 };
  let avg = 0;
  let maj = 0;
  let pass = 0;
  for (const g of groups) {
    const correct = g.hidden ? g.hidden.outcomes.map((o) => o === 'pass') : g.answers.map((a) => isCorrect(a, g.truth, format));
    avg += correct.filter(Boolean).length / Math.max(1, correct.length);
    pass += correct.some(Boolean) ? 1 : 0;
    if (g.hidden) {
      // The method's pick (code: CodeT's pass@1 through the top consensus set).
      maj += g.hidden.chosen !== null && correct[g.hidden.chosen] ? 1 : 0;
      continue;
    }
    // maj@k as TTRL measures it: a tie goes to the answer seen first (Counter.most_common).
    const vote = majorityVote(g.answers, { format, ties: 'first' });
    maj += vote.label !== null && isCorrect(vote.label, g.truth, format) ? 1 : 0;
  }
  const n = groups.length;
  return { avg: avg / n, maj: maj / n, pass: pass / n };
}

export interface Alert {
  kind: 'collapse' | 'validation_drop' | 'weak_signal' | 'review_unmatched';
  step: number;
  message: string;
  /** The numbers that triggered it. */
  values: Record<string, number>;
}

export interface CollapseWatchState {
  collapsed: boolean;
  dropped: boolean;
}

export interface CollapseThresholds {
  majorityRatio: number;
  entropy: number;
  valDrop: number;
}

/**
 * The known failure of majority-vote training: the model agrees with itself ever more (majority
 * ratio → 1, entropy → 0) while getting worse. Alerts fire once when a condition starts to hold
 * and re-arm once it stops, so a long collapse is one alert, not one per step.
 */
export class CollapseWatch {
  constructor(
    private readonly limits: CollapseThresholds,
    public state: CollapseWatchState = { collapsed: false, dropped: false },
  ) {}

  onTrainStep(step: number, majorityRatio: number, entropy: number): Alert | null {
    const now = majorityRatio >= this.limits.majorityRatio && entropy <= this.limits.entropy;
    const fire = now && !this.state.collapsed;
    this.state = { ...this.state, collapsed: now };
    if (!fire) return null;
    return {
      kind: 'collapse',
      step,
      message: `majority ratio ${majorityRatio.toFixed(3)} with token entropy ${entropy.toFixed(4)}: the model may be converging on its own (possibly wrong) answers`,
      values: { majority_ratio: majorityRatio, entropy },
    };
  }

  /**
   * A validation `valDrop` below the run's best, and by more than one of its `prompts` (on a small
   * evaluation set one prompt answered otherwise is 1/prompts of the score: noise, not a trend).
   * The advice names only what exists: a best at step 0 is the base model, which no checkpoint
   * holds; a run saving no checkpoints has none.
   */
  onValidation(step: number, metric: string, value: number, best: { value: number; step: number }, savesCheckpoints: boolean, prompts = Infinity): Alert | null {
    const drop = best.value - value;
    const now = drop >= this.limits.valDrop && drop > 1 / prompts + 1e-9;
    const fire = now && !this.state.dropped;
    this.state = { ...this.state, dropped: now };
    if (!fire) return null;
    const fell = `${metric} fell to ${value.toFixed(3)} from its best ${best.value.toFixed(3)}`;
    const advice =
      best.step === 0
        ? 'at step 0, before any training: the run has made the model worse than the base model, and no checkpoint beats it; stop the run and start again with other settings (e.g. a lower lr)'
        : savesCheckpoints
          ? `at step ${best.step}: consider the "best" checkpoint (best-${best.step})`
          : `at step ${best.step} (this run saves no checkpoints)`;
    return {
      kind: 'validation_drop',
      step,
      message: `${fell} ${advice}`,
      values: { [metric]: value, best: best.value, best_step: best.step },
    };
  }
}
