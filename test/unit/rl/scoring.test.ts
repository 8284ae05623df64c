// Advantage estimators and majority-vote scorers against hand computations.
import { describe, expect, it } from 'vitest';
import { groupAdvantages } from '../../../main/engine/rl/advantages.ts';
import { RUN_CONFIG_DEFAULTS, describeRunConfig, parseRunConfig } from '../../../main/engine/rl/config.ts';
import { CollapseWatch, validationScores } from '../../../main/engine/rl/metrics.ts';
import { type ScorerGroup, majorityVoteScorer, srtScorer, ttrlScorer } from '../../../main/engine/rl/rewards.ts';

const group = (answers: (string | null)[]): ScorerGroup => ({
  prompt: 'Compute 2+2. Answer: ',
  samples: answers.map((answer) => ({ text: answer ?? 'no idea', answer, tokenCount: 3, tokenIds: [1, 2, 3], logprobs: [-1, -1, -1], entropies: [1, 1, 1], selfCertainties: [1, 1, 1] })),
});

describe('advantages', () => {
  it('GRPO: (r − mean) / (unbiased std + ε)', () => {
    // mean 0.5, unbiased variance 4·0.25/3 = 1/3
    const std = Math.sqrt(1 / 3);
    const a = groupAdvantages([1, 0, 0, 1], 'grpo');
    expect(a[0]).toBeCloseTo(0.5 / (std + 1e-6), 10);
    expect(a[1]).toBeCloseTo(-0.5 / (std + 1e-6), 10);
    expect(groupAdvantages([1, 0], 'grpo', 0.5)[0]).toBeCloseTo(0.5 / (Math.SQRT1_2 + 0.5), 10);
  });

  it('Dr. GRPO: r − mean', () => {
    expect(groupAdvantages([1, 0, 0, 0], 'drgrpo')).toEqual([0.75, -0.25, -0.25, -0.25]);
  });

  it('RLOO: r − mean of the others', () => {
    const a = groupAdvantages([1, 0, 0, 0], 'rloo');
    expect(a[0]).toBeCloseTo(1, 12);
    expect(a[1]).toBeCloseTo(-1 / 3, 12);
    const soft = groupAdvantages([0.6, 0.2, 0.2], 'rloo');
    expect(soft[0]).toBeCloseTo(0.6 - 0.2, 12);
    expect(soft[1]).toBeCloseTo(0.2 - 0.4, 12);
  });

  it('all-equal groups and single samples carry no signal', () => {
    for (const est of ['grpo', 'drgrpo', 'rloo'] as const) {
      expect(groupAdvantages([1, 1, 1], est)).toEqual([0, 0, 0]);
      expect(groupAdvantages([0, 0], est)).toEqual([0, 0]);
      expect(groupAdvantages([1], est)).toEqual([0]);
      expect(groupAdvantages([], est)).toEqual([]);
    }
  });
});

