// Token entropy (RENT, arXiv 2505.22660): a response earns minus the mean entropy of its tokens'
// distributions, so the policy learns to be sure of what it writes. A response with no
// extractable answer takes RENT's `entropy_base` (7.0 nats) instead, the lowest reward. Option:
// only the last K tokens of the response, where the final answer is written.
// Defaults as RENT's: 5 samples per prompt, all trained on, KL 0.001.
import { z } from 'zod';
import type { ScorerSample } from '../rewards.ts';
import { mean } from '../stats.ts';
import { defineMethod } from './types.ts';

/** RENT's entropy_base: the entropy a response without an answer is given. */
export const NO_ANSWER_ENTROPY = 7.0;

/** Mean token entropy of a response (the last `lastTokens` only when > 0); 0 for an empty response. */
export function responseEntropy(entropies: readonly number[], lastTokens: number): number {
  return mean(lastTokens > 0 ? entropies.slice(-lastTokens) : entropies);
}

/** The reward: − mean entropy, or − NO_ANSWER_ENTROPY without an answer. */
export function entropyReward(sample: Pick<ScorerSample, 'answer' | 'entropies'>, lastTokens: number): number {
  return -(sample.answer === null ? NO_ANSWER_ENTROPY : responseEntropy(sample.entropies, lastTokens));
}

export const tokenEntropy = defineMethod({
  id: 'token-entropy',
  label: 'Token entropy',
  description: 'RENT: a response earns minus its mean token entropy; one without an answer gets the lowest reward (entropy 7.0).',
  pipeline: 'group-reward',
  settings: z.object({
    entropyLastTokens: z.number().int().min(0).default(0).describe('Token entropy: average over only the last this many tokens of a response, where the answer is (0 = every token)'),
  }),
  defaults: { votes: 5, trainSamples: 5, klCoef: 0.001 },
  charts: [{ id: 'entropy-valid', title: 'Responses with an answer', unit: true, hint: 'Share of responses with an extractable answer (the rest get entropy 7.0)' }],
  metrics: [
    { key: 'entropy/valid_ratio', label: 'Responses with an answer', chart: 'entropy-valid', unit: true, description: 'Share of the step’s responses with an extractable answer' },
    { key: 'entropy/all_entropy_mean', label: 'Response entropy (mean)', chart: 'entropy', description: 'Mean over the step’s responses of their mean token entropy as the reward reads it (nats), answer or not' },
    {
      key: 'entropy/valid_negative_entropy_reward_correlation',
      label: 'Reward–truth correlation (responses with an answer)',
      chart: 'correlation',
      groundTruth: true,
      description: 'RENT’s name: point-biserial correlation of minus the entropy with being correct, over the responses with an answer (hidden answers; absent when either is constant)',
    },
  ],
  truthCorrelation: { key: 'entropy/valid_negative_entropy_reward_correlation', over: 'with-answer' },
  scorer: (s) => (group) => {
    const entropy = group.samples.map((x) => responseEntropy(x.entropies, s.entropyLastTokens));
    const rewards = group.samples.map((x) => entropyReward(x, s.entropyLastTokens));
    return { rewards, labeled: true, details: entropy.map((e, i) => ({ entropy: e, valid: group.samples[i].answer === null ? 0 : 1 })) };
  },
  stepMetrics: (groups): Record<string, number> => {
    const details = groups.flatMap((g) => g.score.details ?? []);
    if (details.length === 0) return {};
    return { 'entropy/valid_ratio': mean(details.map((d) => d.valid)), 'entropy/all_entropy_mean': mean(details.map((d) => d.entropy)) };
  },
});
