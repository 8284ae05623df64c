// Metric names (those of the TTRL reference implementation), validation scores, and the
// collapse watch.
//
// Naming decision: the training pass rate is logged under the fixed key `train/pass@N` (N =
// the votes per prompt, given by the run's config), exactly as the issue lists it, so a chart or
// query never depends on the run's settings. Validation keys carry the literal k
// (`val/avg@16`), because runs are compared on a given k (the demo reports avg@16 and maj@16).
import { type AnswerFormat, answersEquivalent, majorityVote } from '../tasks/answers.ts';

/** Keys every training step reports. Those marked ground truth only appear when items have hidden answers. */
export const TRAIN_METRICS = {
  labelAccuracy: 'train/label_accuracy',
  rewardAccuracy: 'train/reward_accuracy',
  majorityRatio: 'train/majority_ratio',
  majorityVotingReward: 'train/majority_voting_reward',
  groundTruthReward: 'train/ground_truth_reward',
  passAtN: 'train/pass@N',
  entropy: 'train/entropy',
  responseLength: 'train/response_length',
  clipRatio: 'train/clip_ratio',
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

/** The keys that need hidden answers (diagnostics only). */
export const GROUND_TRUTH_METRICS: readonly string[] = [
  TRAIN_METRICS.labelAccuracy,
  TRAIN_METRICS.rewardAccuracy,
  TRAIN_METRICS.groundTruthReward,
  TRAIN_METRICS.passAtN,
];

/** One line per metric, for help text and chart tooltips. */
export const METRIC_DESCRIPTIONS: Readonly<Record<string, string>> = {
  [TRAIN_METRICS.labelAccuracy]: 'Share of prompts whose pseudo-label equals the hidden answer',
  [TRAIN_METRICS.rewardAccuracy]: 'Share of trained samples whose pseudo reward (agrees with the label) equals the reward the hidden answer gives',
  [TRAIN_METRICS.majorityRatio]: 'Mean over prompts of the winning answer’s share of the votes',
  [TRAIN_METRICS.majorityVotingReward]: 'Mean pseudo reward of the trained samples',
  [TRAIN_METRICS.groundTruthReward]: 'Mean reward against the hidden answers of the trained samples (training accuracy)',
  [TRAIN_METRICS.passAtN]: 'Share of prompts where any of the N votes is correct',
  [TRAIN_METRICS.entropy]: 'Mean token entropy of the rollouts (nats)',
  [TRAIN_METRICS.responseLength]: 'Mean response length of the rollouts (tokens)',
  [TRAIN_METRICS.clipRatio]: 'Share of response tokens whose ratio was clipped',
  [TRAIN_METRICS.kl]: 'KL to the reference model (low_var_kl), over response tokens',
  [TRAIN_METRICS.klCoef]: 'KL loss coefficient of the update (changes step to step under an adaptive KL target)',
  [TRAIN_METRICS.gradNorm]: 'Global gradient norm before clipping',
  [TRAIN_METRICS.lr]: 'Learning rate of the update',
  [TRAIN_METRICS.pgLoss]: 'Clipped policy-gradient loss',
  [TRAIN_METRICS.timingRollout]: 'Seconds spent sampling the votes',
  [TRAIN_METRICS.timingUpdate]: 'Seconds spent on reference log-probs and the update',
  [TRAIN_METRICS.timingStep]: 'Seconds for the whole step',
  [TRAIN_METRICS.tokensPerSecond]: 'Generated tokens per second of step time',
};

export const valMetricName = (kind: 'avg' | 'maj' | 'pass', k: number): string => `val/${kind}@${k}`;

/** Whether `answer` is equivalent to the hidden answer (false when there is no answer). */
export function isCorrect(answer: string | null, truth: string, format: AnswerFormat): boolean {
  return answer !== null && answersEquivalent(answer, truth, { format });
}

export interface ValidationGroup {
  /** The k extracted answers of one prompt. */
  answers: readonly (string | null)[];
  truth: string;
}

/** avg@k (mean accuracy), maj@k (the majority answer is right) and pass@k (any is right), averaged over prompts. */
export function validationScores(groups: readonly ValidationGroup[], format: AnswerFormat): { avg: number; maj: number; pass: number } {
  if (groups.length === 0) return { avg: 0, maj: 0, pass: 0 };
  let avg = 0;
  let maj = 0;
  let pass = 0;
  for (const g of groups) {
    const correct = g.answers.map((a) => isCorrect(a, g.truth, format));
    avg += correct.filter(Boolean).length / Math.max(1, correct.length);
    pass += correct.some(Boolean) ? 1 : 0;
    const vote = majorityVote(g.answers, { format });
    maj += vote.label !== null && isCorrect(vote.label, g.truth, format) ? 1 : 0;
  }
  const n = groups.length;
  return { avg: avg / n, maj: maj / n, pass: pass / n };
}

export interface Alert {
  kind: 'collapse' | 'validation_drop';
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

  onValidation(step: number, metric: string, value: number, best: number): Alert | null {
    const now = best - value >= this.limits.valDrop;
    const fire = now && !this.state.dropped;
    this.state = { ...this.state, dropped: now };
    if (!fire) return null;
    return {
      kind: 'validation_drop',
      step,
      message: `${metric} fell to ${value.toFixed(3)} from its best ${best.toFixed(3)}: consider the "best" checkpoint`,
      values: { [metric]: value, best },
    };
  }
}
