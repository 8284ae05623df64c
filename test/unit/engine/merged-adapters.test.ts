// LoRA adapters merged into the weights for generation (ParameterStore's mergeAdapters): on a
// GPU a decode step is bound by how many nodes it dispatches, and an unmerged adapter adds four
// per linear layer. The merged copy must be W + scale·B·A number for number, follow every step,
// and give the policy the training graph computes: its scored and sampled log-probs within
// rounding of the training graph's, the same greedy tokens as the unmerged generator.
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDecodeGraph } from '../../../main/engine/generate/graphs.ts';
import { Generator } from '../../../main/engine/generate/generator.ts';
import { samplingMode } from '../../../main/engine/generate/sampler.ts';
import { emitModel } from '../../../main/engine/graph/emit.ts';
import { loweringsFor, passesFor } from '../../../main/engine/graph/lowering.ts';
import { LINEAR_MODULES } from '../../../main/engine/nn/config.ts';
import { packedQkvName, qkvProjections } from '../../../main/engine/nn/llama.ts';
import { loraScale, loraTargets, loraWeightName } from '../../../main/engine/nn/lora.ts';
import type { Precision } from '../../../main/engine/runtime/precision.ts';
import { TokenScorer } from '../../../main/engine/runtime/token-logprobs.ts';
import { Trainer, makeCausalBatch } from '../../../main/engine/runtime/trainer.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { randomWeights, tinyLlama } from '../../helpers/tiny-llama.ts';

const onGpu = TEST_DEVICE_NAME !== 'cpu';
// Head size 16: onnxruntime's GroupQueryAttention (the WebGPU decode step) takes multiples of 8,
// and rotates q and k itself, reading the packed q, k, v product, for multiples of 16.
const config = tinyLlama({ vocabSize: 37, hiddenSize: 32, intermediateSize: 24, numHeads: 2, numKvHeads: 1, headDim: 16, attentionBias: true });
const weights = randomWeights(config);
const lora = { rank: 2, alpha: 6, targetModules: [...LINEAR_MODULES] };
const batch = { size: 2, seqLen: 7 };
const sequences = [
  [1, 5, 7, 9, 2, 11, 30],
  [3, 4, 6, 8, 12, 20, 1],
];
// float64 on the CPU (the generator computes in it), so the comparisons there are tight; WebGPU computes in float32.
const dtype = onGpu ? 'float32' : 'float64';
const tolerance = onGpu ? 1e-4 : 1e-10;

const trainers: Trainer[] = [];
afterAll(async () => {
  for (const t of trainers) await t.release();
});

/** A LoRA trainer after three policy steps at a large rate, so every B is far from its zero start. */
async function trainedTrainer(mergeAdapters: boolean, precision: Precision = 'fp32'): Promise<Trainer> {
  const device = await testDevice();
  const trainer = await Trainer.create({
    config,
    weights,
    device,
    mode: { kind: 'lora', ...lora },
    loss: { kind: 'policy', temperature: 1, klCoef: 0, entropyCoef: 0 },
    batch,
    seed: 4,
    dtype: precision === 'mixed' ? 'float32' : dtype,
    precision,
    mergeAdapters,
  });
  trainers.push(trainer);
  const b = makeCausalBatch(
    sequences.map((tokens) => ({ tokens, lossStart: 2 })),
    batch,
  );
  for (let i = 0; i < 3; i++) {
    await trainer.step({ ...b, oldLogprobs: new Float32Array(batch.size * batch.seqLen).fill(-3), advantages: [1, -1] }, 0.05);
  }
  return trainer;
}

function gemmCount(g: Parameters<typeof emitModel>[0]): number {
  const nodes = onnxProto.onnx.ModelProto.decode(emitModel(g, loweringsFor('webgpu'))).graph?.node ?? [];
  return nodes.filter((n) => n.opType === 'Gemm').length;
}

