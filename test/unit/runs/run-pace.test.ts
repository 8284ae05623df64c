// The ETA counts training steps at their own pace plus the validations still to come, not the
// setup or the validations behind it (issue 15.10: a 30 s run showed "ETA 3 min").
import { describe, expect, it } from 'vitest';
import { RunPace } from '../../../main/runs/run-pace.ts';

describe('RunPace', () => {
  it('a 10-step run: 20 s of setup and a 5 s base validation do not count as step time', () => {
    const pace = new RunPace(10, 5);
    // Start at 0; setup 20 s; step 0's validation 20–25 s; steps of 1 s each.
    pace.phase('setup', 0);
    pace.phase('validation', 20_000);
    pace.step(0, 25_000);
    expect(pace.eta(25_000)).toBeNull();
    pace.phase('rollout', 25_000);
    pace.step(1, 27_000); // the first step also compiles graphs: it only marks the start
    expect(pace.eta(27_000)).toBeNull();
    pace.step(2, 28_000);
    // 8 steps of 1 s, then validations at steps 5 and 10 of 5 s each.
    expect(pace.eta(28_000)).toBe(8 + 10);
    // Counted down from the last step.
    expect(pace.eta(30_000)).toBe(16);
  });

  it('a validation inside a step interval is not step time, and the last one sets the estimate', () => {
    const pace = new RunPace(12, 4);
    pace.step(1, 0);
    pace.step(2, 1000);
    pace.step(3, 2000);
    pace.phase('rollout', 2000);
    pace.phase('validation', 3000);
    pace.step(4, 5000); // 1 s of training, 2 s of validation
    // 8 steps at 1 s, validations at 8 and 12 at 2 s.
    expect(pace.eta(5000)).toBe(8 + 4);
  });

  it('counts the validations to come: every valEvery-th step and the last', () => {
    const pace = new RunPace(10, 4);
    pace.phase('validation', 0);
    pace.step(0, 3000);
    pace.step(1, 4000);
    pace.step(2, 5000);
    // Steps 3..10 at 1 s; validations at 4, 8 and 10 at 3 s.
    expect(pace.eta(5000)).toBe(8 + 9);
    const none = new RunPace(10, 0);
    none.step(1, 0);
    none.step(2, 1000);
    expect(none.eta(1000)).toBe(8);
    expect(none.eta(60_000)).toBe(0);
  });

  it('a resumed run paces from its own steps', () => {
    const pace = new RunPace(20, 0);
    pace.step(15, 10_000);
    pace.step(16, 12_000);
    expect(pace.eta(12_000)).toBe(8);
  });
});
