// The signal check's numbers and decisions, against values computed by hand.
import { describe, expect, it } from 'vitest';
import { parseRunConfig, signalThresholdsOf } from '../../../main/engine/rl/config.ts';
import { SIGNAL_METRICS, type SignalGroup, SignalWatch, chanceMajorityRatio, expectedLargestCount, signalMetrics, weakSignalReasons } from '../../../main/engine/rl/signal.ts';

const group = (g: Partial<SignalGroup> & Pick<SignalGroup, 'clusterCounts'>): SignalGroup => {
  const samples = g.samples ?? 4;
  const top = Math.max(0, ...g.clusterCounts);
  return {
    samples,
    extracted: g.extracted ?? g.clusterCounts.reduce((a, b) => a + b, 0),
    majorityRatio: g.majorityRatio ?? top / samples,
    tied: g.tied ?? (top > 0 && g.clusterCounts.filter((c) => c === top).length > 1),
    trainedAdvantages: g.trainedAdvantages ?? [],
    clusterCounts: g.clusterCounts,
  };
};

describe('expected largest count (chance)', () => {
  it('matches hand-computed multinomial maxima', () => {
    // 2 items, 2 boxes: both in one box with probability 1/2 → E[max] = 1·½ + 2·½ = 1.5.
    expect(expectedLargestCount(2, 2)).toBeCloseTo(1.5, 12);
    // 3 items, 3 boxes: all distinct 6/27 (max 1), all together 3/27 (max 3), else 18/27 (max 2):
    // E = (6 + 36 + 9) / 27 = 51/27.
    expect(expectedLargestCount(3, 3)).toBeCloseTo(51 / 27, 12);
    // 4 items, 2 boxes: counts (4,0) 2/16, (3,1) 8/16, (2,2) 6/16 → E = (8 + 24 + 12) / 16 = 2.75.
    expect(expectedLargestCount(4, 2)).toBeCloseTo(2.75, 12);
    expect(expectedLargestCount(5, 1)).toBe(5);
    expect(expectedLargestCount(0, 3)).toBe(0);
    expect(() => expectedLargestCount(2, 0)).toThrow(/k ≥ 1/);
  });

  it('is stable for many votes (no factorial overflow) and never below the even split', () => {
    const e = expectedLargestCount(200, 200);
    expect(Number.isFinite(e)).toBe(true);
    expect(e).toBeGreaterThan(1);
    expect(e).toBeLessThan(10);
    expect(expectedLargestCount(64, 4)).toBeGreaterThan(16);
  });

  it('chance majority ratio: over max(k, 2) answers, divided by all n samples', () => {
    // 4 samples, 2 answered, both the same (k = 1 → 2 answers): E[max of 2 over 2] / 4 = 1.5 / 4.
    expect(chanceMajorityRatio({ samples: 4, clusterCounts: [2] })).toBeCloseTo(0.375, 12);
    // 3 samples, 3 different answers: (51/27) / 3.
    expect(chanceMajorityRatio({ samples: 3, clusterCounts: [1, 1, 1] })).toBeCloseTo(51 / 81, 12);
    expect(chanceMajorityRatio({ samples: 4, clusterCounts: [] })).toBe(0);
  });
});

