// Mixed precision (the run setting `precision: mixed`): the loss scaler's bookkeeping number by
// number, the training graph's types (which values are float16, which stay float32, the casts),
// the refusal on a device without float16 kernels, and on WebGPU the error of mixed precision
// against fp32 on the same weights and batch: log-probs, loss, gradients and a short run's losses.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Generator } from '../../../main/engine/generate/generator.ts';
import type { Graph } from '../../../main/engine/graph/graph.ts';
import type { LlamaConfig } from '../../../main/engine/nn/config.ts';
import { type LoraSpec, initLoraWeights } from '../../../main/engine/nn/lora.ts';
import type { AdamWHyper } from '../../../main/engine/optim/adamw.ts';
import { LOSS_SCALE_DEFAULTS, LossScaler } from '../../../main/engine/optim/loss-scale.ts';
import { type Device, checkPrecision } from '../../../main/engine/runtime/devices.ts';
import { ParameterStore } from '../../../main/engine/runtime/parameter-store.ts';
import type { Precision } from '../../../main/engine/runtime/precision.ts';
import { SeededRng } from '../../../main/engine/runtime/rng.ts';
import { CompiledGraph } from '../../../main/engine/runtime/session.ts';
import { TokenScorer } from '../../../main/engine/runtime/token-logprobs.ts';
import { type BatchShape, STEP_IO, Trainer, type TrainBatch, buildLogprobGraph, buildTrainStepGraph, makeCausalBatch, momentName, positionsFromMask } from '../../../main/engine/runtime/trainer.ts';
import { type HostTensor, HostWeights } from '../../../main/engine/runtime/weights.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { rng } from '../../helpers/gradcheck.ts';
import { randomTokens, randomWeights, tinyLlama } from '../../helpers/tiny-llama.ts';

const CPU: Device = { name: 'cpu', keepsStateOnDevice: false };

describe('the loss scaler (PyTorch GradScaler’s rules)', () => {
  it('halves and skips on an overflow, doubles after growthInterval good steps in a row', () => {
    const s = new LossScaler({ initScale: 1024, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3 });
    expect(s.scale).toBe(1024);
    expect(s.update(false)).toBe(true); // overflow: skip, 1024 → 512
    expect([s.scale, s.skipped]).toEqual([512, 1]);
    expect(s.update(true)).toBe(false);
    expect(s.update(true)).toBe(false);
    expect(s.scale).toBe(512); // two good steps: not yet
    expect(s.update(false)).toBe(true); // an overflow resets the count of good steps
    expect([s.scale, s.skipped]).toEqual([256, 2]);
    expect(s.update(true)).toBe(false);
    expect(s.update(true)).toBe(false);
    expect(s.scale).toBe(256);
    expect(s.update(true)).toBe(false); // the third good step in a row: 256 → 512
    expect(s.scale).toBe(512);
    expect(s.state()).toEqual({ scale: 512, goodSteps: 0 });
    s.update(true);
    const resumed = new LossScaler({ initScale: 1024, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3 });
    resumed.restore(s.state());
    resumed.update(true);
    resumed.update(true); // with the saved good step, this is the third
    expect(resumed.scale).toBe(1024);
  });

  it('starts at 2^16 and grows after 2000 good steps by default, and refuses bad settings', () => {
    expect(LOSS_SCALE_DEFAULTS).toEqual({ initScale: 65536, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000 });
    expect(() => new LossScaler({ ...LOSS_SCALE_DEFAULTS, backoffFactor: 1 })).toThrow('backoffFactor must be in (0, 1)');
    expect(() => new LossScaler({ ...LOSS_SCALE_DEFAULTS, initScale: Infinity })).toThrow('initScale');
    expect(() => new LossScaler().restore({ scale: 0, goodSteps: 0 })).toThrow('finite scale > 0');
  });
});

const CONFIG: LlamaConfig = tinyLlama({ hiddenSize: 64, intermediateSize: 128, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 97 });
const LORA: LoraSpec = { rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] };
const SHAPE: BatchShape = { size: 4, seqLen: 12 };

