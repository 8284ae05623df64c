// Metric names (those of the TTRL reference implementation) and how the run views chart them.

export const METRIC_LABELS: Record<string, string> = {
  'train/majority_voting_reward': 'Reward (majority vote)',
  'train/ground_truth_reward': 'Reward against hidden answers',
  'train/label_accuracy': 'Label accuracy',
  'train/reward_accuracy': 'Reward accuracy',
  'train/majority_ratio': 'Majority ratio',
  'train/pass@N': 'pass@N (train)',
  'train/entropy': 'Token entropy (nats)',
  'train/response_length': 'Response length (tokens)',
  'train/clip_ratio': 'Clip ratio',
  'actor/kl': 'KL to reference',
  'actor/kl_coef': 'KL coefficient',
  'actor/grad_norm': 'Gradient norm',
  'actor/lr': 'Learning rate',
  'actor/pg_loss': 'Policy loss',
  'perf/tokens_per_s': 'Tokens / s',
  'timing/step': 'Step time (s)',
};

export function metricLabel(key: string): string {
  if (METRIC_LABELS[key]) return METRIC_LABELS[key];
  const m = /^val\/(avg|maj|pass)@(\d+)$/.exec(key);
  if (m) return `${m[1]}@${m[2]} (validation)`;
  return key;
}

export interface ChartSpec {
  id: string;
  title: string;
  /** Which of the run's metric keys the chart draws. */
  match: (key: string) => boolean;
  /** Draw order (and colour order) of the keys it knows; others follow, sorted. */
  order?: string[];
  /** Values in [0, 1]. */
  unit?: boolean;
  hint: string;
}

const oneOf = (...keys: string[]) => ({ match: (key: string) => keys.includes(key), order: keys });

export const RUN_CHARTS: ChartSpec[] = [
  { id: 'reward', title: 'Reward', ...oneOf('train/majority_voting_reward', 'train/ground_truth_reward'), unit: true, hint: 'Mean pseudo reward of the trained samples (and, for measurement, against hidden answers)' },
  { id: 'accuracy', title: 'Label & reward accuracy', ...oneOf('train/label_accuracy', 'train/reward_accuracy'), unit: true, hint: 'Measured against hidden answers only — never used for training' },
  { id: 'majority', title: 'Majority ratio', ...oneOf('train/majority_ratio'), unit: true, hint: 'Winning answer’s share of the votes; → 1 while validation falls means collapse' },
  { id: 'entropy', title: 'Entropy', ...oneOf('train/entropy'), hint: 'Mean token entropy of the rollouts (nats)' },
  { id: 'validation', title: 'Validation avg@k vs maj@k', match: (k) => /^val\/(avg|maj|pass)@\d+$/.test(k), order: ['val/avg@', 'val/maj@', 'val/pass@'], unit: true, hint: 'avg@k: mean accuracy of k samples; maj@k: accuracy of their majority answer; pass@k: any correct' },
  { id: 'length', title: 'Response length', ...oneOf('train/response_length'), hint: 'Mean tokens per response' },
  { id: 'kl', title: 'KL to reference', ...oneOf('actor/kl'), hint: 'low_var_kl over response tokens' },
  { id: 'klcoef', title: 'KL coefficient', ...oneOf('actor/kl_coef'), hint: 'Fixed, or moved each step toward the adaptive KL target' },
  { id: 'gradnorm', title: 'Gradient norm', ...oneOf('actor/grad_norm'), hint: 'Global norm before clipping' },
  { id: 'throughput', title: 'Throughput', ...oneOf('perf/tokens_per_s'), hint: 'Generated tokens per second of step time' },
];

/** Whether a metric lives in [0, 1] (its chart then shows the whole range). */
export function isUnitMetric(key: string): boolean {
  return RUN_CHARTS.some((spec) => spec.unit && spec.match(key)) || key === 'train/pass@N';
}

/** Keys measured against hidden answers (drawn dashed where they share a chart with pseudo metrics). */
export const GROUND_TRUTH_KEYS = new Set(['train/ground_truth_reward', 'train/pass@N']);

/** Sort keys by a chart's order (an entry ending in '@' matches any k), then by name. */
export function orderKeys(keys: string[], order: string[] = []): string[] {
  const rank = (key: string) => {
    const i = order.findIndex((o) => (o.endsWith('@') ? key.startsWith(o) : key === o));
    return i < 0 ? order.length : i;
  };
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export const SERIES_COLORS = ['#2f6fde', '#e0782f', '#2a9d6f', '#b2479b', '#8a6d1f', '#5b5fc7', '#c4443b', '#3b8ea5'];
