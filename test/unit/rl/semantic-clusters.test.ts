// Semantic clusters (EMPO) against hand computations: cluster shares as rewards (equivalence,
// not string match), the confidence band, the semantic entropy metric and the recipe's defaults.
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { scorerFor } from '../../../main/engine/rl/loop.ts';
import { getMethod } from '../../../main/engine/rl/methods/registry.ts';
import { semanticEntropy } from '../../../main/engine/rl/methods/semantic-clusters.ts';
import type { Judge } from '../../../main/engine/rl/judge.ts';
import type { GroupScore, ScorerGroup } from '../../../main/engine/rl/rewards.ts';

const group = (answers: (string | null)[]): ScorerGroup => ({
  prompt: 'Compute 1/2. Answer: ',
  samples: answers.map((answer) => ({ text: answer ?? 'no idea', answer, tokenCount: 1, tokenIds: [1], logprobs: [-1], entropies: [1], selfCertainties: [1] })),
});
const score = async (answers: (string | null)[], extra: Record<string, unknown> = {}): Promise<GroupScore> =>
  scorerFor(parseRunConfig({ method: 'semantic-clusters', ...extra }))(group(answers), {});

describe('semantic clusters (EMPO)', () => {
  // "1/2" ≡ "0.5" ≡ "2/4": a cluster of 3; "3" twice; one without an answer. n = 6.
  const answers = ['1/2', '0.5', '3', null, '2/4', '3'];

  it('rewards each response with its cluster’s share of the group; no answer earns 0', async () => {
    const s = await score(answers);
    [3 / 6, 3 / 6, 2 / 6, 0, 3 / 6, 2 / 6].forEach((x, i) => expect(s.rewards[i]).toBeCloseTo(x, 12));
    expect(s.labeled).toBe(true);
    expect(s.voteCounts).toEqual([
      { answer: '1/2', count: 3 },
      { answer: '3', count: 2 },
    ]);
    expect(s.majorityRatio).toBeCloseTo(0.5, 12);
    // No pseudo-label: nothing for label accuracy to measure.
    expect(s.pseudoLabel).toBeUndefined();
    expect(s.details?.map((d) => d.cluster_share)).toEqual(s.rewards);
    // Semantic entropy over the 5 answered responses: −(3/5 ln 3/5 + 2/5 ln 2/5).
    expect(s.diagnostics?.semantic_entropy).toBeCloseTo(-(0.6 * Math.log(0.6) + 0.4 * Math.log(0.4)), 12);
  });

  it('a tie does not change the top share (the band reads the largest cluster, whatever the vote’s tie rule)', async () => {
    const s = await score(['1', '2', '1', '2']);
    expect(s.majorityRatio).toBe(0.5);
    expect(s.rewards).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('the confidence band skips groups whose top share is outside [low, high]', async () => {
    // Top share 0.5: inside [0.3, 1], outside [0.6, 1] and [0, 0.4].
    expect((await score(answers, { clusterBandLow: 0.3 })).labeled).toBe(true);
    const below = await score(answers, { clusterBandLow: 0.6 });
    expect(below.labeled).toBe(false);
    expect(below.diagnostics?.skipped).toBe(1);
    expect((await score(answers, { clusterBandHigh: 0.4 })).labeled).toBe(false);
    // At the edges: inside.
    expect((await score(answers, { clusterBandLow: 0.5, clusterBandHigh: 0.5 })).labeled).toBe(true);
    expect(() => parseRunConfig({ method: 'semantic-clusters', clusterBandLow: 0.8, clusterBandHigh: 0.3 })).toThrow('clusterBandLow (0.8) cannot exceed clusterBandHigh (0.3)');
  });

  it('a group without answers gets no label', async () => {
    const s = await score([null, null]);
    expect(s.labeled).toBe(false);
    expect(s.rewards).toEqual([0, 0]);
    expect(semanticEntropy([], 0)).toBe(0);
  });

  it('logs semantic/entropy and semantic/skipped_ratio over the step’s groups', async () => {
    const a = await score(answers, { clusterBandLow: 0.6 });
    const b = await score(['7', '7', '7'], { clusterBandLow: 0.6 });
    const m = getMethod('semantic-clusters').stepMetrics!([{ score: a, chosen: [] }, { score: b, chosen: [0, 1, 2] }], { clusterBandLow: 0.6, clusterBandHigh: 1 });
    expect(m['semantic/entropy']).toBeCloseTo(-(0.6 * Math.log(0.6) + 0.4 * Math.log(0.4)) / 2, 12);
    expect(m['semantic/skipped_ratio']).toBe(0.5);
  });

  it('takes EMPO’s defaults: 16 samples, all trained, no KL', () => {
    expect(parseRunConfig({ method: 'semantic-clusters' })).toMatchObject({ votes: 16, trainSamples: 16, klCoef: 0, clusterBandLow: 0, clusterBandHigh: 1 });
  });

  it('clusters free-form answers by the judge’s verdict (clusterEquivalence judge), asking once per answer, and records what decided each', async () => {
    const config = parseRunConfig({ method: 'semantic-clusters', clusterEquivalence: 'judge' });
    const method = getMethod('semantic-clusters');
    // The judge is asked for only where the setting wants it.
    expect(method.services!.judge!(method.settings.parse(config))).toBe(true);
    expect(method.services!.judge!(method.settings.parse(parseRunConfig({ method: 'semantic-clusters' })))).toBe(false);
    // A fake judge: two answers are the same when both name Paris or both name Lyon.
    const asked: string[][] = [];
    const city = (t: string) => (/paris/i.test(t) ? 'paris' : /lyon/i.test(t) ? 'lyon' : t);
    const judge: Judge = {
      generate: async () => [],
      writtenVerdicts: async () => [],
      verdicts: async (prompts) => {
        asked.push([...prompts]);
        return prompts.map((p) => {
          const [, first, second] = /First: (.*)\nSecond: (.*)\n/.exec(p)!;
          const same = city(first) === city(second) ? 0.9 : 0.1;
          return { probabilities: [same, 1 - same], greedy: same > 0.5 ? 'Yes' : 'No' };
        });
      },
    };
    const answers = ['Paris', 'paris, France', 'Lyon', 'Paris', null, 'the city of Lyon'];
    const s = await scorerFor(config)(group(answers), { judge });
    // Paris starts a cluster; "paris, France" is asked about Paris (same); Lyon about Paris (not:
    // a new cluster); the second "Paris" is identical, not asked; no answer, not asked; "the city
    // of Lyon" about both, and joins Lyon. Clusters of 3 and 2 among 6.
    expect(asked.map((a) => a.length)).toEqual([1, 1, 2]);
    [3 / 6, 3 / 6, 2 / 6, 3 / 6, 0, 2 / 6].forEach((x, i) => expect(s.rewards[i]).toBeCloseTo(x, 12));
    expect(s.voteCounts).toEqual([
      { answer: 'Paris', count: 3 },
      { answer: 'Lyon', count: 2 },
    ]);
    expect(s.judge![0]).toBeNull();
    expect(s.judge![1]).toEqual({ prompt: 'Do these two answers say the same thing?\nFirst: paris, France\nSecond: Paris\nAnswer Yes or No.', response: 'Yes (P(same) = 0.900)' });
    expect(s.judge![2]!.response).toBe('No (P(same) = 0.100)');
    expect(s.judge![3]).toBeNull();
    expect(s.judge![5]!.prompt).toContain('Second: Lyon');
    expect(() => parseRunConfig({ method: 'semantic-clusters', clusterEquivalence: 'judge', clusterJudgeTemplate: 'Same? {first}' })).toThrow(/clusterJudgeTemplate must contain \{first\} and \{second\}/);
    await expect(Promise.resolve(scorerFor(config)(group(['a']), {}))).rejects.toThrow(/need the judge service/);
  });
});
