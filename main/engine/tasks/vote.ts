// Majority vote over a group's extracted answers (TTRL/SRT pseudo-labels).
// Answers are clustered by equivalence, not string match; unparseable answers and samples with
// no answer count in n (the ratio's denominator) but never form or join a cluster.
import type { AnswerFormat } from './extract.ts';
import { normalizeAnswer, parsedEqual, type NormalizedAnswer } from './equivalence.ts';

export interface VoteCluster {
  /** The first member's extracted answer, as written. */
  representative: string;
  normalized: string;
  /** Sample indices, ascending. */
  members: number[];
  count: number;
}

export interface VoteResult {
  /** Clusters in order of first appearance. */
  clusters: VoteCluster[];
  /** The largest cluster's representative; null when no sample has a usable answer. */
  label: string | null;
  /** Index into clusters of the winner, or -1. */
  labelCluster: number;
  /** Winner's count / n, where n counts every sample (no-answer ones included); 0 with no label. */
  majorityRatio: number;
  n: number;
  /** Per sample: its cluster index, or -1 (no answer or unparseable). */
  clusterOf: number[];
}

export interface VoteOptions {
  format?: AnswerFormat;
  rtol?: number;
}

export function majorityVote(answers: readonly (string | null)[], opts: VoteOptions = {}): VoteResult {
  const clusters: (VoteCluster & { norm: NormalizedAnswer })[] = [];
  const clusterOf: number[] = [];
  answers.forEach((a, i) => {
    if (a === null || a.trim() === '') {
      clusterOf.push(-1);
      return;
    }
    const norm = normalizeAnswer(a, opts.format);
    if (!norm.parseable) {
      clusterOf.push(-1);
      return;
    }
    // Compare with each cluster's representative (its first member): order-stable and O(n·k).
    const c = clusters.findIndex((cl) => parsedEqual(cl.norm.parsed, norm.parsed, opts.rtol ?? 1e-6));
    if (c >= 0) {
      clusters[c].members.push(i);
      clusters[c].count++;
      clusterOf.push(c);
    } else {
      clusters.push({ representative: a.trim(), normalized: norm.normalized, members: [i], count: 1, norm });
      clusterOf.push(clusters.length - 1);
    }
  });
  // Ties go to the cluster whose first member came first, i.e. the earliest-created cluster.
  let best = -1;
  clusters.forEach((cl, k) => {
    if (best < 0 || cl.count > clusters[best].count) best = k;
  });
  const n = answers.length;
  return {
    clusters: clusters.map(({ representative, normalized, members, count }) => ({ representative, normalized, members, count })),
    label: best >= 0 ? clusters[best].representative : null,
    labelCluster: best,
    majorityRatio: best >= 0 && n > 0 ? clusters[best].count / n : 0,
    n,
    clusterOf,
  };
}