describe('signal metrics of a step', () => {
  it('hand-computed: extraction, chance, lift, groups with signal, ties', () => {
    const groups = [
      // 4 samples, all answered "7": ratio 1; chance 2.75/4 (4 over 2 answers); trained advantages 0.
      group({ clusterCounts: [4], trainedAdvantages: [0, 0] }),
      // 4 samples, 2 answered, different: tied; ratio 1/4; chance 1.5/4; no label, nothing trained.
      group({ clusterCounts: [1, 1], extracted: 2 }),
      // 4 samples, 3 answered: 2 "5" and 1 "6"; ratio 2/4; chance 2.25/4 (3 over 2 answers, below).
      group({ clusterCounts: [2, 1], extracted: 3, trainedAdvantages: [0.7, -0.7] }),
    ];
    // E[max] of 3 items over 2 boxes: (3,0) 2/8 → 3, (2,1) 6/8 → 2: E = (6 + 12) / 8 = 2.25.
    expect(expectedLargestCount(3, 2)).toBeCloseTo(2.25, 12);
    const m = signalMetrics(groups);
    expect(m[SIGNAL_METRICS.extractionRate]).toBeCloseTo((4 + 2 + 3) / 12, 12);
    const chance = (2.75 / 4 + 1.5 / 4 + 2.25 / 4) / 3; // 0.541666…
    expect(m[SIGNAL_METRICS.majorityRatioChance]).toBeCloseTo(chance, 12);
    const ratio = (1 + 0.25 + 0.5) / 3; // 0.583333…
    expect(m[SIGNAL_METRICS.majorityLift]).toBeCloseTo(ratio / chance, 12); // 1.0769…
    expect(m[SIGNAL_METRICS.groupsWithSignal]).toBeCloseTo(1 / 3, 12);
    expect(m[SIGNAL_METRICS.tiedGroups]).toBeCloseTo(1 / 3, 12);
  });

  it('noise (16 different answers of 16) sits below chance; a clear majority well above it', () => {
    const noise = signalMetrics([group({ samples: 16, clusterCounts: Array(16).fill(1) })]);
    // ratio 1/16 against E[max of 16 over 16] / 16 = 3.0782 / 16: lift 1 / 3.0782 = 0.325.
    expect(noise[SIGNAL_METRICS.majorityLift]).toBeCloseTo(1 / expectedLargestCount(16, 16), 12);
    expect(noise[SIGNAL_METRICS.majorityLift]).toBeCloseTo(0.325, 3);
    const clear = signalMetrics([group({ samples: 16, clusterCounts: [12, 3, 1], trainedAdvantages: [1, -1] })]);
    // 12 / E[max of 16 over 3] = 12 / 7.3334 = 1.636.
    expect(clear[SIGNAL_METRICS.majorityLift]).toBeCloseTo(1.636, 3);
  });

  it('no answers at all: extraction 0, lift 0, no signal', () => {
    const m = signalMetrics([group({ clusterCounts: [] }), group({ clusterCounts: [] })]);
    expect(m).toEqual({
      [SIGNAL_METRICS.extractionRate]: 0,
      [SIGNAL_METRICS.majorityRatioChance]: 0,
      [SIGNAL_METRICS.majorityLift]: 0,
      [SIGNAL_METRICS.groupsWithSignal]: 0,
      [SIGNAL_METRICS.tiedGroups]: 0,
    });
  });
});

