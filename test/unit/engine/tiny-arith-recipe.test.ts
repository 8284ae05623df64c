// The data recipe of the built-in base model tiny-arith (resources/models/make-tiny-arith.ts):
// few distinct sums, answers moved by ten at the stated rate, everything seeded.
import { describe, expect, it } from 'vitest';
import { TINY_ARITH_DEFAULTS, fixedTrainingSet, trainingProblems } from '../../../resources/models/make-tiny-arith.ts';

const STEPS = 300;
const batches = (o = TINY_ARITH_DEFAULTS) => Array.from({ length: STEPS }, (_, step) => trainingProblems(o, step));
const truth = (expression: string) => expression.split('+').reduce((s, x) => s + Number(x), 0);

describe('tiny-arith training data', () => {
  it('draws every problem from the fixed set of `distinct` sums, and nearly all of them come round', () => {
    const [set] = fixedTrainingSet(TINY_ARITH_DEFAULTS);
    expect(set).toHaveLength(TINY_ARITH_DEFAULTS.distinct);
    const allowed = new Set(set.map((p) => p.expression));
    expect(allowed.size).toBe(TINY_ARITH_DEFAULTS.distinct);
    const seen = new Set(batches().flat().map((p) => p.expression));
    for (const e of seen) expect(allowed.has(e), e).toBe(true);
    // 300 batches of 32 = 9,600 draws from 600: all but a handful are seen.
    expect(seen.size).toBeGreaterThan(0.98 * TINY_ARITH_DEFAULTS.distinct);
  });

  it('moves the stated share of answers by exactly ten, never below zero', () => {
    const shown = batches().flat();
    const moved = shown.filter((p) => Number(p.answer) !== truth(p.expression));
    for (const p of moved) {
      expect(Math.abs(Number(p.answer) - truth(p.expression)), p.expression).toBe(10);
      expect(Number(p.answer)).toBeGreaterThanOrEqual(0);
    }
    // 9,600 draws at 30% (sums below 10 lose the downward half): within about three standard errors.
    const share = moved.length / shown.length;
    expect(share).toBeGreaterThan(0.28);
    expect(share).toBeLessThan(0.32);
    expect(moved.some((p) => Number(p.answer) > truth(p.expression))).toBe(true);
    expect(moved.some((p) => Number(p.answer) < truth(p.expression))).toBe(true);
  });

  it('is the same for the same options and different for another seed', () => {
    expect(trainingProblems(TINY_ARITH_DEFAULTS, 7)).toEqual(trainingProblems(TINY_ARITH_DEFAULTS, 7));
    expect(trainingProblems({ ...TINY_ARITH_DEFAULTS, seed: 2 }, 7)).not.toEqual(trainingProblems(TINY_ARITH_DEFAULTS, 7));
  });

  it('leaves answers alone without noise, and draws fresh sums without a fixed set', () => {
    const clean = batches({ ...TINY_ARITH_DEFAULTS, labelNoise: 0, distinct: 0 }).flat();
    for (const p of clean) expect(Number(p.answer)).toBe(truth(p.expression));
    expect(new Set(clean.map((p) => p.expression)).size).toBeGreaterThan(2 * TINY_ARITH_DEFAULTS.distinct);
  });
});
