// Trajectory likelihood against hand computations: mean token log-prob and the sequence
// probability variant, the step metric, and the method as a plug-in of the registry.
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { scorerFor } from '../../../main/engine/rl/loop.ts';
import { getMethod } from '../../../main/engine/rl/methods/registry.ts';
import { meanLogprob, sequenceProbability } from '../../../main/engine/rl/methods/trajectory-likelihood.ts';
import type { ScorerGroup } from '../../../main/engine/rl/rewards.ts';

const group = (logprobs: number[][]): ScorerGroup => ({
  prompt: 'p',
  samples: logprobs.map((lp) => ({ text: 'x', answer: null, tokenCount: lp.length, tokenIds: lp.map(() => 1), logprobs: lp, entropies: lp.map(() => 1), selfCertainties: lp.map(() => 1) })),
});
const g = group([[-0.1, -0.3], [-2, -1, -0.5, -0.5], [-0.2]]);

describe('trajectory likelihood', () => {
  it('mean token log-prob: (−0.1 − 0.3)/2 = −0.2, (−2 − 1 − 0.5 − 0.5)/4 = −1, −0.2', async () => {
    expect(meanLogprob([-0.1, -0.3])).toBeCloseTo(-0.2, 12);
    const s = await scorerFor(parseRunConfig({ method: 'trajectory-likelihood' }))(g, {});
    [-0.2, -1, -0.2].forEach((x, i) => expect(s.rewards[i]).toBeCloseTo(x, 12));
    expect(s.labeled).toBe(true);
  });

  it('sequence probability: exp(−0.4), exp(−4), exp(−0.2)', async () => {
    expect(sequenceProbability([-0.1, -0.3])).toBeCloseTo(Math.exp(-0.4), 12);
    const s = await scorerFor(parseRunConfig({ method: 'trajectory-likelihood', likelihoodReward: 'sequence-prob' }))(g, {});
    [Math.exp(-0.4), Math.exp(-4), Math.exp(-0.2)].forEach((x, i) => expect(s.rewards[i]).toBeCloseTo(x, 12));
    expect(s.details?.[1]).toEqual({ mean_logprob: expect.closeTo(-1, 12), sequence_prob: expect.closeTo(Math.exp(-4), 12) });
  });

  it('logs likelihood/mean_logprob over the step’s responses', async () => {
    const s = await scorerFor(parseRunConfig({ method: 'trajectory-likelihood' }))(g, {});
    const m = getMethod('trajectory-likelihood').stepMetrics!([{ score: s, chosen: [0, 1, 2] }], { likelihoodReward: 'mean-logprob' });
    expect(m['likelihood/mean_logprob']).toBeCloseTo((-0.2 - 1 - 0.2) / 3, 12);
  });

  it('keeps the common defaults and refuses an unknown variant', () => {
    expect(parseRunConfig({ method: 'trajectory-likelihood' })).toMatchObject({ votes: 16, trainSamples: 8, klCoef: 0.001, likelihoodReward: 'mean-logprob' });
    expect(() => parseRunConfig({ method: 'trajectory-likelihood', likelihoodReward: 'max' })).toThrow(/likelihoodReward/);
  });
});
