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
  /**
   * The largest cluster's representative; null when no sample has a usable answer, or when the
   * largest count is shared by several clusters and `ties` is 'no-label'.
   */
  label: string | null;
  /** Index into clusters of the winner, or -1. */
  labelCluster: number;
  /**
   * The largest cluster's count / n, where n counts every sample (no-answer ones included), tied
   * or not: what share the best-supported answer got; 0 when no sample has a usable answer.
   */
  majorityRatio: number;
  /** Several clusters share the largest count (e.g. 16 different answers from 16 samples). */
  tied: boolean;
  n: number;
  /** Per sample: its cluster index, or -1 (no answer or unparseable). */
  clusterOf: number[];
}

/**
 * What a tie for the most votes gives: 'no-label' (the default) gives no pseudo-label, since
 * picking one of equally supported answers would train on an arbitrary choice (16 samples with 16
 * different answers would otherwise make a 1-in-16 "majority"); 'first' gives the answer seen
 * first, as TTRL's reference code (Counter.most_common) does.
 */
export type VoteTies = 'no-label' | 'first';

export interface VoteOptions {
  format?: AnswerFormat;
  rtol?: number;
  ties?: VoteTies;
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
  // The earliest-created cluster among those with the most votes (the winner under 'first').
  let best = -1;
  clusters.forEach((cl, k) => {
    if (best < 0 || cl.count > clusters[best].count) best = k;
  });
  const n = answers.length;
  const top = best >= 0 ? clusters[best].count : 0;
  const tied = clusters.filter((cl) => cl.count === top).length > 1;
  const winner = tied && (opts.ties ?? 'no-label') === 'no-label' ? -1 : best;
  return {
    clusters: clusters.map(({ representative, normalized, members, count }) => ({ representative, normalized, members, count })),
    label: winner >= 0 ? clusters[winner].representative : null,
    labelCluster: winner,
    majorityRatio: n > 0 ? top / n : 0,
    tied,
    n,
    clusterOf,
  };
}