describe('the weak-signal decision and its watch', () => {
  const limits = { minExtraction: 0.5, minLift: 1.05, minGroupsWithSignal: 0.1 };
  const healthy = { [SIGNAL_METRICS.extractionRate]: 0.9, [SIGNAL_METRICS.majorityLift]: 1.6, [SIGNAL_METRICS.majorityRatioChance]: 0.45, [SIGNAL_METRICS.groupsWithSignal]: 0.75, 'train/majority_ratio': 0.72 };
  const noisy = { [SIGNAL_METRICS.extractionRate]: 0.25, [SIGNAL_METRICS.majorityLift]: 0.33, [SIGNAL_METRICS.majorityRatioChance]: 0.19, [SIGNAL_METRICS.groupsWithSignal]: 0, 'train/majority_ratio': 0.0625 };

  it('names each failed check with its value and setting', () => {
    expect(weakSignalReasons(healthy, limits)).toEqual([]);
    expect(weakSignalReasons(noisy, limits)).toEqual([
      'an answer was found in 25% of the samples (signalMinExtraction 0.5)',
      'the majority ratio is 0.33× what chance gives (0.06 against 0.19; signalMinLift 1.05)',
      '0% of the prompts gave any non-zero advantage (signalMinGroupsWithSignal 0.1)',
    ]);
    // At the threshold is not below it; 0 turns a check off.
    expect(weakSignalReasons({ ...healthy, [SIGNAL_METRICS.majorityLift]: 1.05 }, limits)).toEqual([]);
    expect(weakSignalReasons(noisy, { minExtraction: 0, minLift: 0, minGroupsWithSignal: 0 })).toEqual([]);
    // Nothing extracted at all: chance is 0 and a ratio against it says nothing.
    const none = { ...noisy, [SIGNAL_METRICS.extractionRate]: 0, [SIGNAL_METRICS.majorityLift]: 0, [SIGNAL_METRICS.majorityRatioChance]: 0, 'train/majority_ratio': 0 };
    expect(weakSignalReasons(none, limits)).toEqual(['an answer was found in 0% of the samples (signalMinExtraction 0.5)', '0% of the prompts gave any non-zero advantage (signalMinGroupsWithSignal 0.1)']);
  });

  it('alerts once when the signal turns weak (pre-flight at the first step) and re-arms after a healthy step', () => {
    const w = new SignalWatch({ ...limits, window: 1 });
    const first = w.onStep(1, noisy, true);
    expect(first?.kind).toBe('weak_signal');
    expect(first?.message).toMatch(/^Pre-flight check \(step 1's rollout, before any update\): weak learning signal: an answer was found in 25%/);
    expect(first?.values[SIGNAL_METRICS.majorityLift]).toBe(0.33);
    expect(w.onStep(2, noisy, false)).toBeNull();
    expect(w.onStep(3, healthy, false)).toBeNull();
    expect(w.onStep(4, noisy, false)?.message).toMatch(/^Step 4: weak learning signal/);
    // A resumed watch that had fired stays quiet until the signal recovers.
    expect(new SignalWatch({ ...limits, window: 1 }, { weak: true }).onStep(5, noisy, false)).toBeNull();
  });

  it('decides on the mean of the last `window` steps; the first step (pre-flight) alone', () => {
    const w = new SignalWatch({ ...limits, window: 3 });
    const lift = (x: number) => ({ ...healthy, [SIGNAL_METRICS.majorityLift]: x });
    expect(w.onStep(1, lift(1.3), true)).toBeNull();
    expect(w.onStep(2, lift(1.2), false)).toBeNull();
    // One poor step among good ones: mean of 1.3, 1.2, 0.95 = 1.15 ≥ 1.05, no alert.
    expect(w.onStep(3, lift(0.95), false)).toBeNull();
    // Steps 2–4: (1.2 + 0.95 + 0.9) / 3 = 1.0167 < 1.05: alert, with the mean in its message.
    const a = w.onStep(4, lift(0.9), false);
    expect(a?.message).toMatch(/^Step 4 \(mean of steps 2–4\): weak learning signal: the majority ratio is 1\.02× what chance gives/);
    expect(a?.values[SIGNAL_METRICS.majorityLift]).toBeCloseTo(3.05 / 3, 12);
    expect(w.state.recent).toHaveLength(3);
    // The pre-flight check of a run decides on its own step only, whatever came before.
    expect(new SignalWatch({ ...limits, window: 3 }, { weak: false, recent: [lift(2), lift(2)] }).onStep(1, lift(0.9), true)?.message).toMatch(/^Pre-flight check/);
    expect(() => new SignalWatch({ ...limits, window: 0 })).toThrow(/window/);
  });

  it('thresholds and the action are run settings with defaults', () => {
    const c = parseRunConfig({});
    expect(signalThresholdsOf(c)).toEqual({ minExtraction: 0.5, minLift: 1.05, minGroupsWithSignal: 0.1, window: 3 });
    expect(c.signalAction).toBe('warn');
    expect(c.voteTies).toBe('no-label');
    expect(parseRunConfig({ signalAction: 'stop', signalMinLift: 2 })).toMatchObject({ signalAction: 'stop', signalMinLift: 2 });
    expect(() => parseRunConfig({ signalAction: 'pause' })).toThrow();
    expect(() => parseRunConfig({ signalMinExtraction: 1.5 })).toThrow();
  });
});
