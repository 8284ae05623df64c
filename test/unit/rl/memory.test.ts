// The memory a run plans for, and the limit it is held to.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../main/engine/nn/config.ts';
import { readJson } from '../../../main/engine/nn/hf-model.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { planRunMemory } from '../../../main/engine/rl/loop.ts';
import { type MemoryBudget, adaptedWeightValues, adaptersMerged, estimateHostBytes, estimateRunBytes, heldWeightBytes, hostMemoryBudget, memoryBudget, memoryLimitBytes, weightCount } from '../../../main/engine/rl/memory.ts';
import { parseNvidiaSmiMemory } from '../../../main/engine/runtime/adapters.ts';
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
  const host = (bytes: number): MemoryBudget => ({ bytes, source: 'AUTODIDACT_MEMORY_LIMIT', onDevice: false });
  const plan = (budget: MemoryBudget | number | null, settings: Partial<typeof run> = {}) =>
    planRunMemory(config, { ...run, ...settings }, update, 600, 600, { judge: false, teacher: false }, typeof budget === 'number' ? host(budget) : budget);
  const need = (micro: number, prompts = 4, onDevice = false) =>
    estimateRunBytes(config, { ...shapes(micro), reference: run.klCoef > 0, generate: { rows: prompts * run.votes, prompts, maxLength: 600 + run.maxNewTokens } }, onDevice);

  it('0 takes the whole update when it fits, else the largest micro-batch that fits', () => {
    expect(plan(need(32) + 1)).toMatchObject({ microBatch: 32, generationRows: 4 * run.votes, estimateBytes: need(32) });
    expect(plan(need(9) - 1).microBatch).toBe(8);
    expect(plan(need(1)).microBatch).toBe(1);
  });

  it('a set microBatch is used as given (at most the update), refused with what to change when it does not fit', () => {
    expect(plan(need(32), { microBatch: 4 }).microBatch).toBe(4);
    expect(plan(need(32), { microBatch: 64 }).microBatch).toBe(32);
    expect(() => plan(need(4, 1) - 1, { microBatch: 4 })).toThrow(/even with 4 of its update's 32 sequences .*microBatch 4\).*Lower microBatch \(0 chooses the largest that fits\)/);
    expect(() => plan(need(1, 1) - 1)).toThrow(/even with 1 of its update's 32 sequences .*microBatch chosen automatically.*one prompt's 16 samples \(votes\)/);
  });

  it('where a micro-batch of one does not fit, samples fewer prompts at a time', () => {
    // The generation's share: the KV cache and prefill of 4 prompts × 16 votes, then of 2.
    expect(need(1, 4)).toBeGreaterThan(need(1, 2));
    expect(plan(need(1, 4) - 1)).toMatchObject({ microBatch: 1, generationRows: 3 * run.votes });
    expect(plan(need(1, 2))).toMatchObject({ microBatch: 1, generationRows: 2 * run.votes });
  });

  it('plans a GPU against its own memory: the process itself is not in it', () => {
    const gpu: MemoryBudget = { bytes: need(8, 4, true), source: 'AUTODIDACT_GPU_MEMORY', onDevice: true };
    expect(need(8, 4, true)).toBeCloseTo(need(8, 4) - 0.3 * GIB, -3);
    expect(plan(gpu).microBatch).toBe(8);
    expect(() => plan({ ...gpu, bytes: 1 })).toThrow(/of GPU memory, more than the 0.0 GB it may use \(AUTODIDACT_GPU_MEMORY\)/);
  });

  it('with no budget (a GPU that reports no memory), the whole update or the setting, every row at once', () => {
    expect(plan(null)).toMatchObject({ microBatch: 32, generationRows: 4 * run.votes, estimateBytes: null });
    expect(plan(null, { microBatch: 8 }).microBatch).toBe(8);
  });
});

