// The shared recipes' synthetic copying rows (resources/models/sft.ts, copyExample): the ids, the
// separator and the ids again, with the loss on the repeat and the end alone, as makeCausalBatch
// reads it.
import { describe, expect, it } from 'vitest';
import { makeCausalBatch } from '../../../main/engine/runtime/trainer.ts';
import { copyExample } from '../../../resources/models/sft.ts';

describe('copyExample', () => {
  it('trains the repeat and the suffix, not the first copy', () => {
    const ex = copyExample([7, 8, 9], [4], { prefix: [1], suffix: [2] });
    expect(ex.tokens).toEqual([1, 7, 8, 9, 4, 7, 8, 9, 2]);
    const batch = makeCausalBatch([ex], { size: 1, seqLen: 8 });
    // Position t predicts tokens[t + 1]: the predictions of 7, 8, 9 (again) and 2 count.
    expect(Array.from(batch.lossMask)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(Array.from(batch.targets).filter((_, t) => batch.lossMask[t] === 1)).toEqual([7, 8, 9, 2]);
  });

  it('without ends: the ids, the separator, the ids', () => {
    expect(copyExample([5, 6], [3, 3])).toEqual({ tokens: [5, 6, 3, 3, 5, 6], lossStart: 4 });
  });
});
