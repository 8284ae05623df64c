// Trajectory likelihood (TTRL's urlvr branch, `probability` estimator): a response earns the
// mean log-probability of its tokens under the policy that sampled it, mean_t log π(y_t), or in
// the sequence variant the probability of the whole response, exp(Σ_t log π(y_t)). The
// log-probs are the ones the generator returned (softmax(logits / T) of the current policy).
import { z } from 'zod';
import { mean } from '../stats.ts';
import { defineMethod } from './types.ts';

/** Mean token log-prob of a response (0 for an empty one). */
export function meanLogprob(logprobs: readonly number[]): number {
  return mean(logprobs);
}

/** Probability of the whole response: exp(Σ log π). */
export function sequenceProbability(logprobs: readonly number[]): number {
  return Math.exp(logprobs.reduce((a, b) => a + b, 0));
}

export const trajectoryLikelihood = defineMethod({
  id: 'trajectory-likelihood',
  label: 'Trajectory likelihood',
  description: 'A response earns its mean token log-probability under the current policy (or, as a variant, its sequence probability).',
  pipeline: 'group-reward',
  settings: z.object({
    likelihoodReward: z
      .enum(['mean-logprob', 'sequence-prob'])
      .default('mean-logprob')
      .describe('Trajectory likelihood: mean token log-prob (mean-logprob), or the probability of the whole response, exp(Σ log-prob) (sequence-prob)'),
  }),
  charts: [{ id: 'likelihood', title: 'Response likelihood', hint: 'Mean over the step’s responses of their mean token log-prob under the policy that sampled them' }],
  metrics: [{ key: 'likelihood/mean_logprob', label: 'Mean token log-prob', chart: 'likelihood', description: 'Mean over the step’s responses of their mean token log-prob (the mean-logprob reward)' }],
  scorer: (s) => (group) => {
    const logprob = group.samples.map((x) => meanLogprob(x.logprobs));
    const rewards = s.likelihoodReward === 'mean-logprob' ? logprob : group.samples.map((x) => sequenceProbability(x.logprobs));
    return { rewards, labeled: true, details: logprob.map((lp, i) => ({ mean_logprob: lp, sequence_prob: sequenceProbability(group.samples[i].logprobs) })) };
  },
  stepMetrics: (groups): Record<string, number> => {
    const details = groups.flatMap((g) => g.score.details ?? []);
    return details.length === 0 ? {} : { 'likelihood/mean_logprob': mean(details.map((d) => d.mean_logprob)) };
  },
});