describe('memoryBudget', () => {
  const cpu: Device = { name: 'cpu', keepsStateOnDevice: false };
  const webgpu: Device = { name: 'webgpu', keepsStateOnDevice: true };
  const nvidia = async () => ({ totalBytes: 24 * GIB, freeBytes: 20 * GIB });
  const none = async () => undefined;

  it('the CPU: the host limit', async () => {
    expect(await memoryBudget(cpu, { host: '8G' }, none)).toEqual({ bytes: 8 * GIB, source: 'AUTODIDACT_MEMORY_LIMIT', onDevice: false });
    expect(hostMemoryBudget(undefined).bytes).toBe(0.75 * os.totalmem());
  });

  it('a GPU: AUTODIDACT_GPU_MEMORY, else 90% of what nvidia-smi reports free, else none', async () => {
    expect(await memoryBudget(webgpu, { gpu: '16G' }, nvidia)).toEqual({ bytes: 16 * GIB, source: 'AUTODIDACT_GPU_MEMORY', onDevice: true });
    const fromSmi = await memoryBudget(webgpu, {}, nvidia);
    expect(fromSmi?.bytes).toBe(0.9 * 20 * GIB);
    expect(fromSmi?.source).toMatch(/90% of the 20 GB free of GPU 0's 24 GB \(nvidia-smi\); AUTODIDACT_GPU_MEMORY sets it/);
    expect(await memoryBudget(webgpu, {}, none)).toBeNull();
    await expect(memoryBudget(webgpu, { gpu: 'most' }, none)).rejects.toThrow(/AUTODIDACT_GPU_MEMORY must be a size such as 8G/);
  });

  it('reads nvidia-smi\'s memory query (MiB, GPU 0)', () => {
    expect(parseNvidiaSmiMemory('143771, 142996\n')).toEqual({ totalBytes: 143771 * 1024 ** 2, freeBytes: 142996 * 1024 ** 2 });
    expect(parseNvidiaSmiMemory('NVIDIA-SMI has failed')).toBeUndefined();
  });
});

describe('a Qwen2.5-1.5B-shaped LoRA TTRL run', () => {
  // Qwen2.5-1.5B's config: 28 layers of 1536 hidden, 8960 intermediate, 12 heads over 2 KV heads, a tied 151,936-token vocabulary.
  const config = parseConfig(
    { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 151936, hidden_size: 1536, intermediate_size: 8960, num_attention_heads: 12, num_key_value_heads: 2, num_hidden_layers: 28, max_position_embeddings: 32768, tie_word_embeddings: true, rms_norm_eps: 1e-6, rope_theta: 1e6, hidden_act: 'silu' },
    'qwen2.5-1.5b/config.json',
  );
  const run = parseRunConfig({ method: 'ttrl', model: 'qwen', dataset: 'arithmetic', mode: 'lora' });
  const gpu = (gib: number): MemoryBudget => ({ bytes: gib * GIB, source: 'AUTODIDACT_GPU_MEMORY', onDevice: true });
  const plan = (prompt: number, gib: number) =>
    planRunMemory(config, run, { size: run.promptsPerStep * run.trainSamples, seqLen: prompt + run.maxNewTokens - 1 }, prompt, prompt, { judge: false, teacher: false }, gpu(gib));

  it('is planned into a 24 GB GPU by micro-batches, where the whole update would not fit', () => {
    for (const prompt of [64, 256]) {
      const p = plan(prompt, 24);
      expect(p.estimateBytes!).toBeLessThanOrEqual(24 * GIB);
      expect(p.microBatch).toBeLessThan(run.promptsPerStep * run.trainSamples);
      expect(p.generationRows).toBe(run.promptsPerStep * run.votes);
    }
    // On an 80 GB card the 64-token prompts' update goes in one pass.
    expect(plan(64, 80).microBatch).toBe(run.promptsPerStep * run.trainSamples);
  });

  it('keeps a copy of the adapted weights with the adapters merged in for generation only where it fits beside the planned passes', () => {
    const merged = adaptedWeightValues(config, run.loraTargets);
    // The adapted layers of the 28 (the default targets: q, k, v, o): q, o 1536²; k, v 1536 × 256 (gate, up, down would be 1536 × 8960).
    const size = { q_proj: 1536 * 1536, k_proj: 1536 * 256, v_proj: 1536 * 256, o_proj: 1536 * 1536, gate_proj: 1536 * 8960, up_proj: 1536 * 8960, down_proj: 1536 * 8960 };
    expect(merged).toBe(28 * run.loraTargets.reduce((n, m) => n + size[m], 0));
    expect(adaptedWeightValues(config, ['gate_proj'])).toBe(28 * 1536 * 8960);
    const roomy = plan(64, 80);
    expect(roomy.mergeAdapters).toBe(true);
    // A budget a byte short of the merged plan: the same passes, no merged copy, and its bytes out of the estimate.
    const tight = planRunMemory(config, run, { size: run.promptsPerStep * run.trainSamples, seqLen: 63 + run.maxNewTokens }, 64, 64, { judge: false, teacher: false }, gpu(roomy.estimateBytes! / GIB - 1 / GIB));
    expect(tight.microBatch).toBe(roomy.microBatch);
    expect(tight.generationRows).toBe(roomy.generationRows);
    expect(tight.mergeAdapters).toBe(false);
    expect(roomy.estimateBytes! - tight.estimateBytes!).toBe(4 * merged);
    // Under mixed precision the copy is float16, as the weights are; never on the CPU, nor under full fine-tuning.
    const mixedPlan = planRunMemory(config, { ...run, precision: 'mixed' }, { size: 32, seqLen: 63 + run.maxNewTokens }, 64, 64, { judge: false, teacher: false }, gpu(80));
    const mixedShapes = { update: { size: 32, seqLen: 63 + run.maxNewTokens, microBatch: mixedPlan.microBatch }, reference: false, generate: { rows: 64, prompts: 4, maxLength: 64 + run.maxNewTokens }, trainable: 1, precision: 'mixed' as const };
    expect(estimateRunBytes(config, { ...mixedShapes, merged }, true) - estimateRunBytes(config, mixedShapes, true)).toBe(2 * merged);
    expect(mixedPlan.mergeAdapters).toBe(true);
    const cpu = { bytes: 1024 * GIB, source: 'AUTODIDACT_MEMORY_LIMIT', onDevice: false };
    expect(planRunMemory(config, run, { size: 32, seqLen: 63 + run.maxNewTokens }, 64, 64, { judge: false, teacher: false }, cpu).mergeAdapters).toBe(false);
    expect(plan(64, 80).mergeAdapters && !planRunMemory(config, { ...run, mode: 'full' }, { size: 32, seqLen: 63 + run.maxNewTokens }, 64, 64, { judge: false, teacher: false }, gpu(1024)).mergeAdapters).toBe(true);
    // AUTODIDACT_MERGE_ADAPTERS=0 turns it off.
    const shapes64 = { update: { size: 32, seqLen: 63 + run.maxNewTokens }, reference: false, generate: { rows: 64, prompts: 4, maxLength: 64 + run.maxNewTokens }, trainable: 1 };
    expect([adaptersMerged(config, run, shapes64, gpu(80), '0'), adaptersMerged(config, run, shapes64, gpu(80), '1'), adaptersMerged(config, run, shapes64, null, '0')]).toEqual([false, true, false]);
    // A GPU that reports no memory (WebGPU off NVIDIA): the run's settings as given, merged.
    expect(planRunMemory(config, run, { size: 32, seqLen: 63 + run.maxNewTokens }, 64, 64, { judge: false, teacher: false }, null).mergeAdapters).toBe(true);
    console.log(`Qwen2.5-1.5B-shaped LoRA run: the merged copy takes ${((4 * merged) / GIB).toFixed(2)} GiB in fp32, ${((2 * merged) / GIB).toFixed(2)} under mixed; at 24 GB merged: fp32 ${plan(64, 24).mergeAdapters}, mixed ${planRunMemory(config, { ...run, precision: 'mixed' }, { size: 32, seqLen: 63 + run.maxNewTokens }, 64, 64, { judge: false, teacher: false }, gpu(24)).mergeAdapters}`);
  });

  it('under mixed precision counts the weights and KV cache on the device in float16: 2 bytes a value fewer', () => {
    const shapes = { update: { size: 32, seqLen: 79 }, reference: true, generate: { rows: 64, prompts: 4, maxLength: 80 }, trainable: 1000 };
    const kv = 2 * 28 * 64 * 2 * 128 * 80;
    expect(estimateRunBytes(config, shapes, true) - estimateRunBytes(config, { ...shapes, precision: 'mixed' }, true)).toBe(2 * (2 * weightCount(config) + kv));
    // The host's memory is not the device's: unchanged.
    expect(estimateRunBytes(config, { ...shapes, precision: 'mixed' })).toBe(estimateRunBytes(config, shapes));
    const mixed = planRunMemory(config, { ...run, precision: 'mixed' }, { size: 32, seqLen: 255 + run.maxNewTokens }, 256, 256, { judge: false, teacher: false }, gpu(24));
    expect(mixed.microBatch).toBeGreaterThanOrEqual(plan(256, 24).microBatch);
  });

  it("counts the host's share of the GPU run by the bytes its weights are held in: a bf16 checkpoint under mixed precision in half the fp32 load's", () => {
    // heldWeightBytes measures the arrays loadModelFolder holds: 4 bytes a value widened, 2 kept float16.
    const held = new Map([
      ['a', { shape: [3, 5], data: new Float32Array(15) }],
      ['b', { shape: [7], half: new Uint16Array(7) }],
    ]);
    expect(heldWeightBytes(held)).toBe(15 * 4 + 7 * 2);
    const values = weightCount(config);
    const [fp32, mixed] = [4 * values, 2 * values];
    const lora = 28 * run.loraTargets.length * run.loraRank * 2 * 8960;
    const hostFp32 = estimateHostBytes(fp32, { trainable: lora });
    const hostMixed = estimateHostBytes(mixed, { trainable: lora });
    expect(hostFp32 - hostMixed).toBe(2 * values);
    console.log(`Qwen2.5-1.5B-shaped LoRA run on a GPU (${values} weight values): host ${(hostFp32 / GIB).toFixed(2)} GiB with the weights widened to float32, ${(hostMixed / GIB).toFixed(2)} GiB held as float16`);
    // A host allowed 5 GB: the fp32 load is refused naming what to change; the float16 one fits.
    const host = (heldBytes: number) => ({ heldBytes, budget: { bytes: 5 * GIB, source: 'AUTODIDACT_MEMORY_LIMIT', onDevice: false } });
    const update = { size: 32, seqLen: 63 + run.maxNewTokens };
    expect(() => planRunMemory(config, run, update, 64, 64, { judge: false, teacher: false }, gpu(24), host(fp32))).toThrow(
      /this run would hold about 6\.\d GB of the host's memory, more than the 5\.0 GB it may use \(AUTODIDACT_MEMORY_LIMIT\): the model's weights take 5\.\d GB as loaded\. With a float16 or bfloat16 checkpoint, precision "mixed" holds its weights in 2 bytes a value/,
    );
    const fits = planRunMemory(config, { ...run, precision: 'mixed' }, update, 64, 64, { judge: false, teacher: false }, gpu(24), host(mixed));
    expect(fits.hostEstimateBytes).toBe(hostMixed);
    // Without a GPU budget (WebGPU off NVIDIA) the host is still held to its own.
    expect(() => planRunMemory(config, run, update, 64, 64, { judge: false, teacher: false }, null, host(fp32))).toThrow(/of the host's memory/);
  });
});