/** LoRA weights with random B matrices (B = 0 would make every A-gradient zero). */
function loraWeights(): Map<string, HostTensor> {
  const w = initLoraWeights(CONFIG, LORA, new SeededRng(2));
  const random = rng(8);
  for (const [name, t] of w) if (name.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.2 * (2 * random() - 1);
  return w;
}

/** Sequences of different lengths, right-padded: a batch with padding and a loss mask. */
function batch(): TrainBatch {
  const examples = Array.from({ length: SHAPE.size }, (_, b) => ({ tokens: Array.from(randomTokens(SHAPE.seqLen + 1 - 2 * b, CONFIG.vocabSize, 20 + b)) }));
  return makeCausalBatch(examples, SHAPE);
}

/** The Cast nodes of `g` from one float type to another. */
function castsOf(g: Graph, from: string, to: string): number {
  return g.nodes.filter((n) => n.opType === 'Cast' && g.dtypes.get(n.inputs[0]) === from && g.dtypes.get(n.outputs[0]) === to).length;
}

describe('the mixed-precision training graph (built, not run: the CPU has no float16 kernels)', () => {
  it.each([
    ['LoRA', LORA],
    ['full fine-tuning', null],
  ] as const)('%s: every weight is a float16 input (frozen ones as held, trainable ones the views of the float32 masters), products in float16, softmaxes, norms and the update in float32', async (_name, lora) => {
    const store = await ParameterStore.create({ config: CONFIG, weights: randomWeights(CONFIG), device: CPU, lora, loraWeights: lora ? loraWeights() : undefined, precision: 'mixed' });
    try {
      const g = buildTrainStepGraph(store, { batch: SHAPE, loss: { kind: 'sft' }, optimizer: { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, maxGradNorm: 1 } });
      const typeOf = (name: string) => g.dtypes.get(name);
      const weightInputs = g.inputs.filter((s) => s.name.startsWith('model.') || s.name.startsWith('base_model.') || s.name === 'lm_head.weight');
      expect(weightInputs.length).toBe(store.layout.length + (lora ? store.frozen.names.length : 0));
      for (const s of weightInputs) expect([s.name, s.dtype]).toEqual([s.name, 'float16']);
      expect(store.feeds([store.layout[0].name])[store.layout[0].name].type).toBe('float16');
      for (const name of [STEP_IO.lossScale, STEP_IO.paramsFlat]) expect([name, g.inputs.find((s) => s.name === name)?.dtype]).toEqual([name, 'float32']);
      // Float16 to float32: the gradient (cut into the optimizer's range as float16, then one cast
      // for the norm and AdamW: not one per weight), and in every norm and attention layer;
      // float32 to float16: the results of those.
      expect(castsOf(g, 'float16', 'float32')).toBeGreaterThanOrEqual(1 + 2 * CONFIG.numLayers + 1);
      const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
      const gradientCasts = g.nodes.filter((n) => n.opType === 'Cast' && typeOf(n.inputs[0]) === 'float16' && producer.get(n.inputs[0])?.opType === 'Concat');
      expect(gradientCasts.length, 'casts of the float16 gradient cut into the range').toBe(1);
      expect(castsOf(g, 'float32', 'float16')).toBeGreaterThanOrEqual(2 * CONFIG.numLayers + 1);
      // The model's products read float16 (the linear layers, attention, the output layer and their gradients) ...
      const products = g.nodes.filter((n) => n.opType === 'Gemm' || n.opType === 'MatMul');
      const halfProducts = products.filter((n) => n.inputs.every((i) => typeOf(i) === 'float16'));
      const linears = CONFIG.numLayers * 7 + 1;
      expect(halfProducts.length).toBeGreaterThanOrEqual(3 * linears);
      // ... the rest are the float32 norms' gradients (a product with the norm's weight row per norm).
      for (const n of products) if (!halfProducts.includes(n)) expect(n.inputs.map(typeOf)).toEqual(['float32', 'float32']);
      // Softmaxes, log-softmaxes, the norms' statistics and every optimizer value are float32.
      for (const n of g.nodes.filter((n) => ['Softmax', 'LogSoftmax', 'ReduceMean', 'ReduceSumSquare', 'Sqrt'].includes(n.opType))) {
        expect([n.opType, typeOf(n.inputs[0])]).toEqual([n.opType, 'float32']);
      }
      for (const name of [STEP_IO.loss, STEP_IO.gradNorm, STEP_IO.paramsOut, momentName('mOut', 0), momentName('vOut', 0)]) expect([name, typeOf(name)]).toEqual([name, 'float32']);
      // The log-prob graph reads the same types; its output is float32.
      const lp = buildLogprobGraph(CONFIG, store, SHAPE, 1, 'float32', store.compute);
      expect(lp.outputs[0].sym.dtype).toBe('float32');
      expect(lp.nodes.filter((n) => n.opType === 'Gemm' && n.inputs.every((i) => lp.dtypes.get(i) === 'float16')).length).toBe(linears + (lora ? 2 * CONFIG.numLayers * LORA.targetModules.length : 0));
    } finally {
      await store.release();
    }
  });

  it('fp32 graphs have no float16 value at all', async () => {
    const store = await ParameterStore.create({ config: CONFIG, weights: randomWeights(CONFIG), device: CPU, lora: LORA, loraWeights: loraWeights() });
    try {
      const g = buildTrainStepGraph(store, { batch: SHAPE, loss: { kind: 'sft' }, optimizer: { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, maxGradNorm: 1 } });
      expect([...g.dtypes.values()].filter((d) => d === 'float16')).toEqual([]);
      expect(g.inputs.some((s) => s.name === STEP_IO.lossScale)).toBe(false);
    } finally {
      await store.release();
    }
  });
});

describe('precision "mixed" is refused where float16 does not run', () => {
  it('on the CPU, naming the setting and the device, by the trainer and the generator', async () => {
    await expect(checkPrecision(CPU, 'mixed')).rejects.toThrow(/precision "mixed" needs float16 kernels, which device cpu does not have .*Set precision to "fp32", or run on device webgpu or cuda/);
    await expect(checkPrecision(CPU, 'fp32')).resolves.toBeUndefined();
    await expect(Trainer.create({ config: CONFIG, weights: randomWeights(CONFIG), device: CPU, mode: { kind: 'lora', ...LORA }, loss: { kind: 'sft' }, batch: SHAPE, precision: 'mixed' })).rejects.toThrow('precision "mixed"');
    await expect(Generator.create({ config: CONFIG, weights: new HostWeights(randomWeights(CONFIG)), device: CPU, maxLength: 8, precision: 'mixed' })).rejects.toThrow('precision "mixed"');
  });
});

/** The raw gradient under optimizer settings whose first moment is exactly it (β₁ = 0, no clipping). */
const GRADIENT_PROBE: AdamWHyper = { betas: [0, 0.999], eps: 1e-8, weightDecay: 0, maxGradNorm: null };

async function measure(precision: Precision, lora: LoraSpec | null): Promise<{ logprobs: Float32Array; loss: number; gradient: Float32Array }> {
  const device = await testDevice();
  const store = await ParameterStore.create({ config: CONFIG, weights: randomWeights(CONFIG), device, lora, loraWeights: lora ? loraWeights() : undefined, precision });
  const step = await CompiledGraph.create(buildTrainStepGraph(store, { batch: SHAPE, loss: { kind: 'sft' }, optimizer: GRADIENT_PROBE }), device);
  const lp = await CompiledGraph.create(buildLogprobGraph(CONFIG, store, SHAPE, 1, 'float32', store.compute), device);
  try {
    const b = batch();
    const dims = [SHAPE.size, SHAPE.seqLen];
    const f32 = (a: ArrayLike<number>, d: number[]) => new ort.Tensor('float32', Float32Array.from(a), d);
    const tokens = {
      [STEP_IO.inputIds]: new ort.Tensor('int32', Int32Array.from(b.inputIds), dims),
      [STEP_IO.targets]: new ort.Tensor('int32', Int32Array.from(b.targets), dims),
      [STEP_IO.attentionMask]: f32(b.attentionMask!, dims),
      [STEP_IO.positionIds]: new ort.Tensor('int32', positionsFromMask(b.attentionMask!, SHAPE), dims),
    };
    const logprobs = (await lp.run({ ...tokens, ...store.feeds(lp.inputNames) }))[STEP_IO.logprobs].data as Float32Array;
    const feeds: Record<string, ort.Tensor> = {
      ...tokens,
      ...store.feeds(step.inputNames),
      [STEP_IO.lossMask]: f32(b.lossMask, dims),
      [momentName('m', 0)]: f32(new Float32Array(store.size), [store.size]),
      [momentName('v', 0)]: f32(new Float32Array(store.size), [store.size]),
      [STEP_IO.lr]: f32([0], []),
      [STEP_IO.step]: f32([1], []),
    };
    if (precision === 'mixed') feeds[STEP_IO.lossScale] = f32([LOSS_SCALE_DEFAULTS.initScale], []);
    const out = await step.run(feeds);
    return { logprobs: Float32Array.from(logprobs), loss: Number(out[STEP_IO.loss].data[0]), gradient: Float32Array.from(out[momentName('mOut', 0)].data as Float32Array) };
  } finally {
    await step.release();
    await lp.release();
    await store.release();
  }
}

/** max |a − b| / max(1, |b|): the error relative to the log-prob's size (absolute below 1). */
function maxRelativeDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}

