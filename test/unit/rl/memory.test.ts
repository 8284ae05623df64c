// The memory a run plans for, and the limit it is held to.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../main/engine/nn/config.ts';
import { readJson } from '../../../main/engine/nn/hf-model.ts';
import { estimateRunBytes, memoryLimitBytes, weightCount } from '../../../main/engine/rl/memory.ts';

const GIB = 1024 ** 3;

describe('memoryLimitBytes', () => {
  it('reads AUTODIDACT_MEMORY_LIMIT with a unit, and defaults to three quarters of the machine', () => {
    expect(memoryLimitBytes('1G')).toBe(GIB);
    expect(memoryLimitBytes('512M')).toBe(512 * 1024 ** 2);
    expect(memoryLimitBytes('1.5GiB')).toBe(1.5 * GIB);
    expect(memoryLimitBytes('1000')).toBe(1000);
    expect(memoryLimitBytes(undefined)).toBe(0.75 * os.totalmem());
    expect(() => memoryLimitBytes('lots')).toThrow(/AUTODIDACT_MEMORY_LIMIT must be a size such as 8G/);
  });
});

describe('estimateRunBytes', async () => {
  const file = path.join(import.meta.dirname, '../../../resources/models/tiny-chars/config.json');
  const config = parseConfig(await readJson(file), file);
  const run = (seqLen: number, reference = true) =>
    estimateRunBytes(config, { update: { size: 32, seqLen }, reference, generate: { rows: 64, prompts: 4, maxLength: seqLen + 1 }, trainable: weightCount(config) });

  it('counts the weights of the model', () => {
    // tiny-chars: 2 layers of 128 hidden, 384 intermediate, a tied 103-token embedding.
    expect(weightCount(config)).toBe(2 * (128 * 32 * 12 + 3 * 128 * 384 + 256) + 103 * 128 + 128);
  });

  it('grows with the square of the sequence length: what took the app down is refused at a limit', () => {
    // Peak RSS measured on the CPU (default settings, 32 sequences): 0.46 GB at 115 tokens and
    // 2.56 GB at 615; the estimate may be higher, never much lower.
    expect(run(115) / GIB).toBeGreaterThan(0.46 * 0.95);
    expect(run(615) / GIB).toBeGreaterThan(2.56 * 0.95);
    expect(run(615) / GIB).toBeLessThan(2.56 * 1.6);
    expect(run(2 * 1023) / run(1023)).toBeGreaterThan(3.5);
    // The 5,400-token prompt of the report: tens of GB.
    expect(run(5415)).toBeGreaterThan(100 * GIB);
    expect(run(615, false)).toBeLessThan(run(615));
  });

  it('counts the critic’s hidden-state pass and the hidden states it holds (advantage gae)', () => {
    const shapes = { update: { size: 32, seqLen: 615 }, reference: true, generate: { rows: 64, prompts: 4, maxLength: 616 }, trainable: weightCount(config) };
    const extra = estimateRunBytes(config, { ...shapes, critic: true }) - estimateRunBytes(config, shapes);
    // At least a forward pass's attention scores (2 layers × 32 × 4 heads × 615²) and three copies of the hidden states.
    expect(extra).toBeGreaterThan(2 * 32 * 4 * 615 * 615 * 4 + 3 * 32 * 615 * 128 * 4);
    expect(extra).toBeLessThan(run(615) - run(615, false) + 3 * 32 * 615 * 128 * 4 + 1);
  });
});
