// A chart axis's tick labels in one notation (the run view's charts): never plain decimals beside
// exponents on one axis, and as few digits as tell the ticks apart.
import { describe, expect, it } from 'vitest';
import { axisLabels } from '../../../renderer/src/lib/format.ts';

describe('axis tick labels', () => {
  it('write an axis that reaches below 1e-3 in exponents throughout (a KL coefficient near 0.001)', () => {
    expect(axisLabels([0.00106, 0.00104, 0.00102, 0.001, 0.00098])).toEqual(['1.06e-3', '1.04e-3', '1.02e-3', '1.00e-3', '9.80e-4']);
  });
  it('write plain decimals, each with as many digits as the closest ticks need', () => {
    expect(axisLabels([0, 0.25, 0.5, 0.75, 1])).toEqual(['0', '0.25', '0.50', '0.75', '1.00']);
    expect(axisLabels([0, 10, 20, 30])).toEqual(['0', '10', '20', '30']);
    expect(axisLabels([1.5, 2, 2.5])).toEqual(['1.5', '2.0', '2.5']);
  });
  it('write large numbers in exponents, and an axis of zeros as zeros', () => {
    expect(axisLabels([0, 100000, 200000])).toEqual(['0', '1.0e+5', '2.0e+5']);
    expect(axisLabels([0, 0])).toEqual(['0', '0']);
  });
});
