// Semantic clusters (EMPO, arXiv 2504.05812): a group's answers are clustered by equivalence and
// a response earns the share of the group in its cluster, r_i = |cluster(i)| / n; a response
// without a usable answer earns 0. Minimising the semantic entropy this way needs no label. The
// optional confidence band skips (no label, no update) groups whose largest cluster's share is
// outside [low, high] (EMPO: [0.3, 1.0]), too uncertain to learn from, or already certain.
// Answers are clustered by the math equivalence the vote uses, or, for free-form answers
// (clusterEquivalence 'judge'), by the frozen judge's verdict on whether two answers say the same
// thing (EMPO's verifier Yes/No): each answer joins the cluster whose representative the judge
// most likely calls the same (above 1/2), else starts one; identical text joins without asking.
// Defaults as EMPO's (verl): 16 samples per prompt, all trained on, no KL.
import { z } from 'zod';
import { majorityVote } from '../../tasks/answers.ts';
import type { Judge } from '../judge.ts';
import type { JudgeExchange } from '../rewards.ts';
import { mean } from '../stats.ts';
import { defineMethod } from './types.ts';

/** Semantic entropy −Σ p_c log p_c of clusters with `counts` members among `answered` responses (0 when none). */
export function semanticEntropy(counts: readonly number[], answered: number): number {
  if (answered === 0) return 0;
  return -counts.reduce((h, c) => h + (c / answered) * Math.log(c / answered), 0);
}

export interface JudgedClusters {
  /** Per answer, its cluster (−1 without an answer). */
  clusterOf: number[];
  clusters: { representative: string; count: number }[];
  /** Per answer, the comparison that placed it (its best match), or null where none was asked. */
  exchanges: (JudgeExchange | null)[];
}

/**
 * Clusters free-form answers by the judge's equivalence verdict, in order: an answer identical to
 * a representative joins it; else the judge compares it with every representative in one batch
 * and it joins the most likely same one when P(same) > 1/2, else it starts a cluster.
 */
export async function judgeClusters(answers: readonly (string | null)[], judge: Judge, template: string, verdicts: readonly (readonly string[])[]): Promise<JudgedClusters> {
  const clusters: { representative: string; count: number }[] = [];
  const clusterOf: number[] = [];
  const exchanges: (JudgeExchange | null)[] = [];
  for (const answer of answers) {
    if (answer === null) {
      clusterOf.push(-1);
      exchanges.push(null);
      continue;
    }
    let joined = clusters.findIndex((c) => c.representative.trim() === answer.trim());
    let exchange: JudgeExchange | null = null;
    if (joined < 0 && clusters.length > 0) {
      const prompts = clusters.map((c) => template.replace(/\{(first|second)\}/g, (_, which: string) => (which === 'first' ? answer : c.representative)));
      const said = await judge.verdicts(prompts, verdicts);
      let best = 0;
      said.forEach((v, i) => {
        if (v.probabilities[0] > said[best].probabilities[0]) best = i;
      });
      exchange = { prompt: prompts[best], response: `${said[best].greedy} (P(same) = ${said[best].probabilities[0].toFixed(3)})` };
      if (said[best].probabilities[0] > 0.5) joined = best;
    }
    if (joined < 0) {
      clusters.push({ representative: answer, count: 0 });
      joined = clusters.length - 1;
    }
    clusters[joined].count++;
    clusterOf.push(joined);
    exchanges.push(exchange);
  }
  return { clusterOf, clusters, exchanges };
}

export const DEFAULT_CLUSTER_TEMPLATE = 'Do these two answers say the same thing?\nFirst: {first}\nSecond: {second}\nAnswer Yes or No.';

