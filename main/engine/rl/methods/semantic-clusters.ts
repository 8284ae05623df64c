// Semantic clusters (EMPO, arXiv 2504.05812): a group's answers are clustered by equivalence and
// a response earns the share of the group in its cluster, r_i = |cluster(i)| / n; a response
// without a usable answer earns 0. Minimising the semantic entropy this way needs no label. The
// optional confidence band skips (no label, no update) groups whose largest cluster's share is
// outside [low, high] (EMPO: [0.3, 1.0]), too uncertain to learn from, or already certain.
// Answers are clustered by the math equivalence the vote uses; free-form answers would need a
// judge's equivalence verdict, which this method does not ask for yet.
// Defaults as EMPO's (verl): 16 samples per prompt, all trained on, no KL.
import { z } from 'zod';
import { majorityVote } from '../../tasks/answers.ts';
import { mean } from '../stats.ts';
import { defineMethod } from './types.ts';

/** Semantic entropy −Σ p_c log p_c of clusters with `counts` members among `answered` responses (0 when none). */
export function semanticEntropy(counts: readonly number[], answered: number): number {
  if (answered === 0) return 0;
  return -counts.reduce((h, c) => h + (c / answered) * Math.log(c / answered), 0);
}

export const semanticClusters = defineMethod({
  id: 'semantic-clusters',
  label: 'Semantic clusters',
  description: 'EMPO: a response earns the share of the group whose answer is equivalent to its own; no answer earns 0.',
  pipeline: 'group-reward',
  settings: z.object({
    clusterBandLow: z.number().min(0).max(1).default(0).describe('Semantic clusters: skip groups whose largest cluster holds less than this share (EMPO: 0.3; 0 = off)'),
    clusterBandHigh: z.number().min(0).max(1).default(1).describe('Semantic clusters: skip groups whose largest cluster holds more than this share (1 = off)'),
  }),
  defaults: { votes: 16, trainSamples: 16, klCoef: 0 },
  charts: [{ id: 'semantic', title: 'Semantic entropy', hint: 'Entropy of the answer clusters per group (nats), and the share of groups skipped by the confidence band' }],
  metrics: [
    { key: 'semantic/entropy', label: 'Semantic entropy', chart: 'semantic', description: 'Mean over groups of the entropy of their answer clusters (nats; responses without an answer left out)' },
    { key: 'semantic/skipped_ratio', label: 'Groups skipped by the band', chart: 'semantic', unit: true, description: 'Share of groups whose largest cluster’s share was outside the confidence band (no update)' },
  ],
  check: (s) => (s.clusterBandLow > s.clusterBandHigh ? [{ setting: 'clusterBandLow', message: `clusterBandLow (${s.clusterBandLow}) cannot exceed clusterBandHigh (${s.clusterBandHigh})` }] : []),
  scorer: (s, run) => (group) => {
    const n = group.samples.length;
    const vote = majorityVote(
      group.samples.map((x) => x.answer),
      { format: run.answerFormat },
    );
    const share = vote.clusterOf.map((c) => (c >= 0 ? vote.clusters[c].count / n : 0));
    // The largest cluster's share, computed here: a vote's ratio may follow its tie rule.
    const top = vote.clusters.reduce((m, c) => Math.max(m, c.count), 0) / Math.max(1, n);
    const inBand = top >= s.clusterBandLow && top <= s.clusterBandHigh;
    const answered = vote.clusters.reduce((a, c) => a + c.count, 0);
    return {
      rewards: share,
      labeled: vote.clusters.length > 0 && inBand,
      voteCounts: vote.clusters.map((c) => ({ answer: c.representative, count: c.count })),
      majorityRatio: top,
      details: share.map((x) => ({ cluster_share: x })),
      diagnostics: {
        semantic_entropy: semanticEntropy(
          vote.clusters.map((c) => c.count),
          answered,
        ),
        skipped: inBand ? 0 : 1,
      },
    };
  },
  stepMetrics: (groups): Record<string, number> => {
    const d = groups.map((g) => g.score.diagnostics ?? {}).filter((x) => 'semantic_entropy' in x);
    if (d.length === 0) return {};
    return { 'semantic/entropy': mean(d.map((x) => x.semantic_entropy)), 'semantic/skipped_ratio': mean(d.map((x) => x.skipped)) };
  },
});
