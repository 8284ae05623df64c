// LoRA: PEFT's names, shapes and initialisation; a fresh adapter leaves the model unchanged;
// training moves only the adapter.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { LINEAR_MODULES } from '../../../main/engine/nn/config.ts';
import {
  type LoraSpec,
  initLoraWeights,
  loraScale,
  loraShapes,
  loraSpecFromPeftConfig,
  loraTargets,
  peftAdapterConfig,
} from '../../../main/engine/nn/lora.ts';
import { SeededRng } from '../../../main/engine/runtime/rng.ts';
import { CompiledGraph } from '../../../main/engine/runtime/session.ts';
import { type BatchShape, STEP_IO, Trainer, buildLogprobGraph, makeCausalBatch, positionsFromMask } from '../../../main/engine/runtime/trainer.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { testDevice } from '../../helpers/device.ts';
import { randomWeights, tinyLlama } from '../../helpers/tiny-llama.ts';

const SHAPE: BatchShape = { size: 2, seqLen: 6 };

describe('LoRA weights', () => {
  const config = tinyLlama({ numLayers: 2, hiddenSize: 8, numHeads: 2, numKvHeads: 1, headDim: 4, intermediateSize: 12 });

  it('has PEFT names and [rank, in] / [out, rank] shapes for each targeted layer', () => {
    const spec: LoraSpec = { rank: 3, alpha: 6, targetModules: ['k_proj', 'down_proj'] };
    expect(loraShapes(config, spec)).toEqual([
      ['base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight', [3, 8]],
      ['base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight', [4, 3]],
      ['base_model.model.model.layers.0.mlp.down_proj.lora_A.weight', [3, 12]],
      ['base_model.model.model.layers.0.mlp.down_proj.lora_B.weight', [8, 3]],
      ['base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight', [3, 8]],
      ['base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight', [4, 3]],
      ['base_model.model.model.layers.1.mlp.down_proj.lora_A.weight', [3, 12]],
      ['base_model.model.model.layers.1.mlp.down_proj.lora_B.weight', [8, 3]],
    ]);
    expect(loraTargets(config, { ...spec, targetModules: [...LINEAR_MODULES] })).toHaveLength(14);
    expect(loraScale(spec)).toBe(2);
  });

  it('initialises A uniformly within ±1/√in from the seed and B to zero', () => {
    const spec: LoraSpec = { rank: 4, alpha: 8, targetModules: ['q_proj', 'up_proj'] };
    const a = initLoraWeights(config, spec, new SeededRng(1));
    const again = initLoraWeights(config, spec, new SeededRng(1));
    const other = initLoraWeights(config, spec, new SeededRng(2));
    for (const [name, t] of a) {
      expect(t.data).toEqual(again.get(name)!.data);
      if (name.includes('lora_B')) {
        expect(t.data.every((x) => x === 0)).toBe(true);
      } else {
        const bound = 1 / Math.sqrt(t.shape[1]);
        expect(t.data.every((x) => Math.abs(x) <= bound)).toBe(true);
        // Spread over the interval, not bunched near zero.
        expect(Math.max(...t.data.map(Math.abs))).toBeGreaterThan(0.7 * bound);
        expect(t.data).not.toEqual(other.get(name)!.data);
      }
    }
  });

  it('rejects specs it cannot apply, naming what is wrong', () => {
    expect(() => loraShapes(config, { rank: 0, alpha: 1, targetModules: ['q_proj'] })).toThrow(/rank/);
    expect(() => loraShapes(config, { rank: 2, alpha: 1, targetModules: [] })).toThrow(/target module/);
    expect(() => loraShapes(config, { rank: 2, alpha: 1, targetModules: ['lm_head' as 'q_proj'] })).toThrow(/"lm_head"/);
  });

  it('writes and reads PEFT adapter configs', () => {
    const spec: LoraSpec = { rank: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'] };
    const json = peftAdapterConfig(spec, 'Qwen/Qwen2.5-0.5B');
    expect(json).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, lora_dropout: 0, bias: 'none', target_modules: ['q_proj', 'v_proj'], base_model_name_or_path: 'Qwen/Qwen2.5-0.5B' });
    expect(loraSpecFromPeftConfig(JSON.parse(JSON.stringify(json)))).toEqual(spec);
    expect(loraSpecFromPeftConfig({ ...json, target_modules: 'all-linear' }).targetModules).toEqual([...LINEAR_MODULES]);
    expect(() => loraSpecFromPeftConfig({ ...json, use_dora: true })).toThrow(/DoRA/);
    expect(() => loraSpecFromPeftConfig({ ...json, peft_type: 'IA3' })).toThrow(/IA3/);
    expect(() => loraSpecFromPeftConfig({ ...json, rank_pattern: { q_proj: 4 } })).toThrow(/rank_pattern/);
  });

  it('reads the full module paths PEFT saves for "all-linear"', () => {
    const json = peftAdapterConfig({ rank: 4, alpha: 8, targetModules: ['q_proj'] }, 'base');
    const paths = [0, 1].flatMap((l) => [`model.layers.${l}.mlp.up_proj`, `model.layers.${l}.self_attn.q_proj`]);
    expect(loraSpecFromPeftConfig({ ...json, target_modules: paths }).targetModules.slice().sort()).toEqual(['q_proj', 'up_proj']);
    // Different layers per module cannot be expressed as module names: refuse rather than widen.
    expect(() => loraSpecFromPeftConfig({ ...json, target_modules: ['model.layers.0.mlp.up_proj', 'model.layers.1.self_attn.q_proj'] })).toThrow(
      /individual layers/,
    );
    expect(() => loraSpecFromPeftConfig({ ...json, target_modules: '.*attn.*' })).toThrow(/regular expression/);
  });
});

