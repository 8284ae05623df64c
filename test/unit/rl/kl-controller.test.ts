// The adaptive KL coefficient (Ziegler et al. 2019): direction, bounded steps, and that it holds
// the target on a policy whose KL falls as the coefficient rises.
import { describe, expect, it } from 'vitest';
import { checkKlControl, nextKlCoef } from '../../../main/engine/rl/kl-controller.ts';

const control = { initial: 0.1, target: 0.02, horizon: 10 };

describe('adaptive KL coefficient', () => {
  it('rises above the target, falls below it, and stays put on it', () => {
    expect(nextKlCoef(0.1, 0.022, control)).toBeCloseTo(0.1 * (1 + 0.1 / 10), 12);
    expect(nextKlCoef(0.1, 0.018, control)).toBeCloseTo(0.1 * (1 - 0.1 / 10), 12);
    expect(nextKlCoef(0.1, 0.02, control)).toBeCloseTo(0.1, 12);
  });

  it('moves by at most 0.2 / horizon a step, whatever the KL', () => {
    expect(nextKlCoef(0.1, 5, control)).toBeCloseTo(0.1 * 1.02, 12);
    expect(nextKlCoef(0.1, 0, control)).toBeCloseTo(0.1 * 0.98, 12);
    expect(nextKlCoef(0.1, NaN, control)).toBe(0.1);
    expect(nextKlCoef(0.1, Infinity, control)).toBe(0.1);
  });

  it('holds the target on a policy whose KL is inversely proportional to the coefficient', () => {
    // KL = 0.006 / coef: the coefficient that holds 0.02 is 0.3, three times the start.
    let coef = control.initial;
    for (let step = 0; step < 2000; step++) coef = nextKlCoef(coef, 0.006 / coef, control);
    expect(coef).toBeCloseTo(0.3, 3);
    expect(0.006 / coef).toBeCloseTo(control.target, 4);
  });

  it('rejects settings that cannot work', () => {
    expect(() => checkKlControl({ ...control, initial: 0 })).toThrow(/klCoef > 0/);
    expect(() => checkKlControl({ ...control, target: 0 })).toThrow(/klTarget/);
    expect(() => checkKlControl({ ...control, horizon: 0.5 })).toThrow(/klHorizon/);
  });
});
