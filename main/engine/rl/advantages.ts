// Group-relative advantage estimators: one advantage per sample, shared by all its tokens.
// Every estimator gives 0 to a group whose rewards are all equal: it says nothing about which
// response is better, and ε-division or leave-one-out would otherwise only add noise.

export type AdvantageEstimator = 'grpo' | 'drgrpo' | 'rloo';

export const ADVANTAGE_ESTIMATORS: Readonly<Record<AdvantageEstimator, string>> = {
  grpo: 'GRPO: (r − mean) / (std + ε), std with n − 1 as in verl',
  drgrpo: 'Dr. GRPO: r − mean (no std normalisation, which biases towards easy and hard prompts)',
  rloo: 'RLOO: r − mean of the other samples’ rewards',
};

/** Default ε of GRPO's std normalisation (verl's epsilon). */
export const GRPO_EPSILON = 1e-6;

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

export function groupAdvantages(rewards: readonly number[], estimator: AdvantageEstimator, epsilon = GRPO_EPSILON): number[] {
  const n = rewards.length;
  if (rewards.some((r) => !Number.isFinite(r))) throw new Error(`rewards must be finite numbers, got [${rewards.join(', ')}]`);
  // One sample, or all equal: no relative signal.
  if (n < 2 || rewards.every((r) => r === rewards[0])) return new Array<number>(n).fill(0);
  const m = mean(rewards);
  switch (estimator) {
    case 'grpo': {
      // Unbiased std (torch.std's default), which is what verl's GRPO divides by.
      const variance = rewards.reduce((s, r) => s + (r - m) ** 2, 0) / (n - 1);
      const std = Math.sqrt(variance);
      return rewards.map((r) => (r - m) / (std + epsilon));
    }
    case 'drgrpo':
      return rewards.map((r) => r - m);
    case 'rloo': {
      const total = m * n;
      return rewards.map((r) => r - (total - r) / (n - 1));
    }
  }
}

/**
 * A run's estimator where only the group-relative ones apply: checkRunConfig refuses `gae` (the
 * learned critic of the RL loop) for other pipelines, so this only guards against a bypassed check.
 */
export function groupEstimator(choice: AdvantageEstimator | 'gae'): AdvantageEstimator {
  if (choice === 'gae') throw new Error('advantage gae needs the learned critic of the RL loop; this pipeline takes grpo, drgrpo or rloo');
  return choice;
}

/** What `roleTokenAdvantages` reads of a group's roles (rewards.ts `ResponseRoles`). */
export interface RoleRewards {
  weights: readonly number[];
  /** Per role, per sample: its reward, or null where the sample has none for it. */
  rewards: readonly (readonly (number | null)[])[];
  /** Per sample, per token: its role. */
  tokenRoles: readonly (readonly number[])[];
}

/**
 * Per-token advantages from per-role rewards: for each role, the estimator over the chosen
 * samples that have a reward for it, times the role's weight, on the tokens of that role (0 on a
 * token whose sample has no reward for its role). One array per chosen sample, in `chosen`'s order.
 */
export function roleTokenAdvantages(roles: RoleRewards, chosen: readonly number[], estimator: AdvantageEstimator, epsilon = GRPO_EPSILON): number[][] {
  const perRole = roles.rewards.map((rewards, r) => {
    const having = chosen.filter((i) => rewards[i] !== null);
    const adv = groupAdvantages(
      having.map((i) => rewards[i]!),
      estimator,
      epsilon,
    );
    return new Map(having.map((i, j) => [i, roles.weights[r] * adv[j]]));
  });
  return chosen.map((i) =>
    roles.tokenRoles[i].map((r) => {
      if (!(r >= 0 && r < perRole.length)) throw new Error(`sample ${i} names role ${r}; the group has ${perRole.length}`);
      return perRole[r].get(i) ?? 0;
    }),
  );
}
