// GAE against hand-computed examples (verl's compute_gae_advantage_return and masked_whiten), and
// the explained variance verl logs as critic/vf_explained_var.
import { describe, expect, it } from 'vitest';
import { explainedVariance, gae, gaeAdvantageReturn, maskedWhiten, outcomeRewards } from '../../../main/engine/rl/gae.ts';

describe('GAE advantages and returns', () => {
  it('matches a hand computation, γ = 0.9, λ = 0.5, with a masked position carried over', () => {
    const rows = [
      { rewards: [0, 0, 1], values: [0.2, 0.4, 0.5] },
      // The middle token is not the policy's (mask 0): its value 9 must not leak into the others.
      { rewards: [0, 0, 0.5], values: [0.1, 9, 0.3], mask: [1, 0, 1] },
    ];
    const raw = gaeAdvantageReturn(rows, 0.9, 0.5);
    // Row 0, backwards: t=2 δ = 1 − 0.5 = 0.5, A = 0.5;
    // t=1 δ = 0.9·0.5 − 0.4 = 0.05, A = 0.05 + 0.45·0.5 = 0.275;
    // t=0 δ = 0.9·0.4 − 0.2 = 0.16, A = 0.16 + 0.45·0.275 = 0.28375.
    expect(raw.advantages[0][0]).toBeCloseTo(0.28375, 12);
    expect(raw.advantages[0][1]).toBeCloseTo(0.275, 12);
    expect(raw.advantages[0][2]).toBeCloseTo(0.5, 12);
    expect(raw.returns[0].map((r) => +r.toFixed(12))).toEqual([0.48375, 0.675, 1]);
    // Row 1: t=2 δ = 0.5 − 0.3 = 0.2, A = 0.2; t=1 is skipped (A carried: 0.2, next value stays 0.3);
    // t=0 δ = 0.9·0.3 − 0.1 = 0.17, A = 0.17 + 0.45·0.2 = 0.26.
    expect(raw.advantages[1][0]).toBeCloseTo(0.26, 12);
    expect(raw.advantages[1][1]).toBeCloseTo(0.2, 12);
    expect(raw.advantages[1][2]).toBeCloseTo(0.2, 12);
    expect(raw.returns[1][0]).toBeCloseTo(0.36, 12);

    // Whitened over the five masked tokens: mean 1.51875 / 5 = 0.30375; squared deviations
    // 0.0004 + 0.0008265625 + 0.0385140625 + 0.0019140625 + 0.0107640625 = 0.05241875, / 4 = 0.0131046875.
    const scale = 1 / Math.sqrt(0.0131046875 + 1e-8);
    const { advantages, returns } = gae(rows, 0.9, 0.5);
    const want = [
      [-0.02 * scale, -0.02875 * scale, 0.19625 * scale],
      [-0.04375 * scale, 0, -0.10375 * scale],
    ];
    advantages.forEach((row, b) => row.forEach((a, t) => expect(a).toBeCloseTo(want[b][t], 10)));
    expect(returns).toEqual(raw.returns);
  });

  it('with γ = λ = 1 and an outcome reward, A_t = R − V_t before whitening and every return is R', () => {
    const rows = [
      { rewards: outcomeRewards(1, 3), values: [0.25, 0.5, 0.75] },
      { rewards: outcomeRewards(0, 2), values: [0.5, 0.1] },
    ];
    expect(rows[0].rewards).toEqual([0, 0, 1]);
    const raw = gaeAdvantageReturn(rows, 1, 1);
    expect(raw.advantages[0].map((a) => +a.toFixed(12))).toEqual([0.75, 0.5, 0.25]);
    expect(raw.advantages[1].map((a) => +a.toFixed(12))).toEqual([-0.5, -0.1]);
    expect(raw.returns.map((r) => r.map((x) => +x.toFixed(12)))).toEqual([
      [1, 1, 1],
      [0, 0],
    ]);
    // λ = 0: one-step TD errors, δ_t = γ·V_{t+1} − V_t (+ R at the end).
    const td = gaeAdvantageReturn(rows, 1, 0);
    expect(td.advantages[0].map((a) => +a.toFixed(12))).toEqual([0.25, 0.25, 0.25]);
  });

  it('whitens to mean 0 and unbiased variance 1; one token is only centred; refuses γ or λ outside [0, 1]', () => {
    const w = maskedWhiten([[1, 2, 3, 4]]);
    const flat = w[0];
    expect(flat.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 12);
    expect(flat.reduce((a, b) => a + b * b, 0) / 3).toBeCloseTo(1, 6);
    expect(maskedWhiten([[5]])).toEqual([[0]]);
    expect(maskedWhiten([[5, 7]], [[1, 0]])).toEqual([[0, 0]]);
    expect(() => gaeAdvantageReturn([{ rewards: [1], values: [0] }], 1.5, 1)).toThrow(/γ and λ in \[0, 1\]/);
    expect(() => gaeAdvantageReturn([{ rewards: [1, 0], values: [0] }], 1, 1)).toThrow(/row 0: 2 rewards, 1 values/);
  });
});

describe('explained variance (critic/vf_explained_var)', () => {
  it('is 1 for a perfect critic, about 0 for one that predicts the mean, negative for a worse one', () => {
    expect(explainedVariance([1, 0, 1, 0], [1, 0, 1, 0])).toBeCloseTo(1, 12);
    // Var(returns) = 1/3; Var(returns − 0.5) = 1/3: 1 − (1/3)/(1/3 + 1e-5).
    expect(explainedVariance([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5])).toBeCloseTo(1 - 1 / 3 / (1 / 3 + 1e-5), 12);
    // Predicting the opposite: Var(returns − values) = Var([1, −1, 1, −1]) = 4/3 → 1 − 4 ≈ −3.
    expect(explainedVariance([1, 0, 1, 0], [0, 1, 0, 1])).toBeCloseTo(1 - 4 / 3 / (1 / 3 + 1e-5), 12);
    expect(explainedVariance([1], [0])).toBeNaN();
  });
});
