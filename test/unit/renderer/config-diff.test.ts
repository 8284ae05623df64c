// The compare view's configuration diff (issue 15.8): which settings differ between the runs.
import { describe, expect, it } from 'vitest';
import { configDiff } from '../../../renderer/src/lib/config-diff.ts';

describe('configDiff', () => {
  it('lists every key once, sorted, with each run\'s value, and marks those that differ', () => {
    const rows = configDiff([
      { method: 'ttrl', lr: 1e-5, votes: 16, stopStrings: ['\n'], lora: { rank: 8, alpha: 16 } },
      { method: 'ttrl', lr: 3e-5, votes: 16, stopStrings: ['\n'], lora: { alpha: 16, rank: 8 }, srtThreshold: 0.5 },
      { method: 'srt', lr: 1e-5, votes: 16, stopStrings: ['\n', '###'], lora: { rank: 8, alpha: 16 } },
    ]);
    expect(rows.map((r) => r.key)).toEqual(['lora', 'lr', 'method', 'srtThreshold', 'stopStrings', 'votes']);
    expect(Object.fromEntries(rows.map((r) => [r.key, r.differs]))).toEqual({ lora: false, lr: true, method: true, srtThreshold: true, stopStrings: true, votes: false });
    expect(rows.find((r) => r.key === 'srtThreshold')!.values).toEqual([undefined, 0.5, undefined]);
    expect(rows.find((r) => r.key === 'lr')!.values).toEqual([1e-5, 3e-5, 1e-5]);
  });

  it('finds nothing different between equal configurations', () => {
    expect(configDiff([{ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }]).every((r) => !r.differs)).toBe(true);
    expect(configDiff([{ a: null }, {}])[0].differs).toBe(true);
  });
});
