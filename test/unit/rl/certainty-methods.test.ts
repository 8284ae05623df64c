// Self-certainty (Intuitor) and token entropy (RENT) against hand computations: each response's
// reward, the group's GRPO advantages, the step metrics under their reference names, the
// recipes' defaults, and the proxy–truth correlation every method logs.
import { describe, expect, it } from 'vitest';
import { groupAdvantages } from '../../../main/engine/rl/advantages.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { scorerFor } from '../../../main/engine/rl/loop.ts';
import { pointBiserial } from '../../../main/engine/rl/metrics.ts';
import { getMethod } from '../../../main/engine/rl/methods/registry.ts';
import { responseSelfCertainty } from '../../../main/engine/rl/methods/self-certainty.ts';
import { NO_ANSWER_ENTROPY, entropyReward, responseEntropy } from '../../../main/engine/rl/methods/token-entropy.ts';
import type { GroupScore, ScorerGroup, ScorerSample } from '../../../main/engine/rl/rewards.ts';

const sample = (answer: string | null, entropies: number[], selfCertainties: number[]): ScorerSample => ({
  text: answer ?? 'no idea',
  answer,
  tokenCount: entropies.length,
  tokenIds: entropies.map((_, i) => i + 1),
  logprobs: entropies.map(() => -0.5),
  entropies,
  selfCertainties,
});
const group = (samples: ScorerSample[]): ScorerGroup => ({ prompt: 'Compute 2+2. Answer: ', samples });
const score = async (method: string, g: ScorerGroup, extra: Record<string, unknown> = {}): Promise<GroupScore> => scorerFor(parseRunConfig({ method, ...extra }))(g, {});

describe('self-certainty (Intuitor)', () => {
  // Per-token self-certainties as the generator reports them (KL(U ‖ p) per token).
  const g = group([sample('4', [1, 1, 1], [0.5, 1.5, 1.0]), sample('5', [1, 1], [2.0, 3.0]), sample(null, [1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4]), sample('4', [], [])]);

  it('rewards each response with its mean token self-certainty, answer or not', async () => {
    expect(responseSelfCertainty([0.5, 1.5, 1.0])).toBe(1);
    const s = await score('self-certainty', g);
    // (0.5+1.5+1)/3 = 1; (2+3)/2 = 2.5; (0.1+0.2+0.3+0.4)/4 = 0.25; an empty response 0.
    [1, 2.5, 0.25, 0].forEach((x, i) => expect(s.rewards[i]).toBeCloseTo(x, 12));
    expect(s.labeled).toBe(true);
    expect(s.pseudoLabel).toBeUndefined();
    expect(s.details?.map((d) => d.certainty)).toEqual(s.rewards);
  });

  it('GRPO advantages of those rewards, by hand', async () => {
    const s = await score('self-certainty', g);
    // mean 3.75/4 = 0.9375; unbiased variance = Σ(r − m)² / 3
    const m = 0.9375;
    const sd = Math.sqrt(((1 - m) ** 2 + (2.5 - m) ** 2 + (0.25 - m) ** 2 + (0 - m) ** 2) / 3);
    const a = groupAdvantages(s.rewards, 'grpo');
    [1, 2.5, 0.25, 0].forEach((r, i) => expect(a[i]).toBeCloseTo((r - m) / (sd + 1e-6), 10));
  });

  it('logs self_certainty/{mean,std,min,max} over the step’s responses', async () => {
    const s1 = await score('self-certainty', g);
    const s2 = await score('self-certainty', group([sample('4', [1], [4.0])]));
    const metrics = getMethod('self-certainty').stepMetrics!([{ score: s1, chosen: [0, 1] }, { score: s2, chosen: [] }], {});
    // Responses 1, 2.5, 0.25, 0, 4: mean 7.75/5 = 1.55; unbiased std over 5.
    const xs = [1, 2.5, 0.25, 0, 4];
    const sd = Math.sqrt(xs.reduce((t, x) => t + (x - 1.55) ** 2, 0) / 4);
    expect(metrics['self_certainty/mean']).toBeCloseTo(1.55, 12);
    expect(metrics['self_certainty/std']).toBeCloseTo(sd, 12);
    expect(metrics['self_certainty/min']).toBe(0);
    expect(metrics['self_certainty/max']).toBe(4);
  });

  it('takes Intuitor’s defaults: 8 samples, all trained, KL 0.005', () => {
    expect(parseRunConfig({ method: 'self-certainty' })).toMatchObject({ votes: 8, trainSamples: 8, klCoef: 0.005 });
  });
});