describe('majority-vote scorers', () => {
  // "4", "4", "5", no answer, "4.0": cluster {4: 3 votes}, {5: 1 vote}; ratio 3/5.
  const answers = ['4', '4', '5', null, '4.0'];

  it('TTRL: reward 1 when equivalent to the majority answer; no-answer samples count in n and get 0', () => {
    const s = ttrlScorer()(group(answers));
    expect(s.pseudoLabel).toBe('4');
    expect(s.labeled).toBe(true);
    expect(s.majorityRatio).toBeCloseTo(0.6, 12);
    expect(s.rewards).toEqual([1, 1, 0, 0, 1]);
    expect(s.voteCounts).toEqual([
      { answer: '4', count: 3 },
      { answer: '5', count: 1 },
    ]);
    expect(s.agreesWithLabel).toEqual([true, true, false, false, true]);
  });

  it('equivalence, not string match: 1/2 and 0.5 vote together', () => {
    const s = ttrlScorer()(group(['1/2', '0.5', '0.5', '3']));
    expect(s.pseudoLabel).toBe('1/2');
    expect(s.rewards).toEqual([1, 1, 1, 0]);
  });

  it('a tie for the most votes gives no label and no reward; ties "first" gives the answer seen first', () => {
    // 2–2 (1/2 ≡ 0.5 against 3, 3): majority ratio 2/4 = 0.5, shared by two answers.
    const tie = ttrlScorer()(group(['1/2', '0.5', '3', '3']));
    expect(tie).toMatchObject({ labeled: false, pseudoLabel: null, rewards: [0, 0, 0, 0], agreesWithLabel: [false, false, false, false], majorityRatio: 0.5 });
    expect(tie.diagnostics.tied).toBe(1);
    const first = ttrlScorer(undefined, 'first')(group(['1/2', '0.5', '3', '3']));
    expect(first).toMatchObject({ labeled: true, pseudoLabel: '1/2', rewards: [1, 1, 0, 0] });
    expect(first.diagnostics.tied).toBe(1);
    // SRT's threshold does not rescue a tie either.
    expect(srtScorer({ threshold: 0 })(group(['7', '8'])).labeled).toBe(false);
  });

  it('SRT threshold: below τ no label and no reward; at τ a label', () => {
    const below = srtScorer({ threshold: 0.7 })(group(answers));
    expect(below.labeled).toBe(false);
    expect(below.pseudoLabel).toBeNull();
    expect(below.rewards).toEqual([0, 0, 0, 0, 0]);
    expect(below.majorityRatio).toBeCloseTo(0.6, 12);
    const at = srtScorer({ threshold: 0.6 })(group(answers));
    expect(at.labeled).toBe(true);
    expect(at.rewards).toEqual([1, 1, 0, 0, 1]);
  });

  it('SRT soft reward: the share of votes of the sample’s answer', () => {
    const s = srtScorer({ threshold: 0, softReward: true })(group(answers));
    const r = s.rewards;
    [0.6, 0.6, 0.2, 0, 0.6].forEach((x, i) => expect(r[i]).toBeCloseTo(x, 12));
  });

  it('a group with no answers at all gets no label', () => {
    const s = majorityVoteScorer()(group([null, null, null]));
    expect(s.labeled).toBe(false);
    expect(s.majorityRatio).toBe(0);
    expect(s.rewards).toEqual([0, 0, 0]);
  });
});