describe(`LoRA adapters merged for generation (${TEST_DEVICE_NAME})`, () => {
  it.runIf(!onGpu)('hold W + scale·B·A for every adapted weight, number for number, recomputed after each step', async () => {
    const trainer = await trainedTrainer(true);
    const store = trainer.store;
    const targets = loraTargets(config, lora);
    const biases = config.numLayers * (config.numHeads + 2 * config.numKvHeads) * config.headDim;
    expect(store.mergedValues).toBe(targets.reduce((n, t) => n + t.inFeatures * t.outFeatures, 0) + biases);
    const adapters = await store.readWeights();
    // q, k and v are held packed, one weight per layer (rows q, then k, then v), with their biases.
    const { numHeads: H, numKvHeads: KVH, headDim: D } = config;
    // Each q, k, v projection: its layer and the rows before it in the packed weight.
    const packed = new Map(Array.from({ length: config.numLayers }, (_, l) => qkvProjections(l).map((prefix, i) => [prefix, { layer: l, rowsBefore: [0, H * D, (H + KVH) * D][i] }] as const)).flat());
    const names = targets.map((t) => {
      const m = packed.get(t.prefix);
      return m ? packedQkvName(m.layer, 'weight') : `${t.prefix}.weight`;
    });
    const merged = trainer.weights().feeds([...names, ...Array.from({ length: config.numLayers }, (_, l) => packedQkvName(l, 'bias'))]);
    expect(Object.keys(merged).filter((n) => n.includes('qkv_proj'))).toHaveLength(2 * config.numLayers);
    for (let l = 0; l < config.numLayers; l++) {
      const bias = merged[packedQkvName(l, 'bias')].data as Float64Array;
      const parts = qkvProjections(l).map((prefix) => weights.get(`${prefix}.bias`)!.data);
      expect(Array.from(bias)).toEqual(parts.flatMap((p) => Array.from(p)));
    }
    const scale = loraScale(lora);
    let largestDelta = 0;
    for (const [ti, t] of targets.entries()) {
      const w = weights.get(`${t.prefix}.weight`)!.data;
      const a = adapters.get(loraWeightName(t.prefix, 'A'))!.data;
      const b = adapters.get(loraWeightName(t.prefix, 'B'))!.data;
      const m = packed.get(t.prefix);
      const held = merged[names[ti]].data as Float64Array;
      const got = m ? held.subarray(m.rowsBefore * t.inFeatures, (m.rowsBefore + t.outFeatures) * t.inFeatures) : held;
      expect(got.length).toBe(w.length);
      for (let o = 0; o < t.outFeatures; o++) {
        for (let i = 0; i < t.inFeatures; i++) {
          let delta = 0;
          for (let r = 0; r < lora.rank; r++) delta += b[o * lora.rank + r] * a[r * t.inFeatures + i];
          largestDelta = Math.max(largestDelta, Math.abs(scale * delta));
          // The adapter's values were read back as float32, the merge used the float64 masters.
          expect(Math.abs(got[o * t.inFeatures + i] - (w[o * t.inFeatures + i] + scale * delta))).toBeLessThan(1e-6);
        }
      }
    }
    // The steps moved the adapters far enough that the check above is not of the base alone.
    expect(largestDelta).toBeGreaterThan(1e-2);
  });

  it('generation graphs read one weight per linear layer and no adapter', async () => {
    const trainer = await trainedTrainer(true);
    const shape = { dtype: 'float32' as const, rows: 2, cacheLength: 8, mode: samplingMode({ temperature: 1, topK: 0, topP: 1 }, config.vocabSize), deviceCache: true, emitLogits: false };
    const merged = buildDecodeGraph(config, trainer.weights(), shape);
    const unmerged = buildDecodeGraph(config, trainer.store, shape);
    const layers = config.numLayers;
    // q, k and v packed as one, o, gate, up, down per layer and the output layer; unmerged, seven
    // products and two more per adapted layer.
    expect(gemmCount(merged)).toBe(5 * layers + 1);
    expect(gemmCount(unmerged)).toBe(7 * layers * 3 + 1);
    expect(merged.inputs.some((s) => s.name.includes('lora_'))).toBe(false);
  });

  it('one graph after each step cuts every trainable weight from the flat buffer once and merges each adapted layer with one product', async () => {
    const trainer = await trainedTrainer(true);
    const nodes = onnxProto.onnx.ModelProto.decode(emitModel(trainer.store.flatReader(true), loweringsFor('webgpu'), passesFor('webgpu'))).graph?.node ?? [];
    const count = (op: string) => nodes.filter((n) => n.opType === op).length;
    const targets = loraTargets(config, lora);
    // A and B of each adapted layer, cut once for the views and the merge alike.
    expect(count('Slice')).toBe(trainer.store.layout.length);
    expect(trainer.store.layout.length).toBe(2 * targets.length);
    // W + scale·B·A as one Gemm (alpha the scale, C the frozen weight); q, k, v then concatenated per layer.
    expect(count('Gemm')).toBe(targets.length);
    expect(count('MatMul') + count('Mul') + count('Add')).toBe(0);
    expect(count('Concat')).toBe(config.numLayers * 2);
  });

  it('the merged policy scores and samples as the training graph and the unmerged generator do', async () => {
    const device = await testDevice();
    const [withMerge, without] = [await trainedTrainer(true), await trainedTrainer(false)];
    const batchIn = makeCausalBatch(
      sequences.map((tokens) => ({ tokens, lossStart: 1 })),
      batch,
    );
    const training = await withMerge.logprobs(batchIn);
    const scorer = new TokenScorer({ config, weights: withMerge.weights(), device });
    const scored = await scorer.score(sequences);
    await scorer.release();
    let worst = 0;
    sequences.forEach((s, r) => {
      for (let j = 0; j < s.length - 1; j++) worst = Math.max(worst, Math.abs(scored[r][j] - training[r * batch.seqLen + j]));
    });
    console.log(`merged adapters (${TEST_DEVICE_NAME}): scored vs training log-probs, largest difference ${worst.toExponential(2)}`);
    // The scorer computes in float32 on every device: the bound for inference against training.
    expect(worst).toBeLessThan(1e-4);

    const request = { promptIds: [[1, 5, 7], [3, 4]], samplesPerPrompt: 2, maxNewTokens: 6, temperature: 0.9, seed: 11 };
    const genMerged = await Generator.create({ config, weights: withMerge.weights(), device, maxLength: 16 });
    const genUnmerged = await Generator.create({ config, weights: without.weights(), device, maxLength: 16 });
    // The base model (adapters off) as a control: the adapters must matter to what is compared.
    const genBase = await Generator.create({ config, weights: await without.referenceWeights(), device, maxLength: 16 });
    const [a, b, base] = [await genMerged.generate(request), await genUnmerged.generate(request), await genBase.generate({ ...request, temperature: 0 })];
    const greedyMerged = await genMerged.generate({ ...request, temperature: 0 });
    for (const g of [genMerged, genUnmerged, genBase]) await g.release();
    const firstStep = (r: typeof a) => r.samples.map((s) => s.logprobs[0]);
    const adapterEffect = Math.max(...firstStep(greedyMerged).map((lp, i) => Math.abs(lp - firstStep(base)[i])));
    expect(adapterEffect, 'the adapters change the first greedy log-prob by').toBeGreaterThan(1e-3);
    let worstSampled = 0;
    a.samples.forEach((s, i) => {
      expect(s.tokenIds).toEqual(b.samples[i].tokenIds);
      s.logprobs.forEach((lp, j) => (worstSampled = Math.max(worstSampled, Math.abs(lp - b.samples[i].logprobs[j]))));
    });
    console.log(`merged adapters (${TEST_DEVICE_NAME}): sampled log-probs against the unmerged generator's, largest difference ${worstSampled.toExponential(2)}`);
    expect(worstSampled).toBeLessThan(tolerance);
  });

  it.runIf(onGpu)('under mixed precision the merged weights, rounded once to float16, sample within its bound of the unmerged ones', async () => {
    const device = await testDevice();
    const [withMerge, without] = [await trainedTrainer(true, 'mixed'), await trainedTrainer(false, 'mixed')];
    const request = { promptIds: [[1, 5, 7], [3, 4]], samplesPerPrompt: 2, maxNewTokens: 6, temperature: 0, seed: 11 };
    const genMerged = await Generator.create({ config, weights: withMerge.weights(), device, maxLength: 16, precision: 'mixed' });
    const genUnmerged = await Generator.create({ config, weights: without.weights(), device, maxLength: 16, precision: 'mixed' });
    const [a, b] = [await genMerged.generate(request), await genUnmerged.generate(request)];
    await genMerged.release();
    await genUnmerged.release();
    let worst = 0;
    let compared = 0;
    a.samples.forEach((s, i) => {
      // Compared up to where greedy decoding first picks another token (a near tie can flip).
      // Relative to the log-prob's size (absolute below 1), as mixed-precision.test.ts measures it.
      for (let j = 0; j < s.tokenIds.length && s.tokenIds[j] === b.samples[i].tokenIds[j]; j++, compared++) {
        const [x, y] = [s.logprobs[j], b.samples[i].logprobs[j]];
        worst = Math.max(worst, Math.abs(x - y) / Math.max(1, Math.abs(y)));
      }
    });
    console.log(`merged adapters (mixed): ${compared} sampled log-probs against the unmerged generator's, largest relative difference ${worst.toExponential(2)}`);
    expect(compared).toBeGreaterThan(4);
    // The bound mixed precision's sampled log-probs meet against fp32 (mixed-precision.test.ts).
    expect(worst).toBeLessThan(1e-2);
  });
});