describe('LoRA training', () => {
  const config = tinyLlama({ vocabSize: 13, hiddenSize: 16, numHeads: 4, numKvHeads: 2, headDim: 4, intermediateSize: 24 });
  const batch = makeCausalBatch(
    [
      { tokens: [1, 5, 7, 2, 9, 11, 3], lossStart: 3 },
      { tokens: [4, 4, 8, 12, 0], lossStart: 1 },
    ],
    SHAPE,
  );

  /** Log-probs of the batch under plain frozen weights, with no LoRA anywhere in the graph. */
  async function plainLogprobs(weights: HostWeights): Promise<number[]> {
    const device = await testDevice();
    const graph = await CompiledGraph.create(buildLogprobGraph(config, weights, SHAPE, 1, 'float32'), device);
    const dims = [SHAPE.size, SHAPE.seqLen];
    const out = await graph.run({
      ...weights.feeds(graph.inputNames),
      [STEP_IO.inputIds]: new ort.Tensor('int32', Int32Array.from(batch.inputIds), dims),
      [STEP_IO.targets]: new ort.Tensor('int32', Int32Array.from(batch.targets), dims),
      [STEP_IO.attentionMask]: new ort.Tensor('float32', batch.attentionMask, dims),
      [STEP_IO.positionIds]: new ort.Tensor('int32', positionsFromMask(batch.attentionMask, SHAPE), dims),
    });
    await graph.release();
    return Array.from(out[STEP_IO.logprobs].data as Float32Array);
  }

  it('a fresh adapter (B = 0) gives the base model’s log-probs; training moves only A and B', async () => {
    const weights = randomWeights(config);
    const snapshot = new Map([...weights].map(([k, t]) => [k, t.data.slice()]));
    const trainer = await Trainer.create({
      config,
      weights,
      device: await testDevice(),
      mode: { kind: 'lora', rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] },
      optimizer: { weightDecay: 0 },
      loss: { kind: 'sft' },
      batch: SHAPE,
      seed: 3,
    });
    expect(trainer.store.layout.every((e) => /\.lora_[AB]\.weight$/.test(e.name))).toBe(true);
    const base = await plainLogprobs(new HostWeights(weights));
    const withAdapter = Array.from(await trainer.logprobs(batch));
    const reference = Array.from(await trainer.logprobs(batch, { reference: true }));
    withAdapter.forEach((x, i) => expect(x).toBeCloseTo(base[i], 6));
    reference.forEach((x, i) => expect(x).toBeCloseTo(base[i], 6));

    const flat0 = await trainer.store.readFlat();
    let first = 0;
    let last = 0;
    for (let s = 0; s < 8; s++) {
      const r = await trainer.step(batch, 2e-2);
      if (s === 0) first = r.loss;
      last = r.loss;
    }
    expect(last).toBeLessThan(first);
    // The base weights are untouched, and with adapters off the model is still the base.
    for (const [name, t] of weights) expect(t.data, name).toEqual(snapshot.get(name));
    const referenceAfter = Array.from(await trainer.logprobs(batch, { reference: true }));
    referenceAfter.forEach((x, i) => expect(x).toBeCloseTo(base[i], 6));
    const trained = Array.from(await trainer.logprobs(batch));
    expect(trained.some((x, i) => Math.abs(x - base[i]) > 1e-3)).toBe(true);
    // B has left zero and A has moved.
    const flat = await trainer.store.readFlat();
    for (const e of trainer.store.layout) {
      const moved = flat.subarray(e.offset, e.offset + e.size).some((x, i) => x !== flat0[e.offset + i]);
      expect(moved, e.name).toBe(true);
    }
    await trainer.release();
  });
});
