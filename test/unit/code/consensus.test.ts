// Dual agreement on hand-built execution matrices; every number below is worked out by hand in
// the comment above its expectation.
import { describe, expect, it } from 'vitest';
import { type Outcome, dualAgreement, matrixStats } from '../../../main/engine/code/consensus.ts';

/** 'PPF' → ['pass', 'pass', 'fail']; E error, T timeout. */
function rows(...lines: string[]): Outcome[][] {
  const map: Record<string, Outcome> = { P: 'pass', F: 'fail', E: 'error', T: 'timeout' };
  return lines.map((line) => [...line].map((c) => map[c]));
}

describe('dualAgreement', () => {
  it('scores consensus sets by #solutions × #tests and credits tests that separate the top set', () => {
    const m = rows('PPF', 'PPF', 'PFF', 'EEE');
    const a = dualAgreement(m);
    // Sets: {0,1} pass {0,1}: 2×2 = 4; {2} passes {0}: 1×1 = 1; {3} passes nothing: 0.
    expect(a.sets).toEqual([
      { solutions: [0, 1], tests: [0, 1], score: 4 },
      { solutions: [2], tests: [0], score: 1 },
      { solutions: [3], tests: [], score: 0 },
    ]);
    expect(a.top).toBe(0);
    expect(a.tied).toBe(false);
    expect(a.setOf).toEqual([0, 0, 1, 2]);
    expect(a.solutionScores).toEqual([4, 4, 1, 0]);
    // Over 4 solutions × 3 tests = 12.
    expect(a.solutionRewards).toEqual([4 / 12, 4 / 12, 1 / 12, 0]);
    // Others are solutions 2 and 3. Test 0 passes the top set; of the others, 2 passes and 3
    // errors: 1/2. Test 1 passes the top set, fails 2, errors on 3: 2/2. Test 2 fails the top set: 0.
    expect(a.testRewards).toEqual([0.5, 1, 0]);
    expect(matrixStats(m, a)).toEqual({
      consensusSize: 2,
      testDiscrimination: (0.5 + 1 + 0) / 3,
      // Solution 3 never passed or failed a test: it did not run.
      runnableShare: 3 / 4,
      errorShare: 3 / 12,
      timeoutShare: 0,
    });
  });

  it('prefers one solution passing many tests to many solutions passing one (CodeT)', () => {
    const a = dualAgreement(rows('PPPP', 'PFFF', 'PFFF', 'PFFF'));
    // {0}: 1×4 = 4 beats {1,2,3}: 3×1 = 3.
    expect(a.sets.map((s) => s.score)).toEqual([4, 3]);
    expect(a.sets[a.top!].solutions).toEqual([0]);
    expect(a.solutionScores).toEqual([4, 3, 3, 3]);
    expect(a.solutionRewards).toEqual([4 / 16, 3 / 16, 3 / 16, 3 / 16]);
    // Test 0 passes everyone: it separates nothing (0). Tests 1-3 pass the top set and fail all three others (1).
    expect(a.testRewards).toEqual([0, 1, 1, 1]);
  });

  it('breaks a tie for the top score by the larger set, and says it was tied', () => {
    const a = dualAgreement(rows('PF', 'PF', 'PP'));
    // {0,1} pass test 0: 2×1 = 2; {2} passes both: 1×2 = 2. Tie: the set of two solutions leads.
    expect(a.sets).toEqual([
      { solutions: [0, 1], tests: [0], score: 2 },
      { solutions: [2], tests: [0, 1], score: 2 },
    ]);
    expect(a.tied).toBe(true);
    // Test 0 passes the top set and the other solution too: 0. Test 1 fails solution 0: 0.
    expect(a.testRewards).toEqual([0, 0]);
  });

  it('gives every test that agrees with a unanimous set full credit', () => {
    const a = dualAgreement(rows('PPF', 'PPF', 'PPF'));
    // One set of 3 × 2 tests = 6, over 3 × 3 = 9.
    expect(a.solutionRewards).toEqual([6 / 9, 6 / 9, 6 / 9]);
    // No other solutions: a test passing the set is credited 1, the failing one 0.
    expect(a.testRewards).toEqual([1, 1, 0]);
  });

  it('has no top set when no solution passes any test', () => {
    const m = rows('EE', 'FT', 'TT');
    const a = dualAgreement(m);
    expect(a.sets).toEqual([{ solutions: [0, 1, 2], tests: [], score: 0 }]);
    expect(a.top).toBeNull();
    expect(a.solutionRewards).toEqual([0, 0, 0]);
    expect(a.testRewards).toEqual([0, 0]);
    expect(matrixStats(m, a)).toEqual({ consensusSize: 0, testDiscrimination: 0, runnableShare: 1 / 3, errorShare: 2 / 6, timeoutShare: 3 / 6 });
  });

  it('counts a timeout as not passing, like a failure', () => {
    const a = dualAgreement(rows('PP', 'PT'));
    // {0}: 1×2 = 2 beats {1}: 1×1 = 1. Test 1 passes 0 and times out on 1: credit 1.
    expect(a.setOf).toEqual([0, 1]);
    expect(a.testRewards).toEqual([0, 1]);
  });

  it('handles no solutions and no tests', () => {
    expect(dualAgreement([])).toMatchObject({ sets: [], top: null, solutionRewards: [], testRewards: [] });
    const a = dualAgreement([[], []]);
    expect(a.top).toBeNull();
    expect(a.solutionRewards).toEqual([0, 0]);
  });

  it('refuses a ragged matrix, naming the row', () => {
    expect(() => dualAgreement(rows('PP', 'P'))).toThrow('execution matrix row 1 has 1 tests, row 0 has 2');
  });
});