function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/**
 * The bounds, from float16's unit roundoff u = 2⁻¹¹ ≈ 4.9e-4: a log-prob is its logit less the
 * log-sum-exp, and a logit comes out of a float16 product whose inputs have been rounded to
 * float16 a few times per layer (the norm's output, each product's output, the residual sum), so
 * its error is a few u times its size. Measured on WebGPU (lavapipe): at most 3.2e-3 (≈ 6.5u) of
 * max(1, |log-prob|), and 6.3e-3 relative L2 on the gradient (its backward pass rounds as often
 * again); the bounds leave three to five times that: 1e-2 (20u) and 3e-2.
 */
const LOGPROB_TOLERANCE = 1e-2;
const GRADIENT_TOLERANCE = 3e-2;
/** The losses of a short run: each step adds the gradient’s error to the weights’ (measured: at most 2.7e-3 relative over 50 steps, as the loss falls from 5.15 to 0.63). */
const CURVE_TOLERANCE = 2e-2;

describe.skipIf(TEST_DEVICE_NAME === 'cpu')('mixed precision against fp32 on the same weights (WebGPU: `npm run test:webgpu`)', () => {
  it.each([
    ['LoRA', LORA],
    ['full fine-tuning', null],
  ] as const)('%s: log-probs, loss and gradient', async (name, lora) => {
    const fp32 = await measure('fp32', lora);
    const mixed = await measure('mixed', lora);
    const lpDiff = maxRelativeDiff(mixed.logprobs, fp32.logprobs);
    const lossDiff = Math.abs(mixed.loss - fp32.loss) / Math.abs(fp32.loss);
    const gradErr = relativeL2(mixed.gradient, fp32.gradient);
    console.log(`mixed vs fp32 on ${TEST_DEVICE_NAME} (${name}): log-probs max relative error ${lpDiff.toExponential(2)}, loss relative error ${lossDiff.toExponential(2)}, gradient relative L2 error ${gradErr.toExponential(2)}`);
    expect(lpDiff).toBeLessThan(LOGPROB_TOLERANCE);
    expect(lossDiff).toBeLessThan(LOGPROB_TOLERANCE);
    expect(gradErr).toBeLessThan(GRADIENT_TOLERANCE);
  });
});