describe('token entropy (RENT)', () => {
  const g = group([sample('4', [0.2, 0.4, 0.9], [1, 1, 1]), sample('5', [1.0, 0.1], [1, 1]), sample(null, [0.05, 0.05], [1, 1])]);

  it('rewards − mean token entropy; no answer gives entropy_base 7.0', async () => {
    expect(responseEntropy([0.2, 0.4, 0.9], 0)).toBeCloseTo(0.5, 12);
    expect(NO_ANSWER_ENTROPY).toBe(7);
    const s = await score('token-entropy', g);
    // −(0.2+0.4+0.9)/3 = −0.5; −(1.0+0.1)/2 = −0.55; no answer: −7 (however sure it was).
    [-0.5, -0.55, -7].forEach((x, i) => expect(s.rewards[i]).toBeCloseTo(x, 12));
    expect(s.details).toEqual([
      { entropy: expect.closeTo(0.5, 12), valid: 1 },
      { entropy: expect.closeTo(0.55, 12), valid: 1 },
      { entropy: expect.closeTo(0.05, 12), valid: 0 },
    ]);
  });

  it('only the last K tokens when entropyLastTokens = K', async () => {
    expect(responseEntropy([0.2, 0.4, 0.9], 2)).toBeCloseTo(0.65, 12);
    expect(entropyReward({ answer: '4', entropies: [0.2, 0.4, 0.9] }, 1)).toBeCloseTo(-0.9, 12);
    // K longer than the response: every token.
    expect(responseEntropy([0.2, 0.4], 5)).toBeCloseTo(0.3, 12);
    const s = await score('token-entropy', g, { entropyLastTokens: 1 });
    [-0.9, -0.1, -7].forEach((x, i) => expect(s.rewards[i]).toBeCloseTo(x, 12));
  });

  it('logs entropy/valid_ratio and entropy/all_entropy_mean', async () => {
    const s = await score('token-entropy', g);
    const metrics = getMethod('token-entropy').stepMetrics!([{ score: s, chosen: [0, 1, 2] }], { entropyLastTokens: 0 });
    expect(metrics['entropy/valid_ratio']).toBeCloseTo(2 / 3, 12);
    expect(metrics['entropy/all_entropy_mean']).toBeCloseTo((0.5 + 0.55 + 0.05) / 3, 12);
  });

  it('takes RENT’s defaults: 5 samples, all trained, KL 0.001; K is validated', () => {
    expect(parseRunConfig({ method: 'token-entropy' })).toMatchObject({ votes: 5, trainSamples: 5, klCoef: 0.001, entropyLastTokens: 0 });
    expect(() => parseRunConfig({ method: 'token-entropy', entropyLastTokens: -1 })).toThrow(/entropyLastTokens/);
  });
});

describe('proxy–truth correlation', () => {
  it('is the point-biserial correlation of reward and correctness, by hand', () => {
    // x = [1, 0, 0, 1], y = [1, 0, 1, 1]: Σdxdy = 0.5, Σdx² = 1, Σdy² = 0.75.
    expect(pointBiserial([1, 0, 0, 1], [true, false, true, true])).toBeCloseTo(0.5 / Math.sqrt(0.75), 12);
    expect(pointBiserial([2, 2, 2], [true, false, true])).toBeNull();
    expect(pointBiserial([1, 2, 3], [true, true, true])).toBeNull();
    expect(pointBiserial([], [])).toBeNull();
  });
});
