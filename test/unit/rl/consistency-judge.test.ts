// Consistency prior × bounded self-judge against hand computations: the factor g(s) at its
// edges and middle, the prior on both sides of its 0.85 threshold, and a whole group through the
// scorer with a fake judge (what it was asked, the rewards, the details, the advantages), in
// verdict and in score mode.
import { describe, expect, it } from 'vitest';
import { groupAdvantages } from '../../../main/engine/rl/advantages.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { type Judge, type JudgeGenerateOptions, type WrittenVerdict, lastVerdictWord } from '../../../main/engine/rl/judge.ts';
import { scorerFor } from '../../../main/engine/rl/loop.ts';
import { DEFAULT_JUDGE_TEMPLATE, consistencyPrior, fillJudgeTemplate, judgeFactor, parseJudgeScore } from '../../../main/engine/rl/methods/consistency-judge.ts';
import { getMethod } from '../../../main/engine/rl/methods/registry.ts';
import type { ScorerGroup } from '../../../main/engine/rl/rewards.ts';
import { majorityVote } from '../../../main/engine/tasks/answers.ts';

const group = (answers: (string | null)[]): ScorerGroup => ({
  prompt: 'Compute 2+3. Answer: ',
  samples: answers.map((answer, i) => ({ text: `${answer ?? 'no idea'} (#${i})`, answer, tokenCount: 1, tokenIds: [1], logprobs: [-1], entropies: [1], selfCertainties: [1] })),
});

/** A judge that answers from a script and remembers what it was asked. */
function fakeJudge(script: { verdicts?: number[]; texts?: string[]; written?: WrittenVerdict[] }) {
  const asked: { kind: 'verdicts' | 'generate' | 'written'; prompts: readonly string[]; classes?: readonly (readonly string[])[]; options?: JudgeGenerateOptions }[] = [];
  const judge: Judge = {
    verdicts: async (prompts, classes) => {
      asked.push({ kind: 'verdicts', prompts, classes });
      return prompts.map((_, i) => ({ probabilities: [script.verdicts![i], 1 - script.verdicts![i]], greedy: script.verdicts![i] >= 0.5 ? 'Yes' : 'No' }));
    },
    generate: async (prompts, options) => {
      asked.push({ kind: 'generate', prompts, options });
      return script.texts!;
    },
    writtenVerdicts: async (prompts, classes, options) => {
      asked.push({ kind: 'written', prompts, classes, options });
      return script.written!;
    },
  };
  return { judge, asked };
}

describe('the judge factor g(s)', () => {
  it('matches the formula number by number at its edges and in the middle', () => {
    // g(s) = clip(1 + 0.2σ((s − 0.95)/0.02) − 0.2σ((0.40 − s)/0.05), 0.8, 1.2), by hand:
    // s = 0:    σ(−47.5) ≈ 2.3e−21, σ(8) = 0.99966465 → 1 − 0.19993293       = 0.80006707
    // s = 0.4:  σ(−27.5) ≈ 1.1e−12, σ(0) = 0.5        → 1 − 0.1               = 0.90000000
    // s = 0.7:  σ(−12.5) = 3.7e−6,  σ(−6) = 0.00247262 → 1 + 7.5e−7 − 4.945e−4 = 0.99950622
    // s = 0.95: σ(0) = 0.5,         σ(−11) = 1.67e−5   → 1 + 0.1 − 3.3e−6     = 1.09999666
    // s = 1:    σ(2.5) = 0.92414182, σ(−12) = 6.1e−6   → 1 + 0.18482836 − 1.2e−6 = 1.18482714
    const cases: [number, number][] = [
      [0, 0.80006707],
      [0.4, 0.9],
      [0.7, 0.99950622],
      [0.95, 1.09999666],
      [1, 1.18482714],
    ];
    for (const [s, g] of cases) expect(judgeFactor(s), `g(${s})`).toBeCloseTo(g, 8);
    // Outside [0, 1] it saturates at the clip bounds; the judge only nudges.
    expect(judgeFactor(-1)).toBeCloseTo(0.8, 12);
    expect(judgeFactor(2)).toBeCloseTo(1.2, 12);
    expect(judgeFactor(-1)).toBeGreaterThanOrEqual(0.8);
    expect(judgeFactor(2)).toBeLessThanOrEqual(1.2);
    // A wider nudge widens the bounds.
    expect(judgeFactor(1, { high: 0.95, highWidth: 0.02, low: 0.4, lowWidth: 0.05, nudge: 0.5 })).toBeCloseTo(1 + 0.5 * 0.9241418199787566 - 0.5 * 6.144174602214718e-6, 10);
  });
});