describe.skipIf(TEST_DEVICE_NAME === 'cpu')('mixed-precision training steps (WebGPU: `npm run test:webgpu`)', () => {
  const create = async (precision: Precision, lossScale?: ConstructorParameters<typeof LossScaler>[0]) =>
    Trainer.create({ config: CONFIG, weights: randomWeights(CONFIG), device: await testDevice(), mode: { kind: 'lora', ...LORA }, loss: { kind: 'sft' }, batch: SHAPE, seed: 3, precision, lossScale });

  it(`a 50-step run's losses follow fp32's within ${CURVE_TOLERANCE} relative`, async () => {
    const STEPS = 50;
    const b = batch();
    const curves: Record<Precision, number[]> = { fp32: [], mixed: [] };
    for (const precision of ['fp32', 'mixed'] as const) {
      const trainer = await create(precision);
      try {
        for (let i = 0; i < STEPS; i++) {
          const r = await trainer.step(b, 3e-3);
          expect(r.skipped).toBe(false);
          if (precision === 'mixed') expect(r.lossScale).toBe(LOSS_SCALE_DEFAULTS.initScale);
          curves[precision].push(r.loss);
        }
      } finally {
        await trainer.release();
      }
    }
    const worst = Math.max(...curves.fp32.map((l, i) => Math.abs(curves.mixed[i] - l) / l));
    const last = STEPS - 1;
    console.log(`mixed vs fp32 on ${TEST_DEVICE_NAME}, ${STEPS} LoRA steps: loss ${curves.fp32[0].toFixed(4)} → ${curves.fp32[last].toFixed(4)} (fp32), ${curves.mixed[last].toFixed(4)} (mixed); worst relative difference ${worst.toExponential(2)}`);
    expect(curves.fp32[last]).toBeLessThan(0.8 * curves.fp32[0]);
    expect(worst).toBeLessThan(CURVE_TOLERANCE);
  });

  it('a float16 overflow skips the step, keeps the weights and halves the scale; a checkpoint keeps the scale', async () => {
    // 2^100 is a float32 but no float16: the backward pass overflows at once.
    const trainer = await create('mixed', { initScale: 2 ** 100, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2 });
    try {
      const b = batch();
      const before = Float32Array.from(await trainer.store.readFlat());
      const first = await trainer.step(b, 1e-2);
      expect([first.skipped, first.step, first.lossScale, Number.isFinite(first.gradNorm)]).toEqual([true, 0, 2 ** 100, false]);
      expect(Float32Array.from(await trainer.store.readFlat())).toEqual(before);
      const second = await trainer.step(b, 1e-2);
      expect([second.skipped, second.lossScale]).toEqual([true, 2 ** 99]);
      // Halving until the scaled gradient fits float16: the first update, one good step of the two before the scale grows.
      let r = second;
      while (r.skipped) r = await trainer.step(b, 1e-2);
      const fits = r.lossScale!;
      expect(fits).toBeLessThan(2 ** 40);
      expect([r.step, trainer.lossScale, trainer.skippedUpdates]).toEqual([1, fits, Math.log2(2 ** 100 / fits)]);
      // A checkpoint keeps the scale and its count of good steps: the resumed trainer's next good step doubles it.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-mixed-'));
      try {
        await trainer.save(dir);
        const resumed = await create('mixed', { initScale: 2 ** 100, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2 });
        try {
          await resumed.load(dir);
          expect(resumed.lossScale).toBe(fits);
          const next = await resumed.step(b, 1e-2);
          expect([next.skipped, next.lossScale, resumed.lossScale]).toEqual([false, fits, 2 * fits]);
        } finally {
          await resumed.release();
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      await trainer.release();
    }
  });
});

describe.skipIf(TEST_DEVICE_NAME === 'cpu')('mixed-precision generation (WebGPU: `npm run test:webgpu`)', () => {
  it(`samples with float16 weights and cache; its log-probs are the mixed training graph's, and fp32's within ${LOGPROB_TOLERANCE}; the critic's hidden states float32`, async () => {
    const device = await testDevice();
    const trainers = await Promise.all(
      (['fp32', 'mixed'] as const).map((precision) => Trainer.create({ config: CONFIG, weights: randomWeights(CONFIG), device, mode: { kind: 'full' }, loss: { kind: 'sft' }, batch: SHAPE, precision })),
    );
    const [fp32, mixed] = trainers;
    try {
      const gen = await Generator.create({ config: CONFIG, weights: mixed.weights(), device, maxLength: SHAPE.seqLen + 1, precision: 'mixed' });
      const prompts = [Array.from(randomTokens(3, CONFIG.vocabSize, 40)), Array.from(randomTokens(5, CONFIG.vocabSize, 41))];
      const { samples } = await gen.generate({ promptIds: prompts, samplesPerPrompt: 2, maxNewTokens: 6, temperature: 1, seed: 5, eosTokenIds: [] });
      await gen.release();
      // Each sample as a training row: prompt then response, scored at the response's positions.
      const examples = samples.map((x) => ({ tokens: [...prompts[x.promptIndex], ...x.tokenIds] }));
      const b = makeCausalBatch(examples, SHAPE);
      const [lp32, lpMixed] = await Promise.all([fp32.logprobs(b), mixed.logprobs(b)]);
      const picked = (lp: ArrayLike<number>) => samples.flatMap((x, r) => x.tokenIds.map((_, j) => lp[r * SHAPE.seqLen + prompts[x.promptIndex].length - 1 + j]));
      const sampled = samples.flatMap((x) => x.logprobs);
      const vsTraining = maxRelativeDiff(sampled, picked(lpMixed));
      const vsFp32 = maxRelativeDiff(sampled, picked(lp32));
      // The token scorer (the agent's re-scoring) under mixed precision reads the same.
      const scorer = new TokenScorer({ config: CONFIG, weights: mixed.weights(), device, precision: 'mixed' });
      const scores = await scorer.score(examples.map((e) => e.tokens));
      await scorer.release();
      const scored = samples.flatMap((x, r) => x.tokenIds.map((_, j) => scores[r][prompts[x.promptIndex].length - 1 + j]));
      const vsScorer = maxRelativeDiff(scored, picked(lpMixed));
      console.log(`mixed generation on ${TEST_DEVICE_NAME}: ${sampled.length} sampled log-probs, max relative difference ${vsTraining.toExponential(2)} to the mixed training graph's, ${vsFp32.toExponential(2)} to fp32's; the mixed token scorer's ${vsScorer.toExponential(2)} to the training graph's`);
      expect(sampled.every(Number.isFinite)).toBe(true);
      expect(vsTraining).toBeLessThan(LOGPROB_TOLERANCE);
      expect(vsFp32).toBeLessThan(LOGPROB_TOLERANCE);
      expect(vsScorer).toBeLessThan(LOGPROB_TOLERANCE);
      // The hidden states the critic's value head reads: float32 out of the float16 model.
      const [h32, hMixed] = await Promise.all([fp32.hiddenStates(b), mixed.hiddenStates(b)]);
      expect(hMixed).toBeInstanceOf(Float32Array);
      expect(relativeL2(hMixed, h32)).toBeLessThan(LOGPROB_TOLERANCE);
      // A trainable copy (the EMA teacher's) of the same values generates the same, from its own float16 views.
      const copy = await mixed.store.trainableCopy(await mixed.store.readFlat());
      const viaCopy = await Generator.create({ config: CONFIG, weights: copy, device, maxLength: SHAPE.seqLen + 1, precision: 'mixed' });
      const again = await viaCopy.generate({ promptIds: prompts, samplesPerPrompt: 2, maxNewTokens: 6, temperature: 1, seed: 5, eosTokenIds: [] });
      await viaCopy.release();
      copy.release();
      expect(again.samples.map((x) => [x.tokenIds, x.logprobs])).toEqual(samples.map((x) => [x.tokenIds, x.logprobs]));
    } finally {
      for (const t of trainers) await t.release();
    }
  });

});