export const semanticClusters = defineMethod({
  id: 'semantic-clusters',
  label: 'Semantic clusters',
  description: 'EMPO: a response earns the share of the group whose answer is equivalent to its own; no answer earns 0.',
  pipeline: 'group-reward',
  settings: z.object({
    clusterBandLow: z.number().min(0).max(1).default(0).describe('Semantic clusters: skip groups whose largest cluster holds less than this share (EMPO: 0.3; 0 = off)'),
    clusterBandHigh: z.number().min(0).max(1).default(1).describe('Semantic clusters: skip groups whose largest cluster holds more than this share (1 = off)'),
    clusterEquivalence: z.enum(['math', 'judge']).default('math').describe('Semantic clusters: answers are the same by math equivalence, or by the frozen judge’s verdict (free-form answers)'),
    clusterJudgeTemplate: z.string().min(1).max(8000).default(DEFAULT_CLUSTER_TEMPLATE).describe('Semantic clusters, judge equivalence: the judge’s question; {first} and {second} are the two answers'),
    clusterJudgeYes: z.array(z.string().min(1).max(50)).min(1).max(16).default(['Yes', 'yes']).describe('Semantic clusters, judge equivalence: words that say the answers are the same'),
    clusterJudgeNo: z.array(z.string().min(1).max(50)).min(1).max(16).default(['No', 'no']).describe('Semantic clusters, judge equivalence: words that say they differ'),
  }),
  services: { judge: (s) => s.clusterEquivalence === 'judge' },
  defaults: { votes: 16, trainSamples: 16, klCoef: 0 },
  charts: [{ id: 'semantic', title: 'Semantic entropy', hint: 'Entropy of the answer clusters per group (nats), and the share of groups skipped by the confidence band' }],
  metrics: [
    { key: 'semantic/entropy', label: 'Semantic entropy', chart: 'semantic', description: 'Mean over groups of the entropy of their answer clusters (nats; responses without an answer left out)' },
    { key: 'semantic/skipped_ratio', label: 'Groups skipped by the band', chart: 'semantic', unit: true, description: 'Share of groups whose largest cluster’s share was outside the confidence band (no update)' },
  ],
  check: (s) => [
    ...(s.clusterBandLow > s.clusterBandHigh ? [{ setting: 'clusterBandLow', message: `clusterBandLow (${s.clusterBandLow}) cannot exceed clusterBandHigh (${s.clusterBandHigh})` }] : []),
    ...(s.clusterEquivalence === 'judge' && !(s.clusterJudgeTemplate.includes('{first}') && s.clusterJudgeTemplate.includes('{second}'))
      ? [{ setting: 'clusterJudgeTemplate', message: 'clusterJudgeTemplate must contain {first} and {second}: the judge has to see both answers' }]
      : []),
  ],
  // The judge compares two answers of up to maxNewTokens tokens each and writes its verdict.
  checkLaunch: (s, launch) => {
    if (s.clusterEquivalence !== 'judge') return [];
    const around = launch.encode(s.clusterJudgeTemplate.replace(/\{(first|second)\}/g, '')).length;
    const need = around + 2 * launch.maxNewTokens + 1;
    if (need <= launch.contextLength) return [];
    return [
      {
        setting: 'clusterJudgeTemplate',
        message: `the judge's question (clusterJudgeTemplate) takes ${around} tokens around two answers of up to ${launch.maxNewTokens} tokens each (maxNewTokens), and the judge writes 1: ${need} tokens, more than the ${launch.contextLength} positions ${launch.model} reads. Shorten clusterJudgeTemplate or lower maxNewTokens`,
      },
    ];
  },
  scorer: (s, run) => async (group, context) => {
    const n = group.samples.length;
    const answers = group.samples.map((x) => x.answer);
    let vote: { clusterOf: number[]; clusters: { representative: string; count: number }[] };
    let exchanges: (JudgeExchange | null)[] | undefined;
    if (s.clusterEquivalence === 'judge') {
      if (!context.judge) throw new Error('semantic clusters with clusterEquivalence judge need the judge service in the scorer context (the run loop gives it)');
      const judged = await judgeClusters(answers, context.judge, s.clusterJudgeTemplate, [s.clusterJudgeYes, s.clusterJudgeNo]);
      vote = judged;
      exchanges = judged.exchanges;
    } else {
      vote = majorityVote(answers, { format: run.answerFormat });
    }
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
      ...(exchanges && { judge: exchanges }),
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