describe('metrics and config', () => {
  it('validation avg@k, maj@k, pass@k', () => {
    const s = validationScores(
      [
        { answers: ['4', '4', '5', null], truth: '4' }, // avg 0.5, maj 1, pass 1
        { answers: ['7', '8', '8', '8'], truth: '7' }, // avg 0.25, maj 0, pass 1
        { answers: [null, null, '1', '2'], truth: '9' }, // 0, 0, 0
      ],
      'auto',
    );
    expect(s.avg).toBeCloseTo(0.75 / 3, 12);
    expect(s.maj).toBeCloseTo(1 / 3, 12);
    expect(s.pass).toBeCloseTo(2 / 3, 12);
  });

  it('validation by the method\'s own check: outcomes for avg@k and pass@k, its pick for maj@k, the text ignored', () => {
    const s = validationScores(
      [
        // The answers would all be right as text; the outcomes decide: avg 0.25, maj 0 (the pick fails), pass 1.
        { answers: ['4', '4', '4', '4'], truth: '4', hidden: { outcomes: ['fail', 'pass', 'error', 'timeout'], chosen: 0 } },
        // avg 0.5, maj 1, pass 1.
        { answers: [null, null, null, null], truth: '4', hidden: { outcomes: ['fail', 'pass', 'pass', 'error'], chosen: 2 } },
        // No pick (no consensus): maj 0; avg 0.25, pass 1.
        { answers: [null, null, null, null], truth: '4', hidden: { outcomes: ['pass', 'fail', 'fail', 'fail'], chosen: null } },
        // A group without outcomes beside them is scored by its text: avg 0.5, maj 1, pass 1.
        { answers: ['4', '4', '5', null], truth: '4' },
      ],
      'auto',
    );
    expect(s.avg).toBeCloseTo(1.5 / 4, 12);
    expect(s.maj).toBeCloseTo(2 / 4, 12);
    expect(s.pass).toBeCloseTo(1, 12);
  });

  it('the collapse watch fires once per onset', () => {
    const w = new CollapseWatch({ majorityRatio: 0.95, entropy: 0.05, valDrop: 0.1 });
    expect(w.onTrainStep(1, 0.97, 0.2)).toBeNull();
    expect(w.onTrainStep(2, 0.97, 0.01)?.kind).toBe('collapse');
    expect(w.onTrainStep(3, 1, 0.0)).toBeNull();
    expect(w.onValidation(3, 'val/maj@16', 0.55, { value: 0.6, step: 2 }, true)).toBeNull();
    const drop = w.onValidation(4, 'val/maj@16', 0.4, { value: 0.6, step: 2 }, true);
    expect(drop?.kind).toBe('validation_drop');
    expect(drop?.message).toBe('val/maj@16 fell to 0.400 from its best 0.600 at step 2: consider the "best" checkpoint (best-2)');
  });

  it('a validation drop recommends only a checkpoint that exists', () => {
    // Issue 15.10: the alert recommended a "best" checkpoint when the best was step 0, the base model, which none holds.
    const limits = { majorityRatio: 0.95, entropy: 0.05, valDrop: 0.1 };
    const base = new CollapseWatch(limits).onValidation(5, 'val/maj@16', 0.3, { value: 0.438, step: 0 }, true);
    expect(base?.message).toMatch(/^val\/maj@16 fell to 0\.300 from its best 0\.438 at step 0, before any training: .*no checkpoint beats it/);
    expect(base?.message).not.toMatch(/consider the "best" checkpoint/);
    const none = new CollapseWatch(limits).onValidation(5, 'val/maj@16', 0.3, { value: 0.5, step: 3 }, false);
    expect(none?.message).toBe('val/maj@16 fell to 0.300 from its best 0.500 at step 3 (this run saves no checkpoints)');
  });

  it('a validation drop of one prompt of a small evaluation set is noise, not an alert', () => {
    const limits = { majorityRatio: 0.95, entropy: 0.05, valDrop: 0.1 };
    // 8 prompts: one answered otherwise moves maj@16 by 0.125, past valDrop; two are a drop.
    expect(new CollapseWatch(limits).onValidation(5, 'val/maj@16', 0.75, { value: 0.875, step: 2 }, true, 8)).toBeNull();
    expect(new CollapseWatch(limits).onValidation(5, 'val/maj@16', 0.625, { value: 0.875, step: 2 }, true, 8)?.kind).toBe('validation_drop');
    // 200 prompts: valDrop decides.
    expect(new CollapseWatch(limits).onValidation(5, 'val/maj@16', 0.75, { value: 0.875, step: 2 }, true, 200)?.kind).toBe('validation_drop');
  });

  it('defaults validate, every setting is described, trainSamples ≤ votes', () => {
    expect(parseRunConfig({})).toEqual(RUN_CONFIG_DEFAULTS);
    expect(RUN_CONFIG_DEFAULTS.temperature).toBe(1);
    expect(RUN_CONFIG_DEFAULTS.klCoef).toBe(0.001);
    for (const f of describeRunConfig()) expect(f.description, f.name).not.toBe('');
    expect(() => parseRunConfig({ votes: 4, trainSamples: 8 })).toThrow(/trainSamples/);
    expect(() => parseRunConfig({ method: 'nope' })).toThrow();
    // An adaptive KL target needs a coefficient to start from.
    expect(() => parseRunConfig({ klCoef: 0, klTarget: 0.05 })).toThrow(/klCoef > 0/);
    expect(parseRunConfig({ klCoef: 0.1, klTarget: 0.05 }).klHorizon).toBe(100);
  });
});