describe('the consistency prior', () => {
  const prior = (answers: (string | null)[], threshold = 0.85) => {
    const vote = majorityVote(answers);
    return consistencyPrior(
      vote.clusterOf,
      vote.clusters.map((c) => c.count),
      threshold,
    );
  };

  it('is the share of each answer when the top answer holds exactly 0.85 (not above)', () => {
    // 17 of 20 agree: 17/20 = 0.85, not above the threshold.
    const answers = [...Array<string>(17).fill('5'), '6', '6', null];
    const p = prior(answers);
    expect(p.topShare).toBe(0.85);
    expect(p.confident).toBe(false);
    expect(p.prior.slice(0, 17)).toEqual(Array<number>(17).fill(0.85));
    expect(p.prior.slice(17)).toEqual([0.1, 0.1, 0]);
  });

  it('is 1 for the top answer and 0 for every other above 0.85', () => {
    // 18 of 20 = 0.9; and 6 of 7 = 0.857 > 0.85.
    const p = prior([...Array<string>(18).fill('5'), '6', null]);
    expect(p.confident).toBe(true);
    expect(p.prior).toEqual([...Array<number>(18).fill(1), 0, 0]);
    const q = prior([...Array<string>(6).fill('5'), '6']);
    expect(q.topShare).toBeCloseTo(6 / 7, 12);
    expect(q.prior).toEqual([1, 1, 1, 1, 1, 1, 0]);
    // Equivalent answers agree: "0.5" and "1/2" are one cluster.
    expect(prior(['1/2', '0.5', '0.5'], 0.85).prior).toEqual([1, 1, 1]);
    expect(prior([null, null]).prior).toEqual([0, 0]);
  });
});

