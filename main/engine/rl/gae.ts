// Generalized advantage estimation (Schulman et al. 2016) for the actor–critic: token-level
// advantages and returns from token rewards and the critic's values, with verl's semantics
// (`compute_gae_advantage_return` and `masked_whiten` in volcengine/verl, trainer/ppo/core_algos.py
// and utils/torch_functional.py):
//   δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γ·λ·A_{t+1},   returns_t = A_t + V_t,
// going backwards over a sequence, with V and A after its last token 0. A position whose mask
// is 0 (a token the policy did not write, e.g. an observation between turns) is skipped: it
// neither ends the recursion nor contributes its value. The advantages are then whitened over
// every masked token of the batch (mean 0, variance 1, unbiased variance); the returns are not.
// A label-free method's reward goes on the last token of its response (`outcomeRewards`).

/** One sequence's response positions: reward, value and mask per token (equal lengths). */
export interface GaeRow {
  rewards: readonly number[];
  values: readonly number[];
  /** 1 where the token counts; default all 1. */
  mask?: readonly number[];
}

export interface GaeResult {
  /** Whitened advantages per token (0 where masked out). */
  advantages: number[][];
  /** A_t + V_t before whitening: the critic's regression targets. */
  returns: number[][];
}

/** verl's ε in masked_whiten's rsqrt(var + ε). */
export const WHITEN_EPSILON = 1e-8;

/** Token rewards of an outcome reward: `reward` on the last of `length` tokens, 0 elsewhere. */
export function outcomeRewards(reward: number, length: number): number[] {
  const r = new Array<number>(length).fill(0);
  if (length > 0) r[length - 1] = reward;
  return r;
}

/** The raw (unwhitened) GAE advantages and the returns of each row. */
export function gaeAdvantageReturn(rows: readonly GaeRow[], gamma: number, lambda: number): { advantages: number[][]; returns: number[][] } {
  if (!(gamma >= 0 && gamma <= 1) || !(lambda >= 0 && lambda <= 1)) throw new Error(`GAE needs γ and λ in [0, 1], got γ=${gamma}, λ=${lambda}`);
  const advantages: number[][] = [];
  const returns: number[][] = [];
  rows.forEach((row, b) => {
    const n = row.rewards.length;
    if (row.values.length !== n || (row.mask && row.mask.length !== n)) {
      throw new Error(`GAE row ${b}: ${n} rewards, ${row.values.length} values${row.mask ? `, ${row.mask.length} mask entries` : ''}`);
    }
    const adv = new Array<number>(n).fill(0);
    let nextValue = 0;
    let lastGae = 0;
    for (let t = n - 1; t >= 0; t--) {
      const m = row.mask ? row.mask[t] : 1;
      const delta = row.rewards[t] + gamma * nextValue - row.values[t];
      const gae = delta + gamma * lambda * lastGae;
      nextValue = row.values[t] * m + (1 - m) * nextValue;
      lastGae = gae * m + (1 - m) * lastGae;
      adv[t] = lastGae;
    }
    advantages.push(adv);
    returns.push(adv.map((a, t) => a + row.values[t]));
  });
  return { advantages, returns };
}

/**
 * (x − mean) / sqrt(var + ε) over the masked entries of every row, the variance unbiased
 * (n − 1), as verl's masked_whiten. With fewer than two entries there is no spread to divide
 * by: the entries are only centred (to 0). Masked-out entries become 0.
 */
export function maskedWhiten(x: readonly (readonly number[])[], mask?: readonly (readonly number[])[]): number[][] {
  let n = 0;
  let sum = 0;
  x.forEach((row, b) => row.forEach((v, t) => ((n += mask ? mask[b][t] : 1), (sum += v * (mask ? mask[b][t] : 1)))));
  if (n === 0) return x.map((row) => row.map(() => 0));
  const mean = sum / n;
  let sq = 0;
  x.forEach((row, b) => row.forEach((v, t) => (sq += (v - mean) ** 2 * (mask ? mask[b][t] : 1))));
  if (n < 2) return x.map((row, b) => row.map((v, t) => ((mask ? mask[b][t] : 1) ? v - mean : 0)));
  const variance = (sq / n) * (n / (n - 1));
  const scale = 1 / Math.sqrt(variance + WHITEN_EPSILON);
  return x.map((row, b) => row.map((v, t) => ((mask ? mask[b][t] : 1) ? (v - mean) * scale : 0)));
}

/** GAE advantages (whitened over the batch) and returns, as verl's compute_gae_advantage_return. */
export function gae(rows: readonly GaeRow[], gamma: number, lambda: number): GaeResult {
  const raw = gaeAdvantageReturn(rows, gamma, lambda);
  const masks = rows.every((r) => r.mask === undefined) ? undefined : rows.map((r) => r.mask ?? r.rewards.map(() => 1));
  return { advantages: maskedWhiten(raw.advantages, masks), returns: raw.returns };
}

/**
 * verl's critic/vf_explained_var: 1 − Var(returns − values) / (Var(returns) + 1e-5), both
 * variances unbiased, over the tokens that count. 1: the critic predicts the returns; 0: no
 * better than their mean; below 0: worse. NaN with fewer than two tokens.
 */
export function explainedVariance(returns: readonly number[], values: readonly number[]): number {
  if (returns.length !== values.length) throw new Error(`explained variance: ${returns.length} returns, ${values.length} values`);
  const n = returns.length;
  if (n < 2) return Number.NaN;
  const variance = (xs: readonly number[]) => {
    const m = xs.reduce((a, b) => a + b, 0) / n;
    return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1);
  };
  return 1 - variance(returns.map((r, i) => r - values[i])) / (variance(returns) + 1e-5);
}
