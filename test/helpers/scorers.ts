// Scorers for run-loop tests: every group labeled, each sample's reward a function of its index.
import type { GroupScore } from '../../main/engine/rl/rewards.ts';

/** A scorer that labels every group and gives its i-th sample `reward(i)`. */
export function rewardsBy(reward: (i: number) => number) {
  return (g: { samples: readonly unknown[] }): GroupScore => ({
    rewards: g.samples.map((_, i) => reward(i)),
    labeled: true,
    pseudoLabel: 'x',
    voteCounts: [],
    majorityRatio: 0,
    agreesWithLabel: g.samples.map(() => false),
    diagnostics: {},
  });
}
