// Self-certainty (Intuitor / RLIF, arXiv 2505.19590): a response's reward is how far, on average
// over its tokens, the policy's next-token distribution was from uniform, KL(U ‖ p_t) =
// logsumexp(z_t) − mean(z_t) − log V for z_t = logits / T. The generator computes it per token
// with the current policy as it samples (a frozen scorer gets hacked). Intuitor's logged value
// leaves out the − log V; a constant per token, it cancels in the group-relative advantage.
// Defaults as Intuitor's: 8 samples per prompt, all trained on, KL 0.005 (low_var_kl).
import { z } from 'zod';
import { mean, summary } from '../stats.ts';
import { defineMethod } from './types.ts';

/** The reward of one response: its mean per-token self-certainty (0 for an empty response). */
export function responseSelfCertainty(selfCertainties: readonly number[]): number {
  return mean(selfCertainties);
}

export const selfCertainty = defineMethod({
  id: 'self-certainty',
  label: 'Self-certainty',
  description: 'Intuitor: a response earns its mean token self-certainty, KL(uniform ‖ p), under the current policy; no answers needed.',
  pipeline: 'group-reward',
  settings: z.object({}),
  defaults: { votes: 8, trainSamples: 8, klCoef: 0.005 },
  charts: [{ id: 'self-certainty', title: 'Self-certainty', hint: 'Per response: mean over its tokens of KL(uniform ‖ p), the reward (nats)' }],
  metrics: [
    { key: 'self_certainty/mean', label: 'Self-certainty (mean)', chart: 'self-certainty', description: 'Mean over the step’s responses of their mean token self-certainty (nats)' },
    { key: 'self_certainty/std', label: 'Self-certainty (std)', chart: null, description: 'Standard deviation over the step’s responses of their self-certainty' },
    { key: 'self_certainty/min', label: 'Self-certainty (min)', chart: 'self-certainty', description: 'Lowest response self-certainty of the step' },
    { key: 'self_certainty/max', label: 'Self-certainty (max)', chart: 'self-certainty', description: 'Highest response self-certainty of the step' },
    {
      key: 'train/certainty/point_biserial_correlation',
      label: 'Certainty–truth correlation',
      chart: 'correlation',
      groundTruth: true,
      description: 'TTRL urlvr’s name for train/reward_truth_correlation: point-biserial correlation of the self-certainty with being correct (hidden answers)',
    },
  ],
  truthCorrelation: { key: 'train/certainty/point_biserial_correlation', over: 'all' },
  scorer: () => (group) => {
    const certainty = group.samples.map((s) => responseSelfCertainty(s.selfCertainties));
    return { rewards: certainty, labeled: true, details: certainty.map((c) => ({ certainty: c })) };
  },
  // From the details, which a reviewed label's 0/1 rewards leave as they were.
  stepMetrics: (groups) => summary('self_certainty', groups.flatMap((g) => (g.score.details ?? []).map((d) => d.certainty))),
});