describe('consistency × self-judge through the scorer', () => {
  it('rewards a hand-computed group: prior × g(judge score) + format penalty, clipped; Dr. GRPO advantages', async () => {
    const config = parseRunConfig({ method: 'consistency-judge' });
    // The reference recipe: 8 samples, KL 0.01, no std normalisation.
    expect(config).toMatchObject({ votes: 8, trainSamples: 8, klCoef: 0.01, advantage: 'drgrpo', judgeMode: 'verdict', priorThreshold: 0.85 });
    const { judge, asked } = fakeJudge({ verdicts: [0.99, 0.2, 0.7, 0.9] });
    // Answers 5, 5, 7, none: top share 0.5 ⇒ prior = shares 0.5, 0.5, 0.25, 0.
    const s = await scorerFor(config)(group(['5', '5', '7', null]), { judge });
    // Factors, by hand: g(0.99) = 1 + 0.2σ(2) − 0.2σ(−11.8) = 1 + 0.17615942 − 0.0000015 = 1.17615791;
    // g(0.2) = 1 + ~0 − 0.2σ(4) = 1 − 0.19640276 = 0.80359724; g(0.7) = 0.99950622; g(0.9) = 1 + 0.2σ(−2.5) − 0.2σ(−10) = 1.01516256.
    const factors = [1.17615791, 0.80359724, 0.99950622, 1.01516256];
    s.details!.forEach((d, i) => expect(d.factor, `factor ${i}`).toBeCloseTo(factors[i], 8));
    // r = clip(b·g + fmt, 0, 1): 0.5·1.17615791 = 0.58807896, 0.5·0.80359724 = 0.40179862, 0.25·0.99950622 = 0.24987656, clip(0 − 0.5) = 0.
    const rewards = [0.58807896, 0.40179862, 0.24987656, 0];
    s.rewards.forEach((r, i) => expect(r, `reward ${i}`).toBeCloseTo(rewards[i], 8));
    expect(s.details!.map((d) => [d.prior, d.judge_score, d.format_penalty])).toEqual([
      [0.5, 0.99, 0],
      [0.5, 0.2, 0],
      [0.25, 0.7, 0],
      [0, 0.9, -0.5],
    ]);
    expect(s.labeled).toBe(true);
    expect(s.majorityRatio).toBe(0.5);
    expect(s.pseudoLabel).toBeUndefined();
    // The judge was asked once for the whole group, with the template filled in, yes against no.
    expect(asked).toHaveLength(1);
    expect(asked[0].classes).toEqual([
      ['Yes', 'yes'],
      ['No', 'no'],
    ]);
    expect(asked[0].prompts[0]).toBe(DEFAULT_JUDGE_TEMPLATE.replace('{question}', 'Compute 2+3. Answer: ').replace('{response}', '5 (#0)'));
    expect(s.judge![2]).toEqual({ prompt: asked[0].prompts[2], response: 'Yes' });
    expect(s.judge![1]!.response).toBe('No');
    // Group-relative without std: mean 0.30993853 ⇒ 0.27814042, 0.09186009, −0.06006198, −0.30993853.
    expect(config.advantage).toBe('drgrpo');
    const adv = groupAdvantages(s.rewards, 'drgrpo');
    [0.27814042, 0.09186009, -0.06006198, -0.30993853].forEach((a, i) => expect(adv[i]).toBeCloseTo(a, 8));
    const metrics = getMethod('consistency-judge').stepMetrics!([{ score: s, chosen: [0, 1, 2, 3] }], config);
    expect(metrics['self_judge/judge_score']).toBeCloseTo((0.99 + 0.2 + 0.7 + 0.9) / 4, 12);
    expect(metrics['self_judge/final_reward']).toBeCloseTo(0.30993853, 8);
    expect(metrics['self_judge/format_penalty']).toBe(-0.125);
    expect(metrics['self_judge/confident_ratio']).toBe(0);
  });

  it('under a confident majority the judge nudges but never overturns: a wrong answer stays at 0, the majority within [0.8, 1]', async () => {
    const config = parseRunConfig({ method: 'consistency-judge', votes: 8, trainSamples: 8 });
    const { judge } = fakeJudge({ verdicts: [0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1] });
    // 9 of 10 agree (0.9 > 0.85).
    const s = await scorerFor(config)(group(['5', '5', '5', '5', '5', '5', '5', '5', '5', '4']), { judge });
    expect(s.rewards[0]).toBeCloseTo(0.80006707, 8);
    expect(s.rewards[1]).toBeCloseTo(1 + 0.2 / (1 + Math.exp(22.5)) - 0.2 / (1 + Math.exp(2)), 12);
    // 1 · g(1) = 1.18 is clipped to 1.
    expect(s.rewards[2]).toBe(1);
    expect(s.rewards[9]).toBe(0);
    expect(s.details![9]).toMatchObject({ prior: 0, judge_score: 1, format_penalty: 0 });
  });

  it('in score mode reads the score between the markers; a judge without one abstains (factor 1)', async () => {
    const config = parseRunConfig({ method: 'consistency-judge', judgeMode: 'score', judgeScoreScale: 10, judgeTemplate: 'Rate {answer} for: {question}' });
    const texts = ['ok [BEGIN SCORES] {"overall_score": 10} [END SCORES]', '[BEGIN SCORES] 4 [END SCORES]', 'I cannot say', '[BEGIN SCORES] 12 [END SCORES]'];
    const { judge, asked } = fakeJudge({ texts });
    const s = await scorerFor(config)(group(['5', '5', '5', '7']), { judge });
    expect(asked[0]).toMatchObject({ kind: 'generate', options: { maxNewTokens: 64, temperature: 1, topP: 0.9 } });
    expect(asked[0].prompts).toEqual(['Rate 5 for: Compute 2+3. Answer: ', 'Rate 5 for: Compute 2+3. Answer: ', 'Rate 5 for: Compute 2+3. Answer: ', 'Rate 7 for: Compute 2+3. Answer: ']);
    // Top share 0.75 ⇒ prior 0.75, 0.75, 0.75, 0.25; scores 1, 0.4, none, none (12/10 is out of range).
    expect(s.details!.map((d) => d.judge_score)).toEqual([1, 0.4, undefined, undefined]);
    [0.75 * 1.18482714, 0.75 * 0.9, 0.75, 0.25].forEach((r, i) => expect(s.rewards[i]).toBeCloseTo(r, 8));
    expect(s.judge!.map((j) => j!.response)).toEqual(texts);
  });

  it('in written-verdict mode scores P(yes) at the verdict the judge wrote, the word itself where no token was read, and abstains without one', async () => {
    const config = parseRunConfig({ method: 'consistency-judge', judgeMode: 'written-verdict', judgeTemplate: 'Is it {answer}? {question}', judgeTemperature: 0, judgeMaxTokens: 8 });
    const written: WrittenVerdict[] = [
      { text: '5 yes', verdict: 0, probabilities: [0.97, 0.03] },
      { text: '5 yes', verdict: 0, probabilities: null },
      { text: '6 no', verdict: 1, probabilities: [0.1, 0.9] },
      { text: '6', verdict: null, probabilities: null },
    ];
    const { judge, asked } = fakeJudge({ written });
    const s = await scorerFor(config)(group(['5', '5', '5', '7']), { judge });
    expect(asked[0]).toMatchObject({ kind: 'written', classes: [['Yes', 'yes'], ['No', 'no']], options: { maxNewTokens: 8, temperature: 0, topP: 0.9 } });
    expect(asked[0].prompts[3]).toBe('Is it 7? Compute 2+3. Answer: ');
    expect(s.details!.map((d) => d.judge_score)).toEqual([0.97, 1, 0.1, undefined]);
    // Top share 0.75 ⇒ priors 0.75, 0.75, 0.75, 0.25; g(0.97) = 1 + 0.2σ(1) − 0.2σ(−11.4) = 1 + 0.14621172 − 0.00000224 = 1.14620948, g(1) = 1.18482714,
    // g(0.1) = 1 + 0.2σ(−42.5) − 0.2σ(6) = 0.80049451; the last abstains (factor 1).
    [0.75 * 1.14620948, 0.75 * 1.18482714, 0.75 * 0.80049451, 0.25].forEach((r, i) => expect(s.rewards[i], `reward ${i}`).toBeCloseTo(r, 7));
    expect(s.judge!.map((j) => j!.response)).toEqual(['5 yes', '5 yes', '6 no', '6']);
  });

  it('finds the last verdict written as a whole word', () => {
    const classes = [['Yes', 'yes'], ['No', 'no']];
    expect(lastVerdictWord('68 yes', classes)).toEqual({ verdict: 0, offset: 3 });
    expect(lastVerdictWord('No mistake, so: Yes.', classes)).toEqual({ verdict: 0, offset: 16 });
    expect(lastVerdictWord('Yes, but not quite: no', classes)).toEqual({ verdict: 1, offset: 20 });
    // Inside other words ("not", "eyes", "nobody") it is no verdict.
    expect(lastVerdictWord('not eyes nobody', classes)).toBeNull();
    expect(lastVerdictWord('[[Y]] then [[N]]', [['[[Y]]'], ['[[N]]']])).toEqual({ verdict: 1, offset: 11 });
  });

  it('parses scores, fills templates in one pass, and checks its settings', () => {
    expect(parseJudgeScore('x [S] 0.25 [E]', '[S]', '[E]', 1)).toBe(0.25);
    expect(parseJudgeScore('[S]{"overall_score": 7}[E]', '[S]', '[E]', 10)).toBe(0.7);
    expect(parseJudgeScore('[S] seven [E]', '[S]', '[E]', 1)).toBeNull();
    expect(parseJudgeScore('[S] 0.5', '[S]', '[E]', 1)).toBeNull();
    expect(parseJudgeScore('[S] -1 [E]', '[S]', '[E]', 1)).toBeNull();
    // A response that contains a placeholder is not filled again.
    expect(fillJudgeTemplate('{question}|{response}|{answer}', { question: 'Q {answer}', response: 'R', answer: null })).toBe('Q {answer}|R|R');
    expect(() => parseRunConfig({ method: 'consistency-judge', judgeTemplate: 'Is {question} right?' })).toThrow(/judgeTemplate must contain \{response\} or \{answer\}/);
    expect(() => parseRunConfig({ method: 'consistency-judge', judgeLow: 0.96 })).toThrow(/judgeLow \(0\.96\) must be below judgeHigh \(0\.95\)/);
  });

  it('without the judge service the scorer says what is missing', async () => {
    await expect(Promise.resolve(scorerFor(parseRunConfig({ method: 'consistency-judge' }))(group(['1']), {}))).rejects.toThrow(/needs the judge service/);
  });
});
