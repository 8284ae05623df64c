// The memory a run plans for, and the limit it is held to.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../main/engine/nn/config.ts';
import { readJson } from '../../../main/engine/nn/hf-model.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { planMicroBatch } from '../../../main/engine/rl/loop.ts';
import { estimateRunBytes, memoryLimitBytes, weightCount } from '../../../main/engine/rl/memory.ts';
import type { Device } from '../../../main/engine/runtime/devices.ts';

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

describe('micro-batches (microBatch)', async () => {
  const file = path.join(import.meta.dirname, '../../../resources/models/tiny-chars/config.json');
  const config = parseConfig(await readJson(file), file);
  const update = { size: 32, seqLen: 615 };
  const shapes = (microBatch?: number) => ({ update: { ...update, microBatch }, reference: true, generate: { rows: 64, prompts: 4, maxLength: 616 }, trainable: weightCount(config) });

  it('hold one micro-batch of activations at a time, plus one copy of the gradient sums', () => {
    // Measured peak RSS (`npm run bench -- train --model tiny-chars --batch 32 --seq 615 --micro-batch M`):
    // 1,597 MB at M = 32, 920 MB at 8, 401 MB at 2, the same losses.
    const whole = estimateRunBytes(config, shapes());
    expect(estimateRunBytes(config, shapes(32))).toBe(whole);
    const eight = estimateRunBytes(config, shapes(8));
    const two = estimateRunBytes(config, shapes(2));
    expect(eight).toBeLessThan(whole);
    expect(two).toBeLessThan(eight);
    // Only the update's and the reference's passes shrink; generation is unchanged.
    expect(whole - eight).toBeGreaterThan(0.5 * (whole - estimateRunBytes(config, { ...shapes(), update: { size: 0, seqLen: 615 } })));
  });

  const run = parseRunConfig({ method: 'ttrl', model: 'tiny-chars', dataset: 'arithmetic', promptsPerStep: 4, trainSamples: 8 });
  const cpu: Device = { name: 'cpu', keepsStateOnDevice: false };
  const plan = (limit: number, settings: Partial<typeof run> = {}, device = cpu) => planMicroBatch(config, { ...run, ...settings }, device, update, 600, 600, { judge: false, teacher: false }, limit);
  const need = (micro: number) => estimateRunBytes(config, { ...shapes(micro), reference: run.klCoef > 0, generate: { rows: 4 * run.votes, prompts: 4, maxLength: 600 + run.maxNewTokens } });

  it('0 takes the whole update when it fits, else the largest micro-batch that fits', () => {
    expect(plan(need(32) + 1)).toBe(32);
    expect(plan(need(9) - 1)).toBe(8);
    expect(plan(need(1))).toBe(1);
  });

  it('a set microBatch is used as given (at most the update), refused with what to change when it does not fit', () => {
    expect(plan(need(32), { microBatch: 4 })).toBe(4);
    expect(plan(need(32), { microBatch: 64 })).toBe(32);
    expect(() => plan(need(4) - 1, { microBatch: 4 })).toThrow(/even with 4 of its update's 32 sequences .*microBatch 4\).*Lower microBatch \(0 chooses the largest that fits\)/);
    expect(() => plan(need(1) - 1)).toThrow(/even with 1 of its update's 32 sequences .*microBatch chosen automatically/);
  });

  it('on a device that reports no memory, the whole update or the setting', () => {
    const gpu: Device = { name: 'webgpu', keepsStateOnDevice: true };
    expect(plan(1, {}, gpu)).toBe(32);
    expect(plan(1, { microBatch: 8 }, gpu)).toBe(8);
  });
});
