// The training step: its gradient against finite differences, its AdamW update against a host
// computation, skipped updates, and a tiny built-in model learning a toy task.
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { LINEAR_MODULES, type LlamaConfig } from '../../../main/engine/nn/config.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { type LoraSpec, initLoraWeights } from '../../../main/engine/nn/lora.ts';
import type { AdamWHyper } from '../../../main/engine/optim/adamw.ts';
import { learningRate } from '../../../main/engine/optim/schedule.ts';
import { type FlatArray, ParameterStore, type StoreDType } from '../../../main/engine/runtime/parameter-store.ts';
import { SeededRng } from '../../../main/engine/runtime/rng.ts';
import { CompiledGraph } from '../../../main/engine/runtime/session.ts';
import {
  type BatchShape,
  STEP_IO,
  Trainer,
  type TrainBatch,
  buildLogprobGraph,
  buildTrainStepGraph,
  momentName,
  makeCausalBatch,
  microBatchOf,
  positionsFromMask,
} from '../../../main/engine/runtime/trainer.ts';
import type { HostTensor } from '../../../main/engine/runtime/weights.ts';
import { CHECK_DTYPE, TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { rng } from '../../helpers/gradcheck.ts';
import { randomTokens, randomWeights, tinyLlama } from '../../helpers/tiny-llama.ts';

type Loss = { kind: 'sft' } | { kind: 'policy'; temperature: number; clipLow: number; clipHigh: number; klCoef: number };

const SHAPE: BatchShape = { size: 2, seqLen: 5 };
const DTYPE = CHECK_DTYPE as StoreDType;

function l2(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

function absMax(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}
const POLICY: Loss = { kind: 'policy', temperature: 0.7, clipLow: 0.2, clipHigh: 0.28, klCoef: 0.3 };

/** A batch with right padding in row 1 and a partial loss mask; policy fields filled in later. */
function tokenBatch(config: LlamaConfig): TrainBatch {
  const n = SHAPE.size * SHAPE.seqLen;
  return {
    inputIds: randomTokens(n, config.vocabSize, 3),
    targets: randomTokens(n, config.vocabSize, 4),
    attentionMask: Float32Array.of(1, 1, 1, 1, 1, 1, 1, 1, 0, 0),
    lossMask: Float32Array.of(0, 1, 1, 1, 1, 1, 1, 1, 0, 0),
  };
}

function tensorOf(dtype: StoreDType, values: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values), dims);
}

/** Feeds of a step graph for `batch` at the given flat parameters (moments zero). */
function stepFeeds(store: ParameterStore, graph: CompiledGraph, batch: TrainBatch, flat: FlatArray, lr = 0, step = 1): Record<string, ort.Tensor> {
  const d = store.dtype;
  const dims = [SHAPE.size, SHAPE.seqLen];
  const N = store.size;
  const feeds: Record<string, ort.Tensor> = {
    ...store.frozen.feeds(graph.inputNames),
    // The trainable weights at `flat`, each a view of it.
    ...Object.fromEntries(store.layout.map((e) => [e.name, tensorOf(d, flat.subarray(e.offset, e.offset + e.size), e.shape)])),
    [STEP_IO.paramsFlat]: tensorOf(d, flat, [N]),
    [momentName('m', 0)]: tensorOf(d, new Float64Array(N), [N]),
    [momentName('v', 0)]: tensorOf(d, new Float64Array(N), [N]),
    [STEP_IO.lr]: tensorOf(d, [lr], []),
    [STEP_IO.step]: tensorOf(d, [step], []),
    [STEP_IO.inputIds]: new ort.Tensor('int32', Int32Array.from(batch.inputIds), dims),
    [STEP_IO.targets]: new ort.Tensor('int32', Int32Array.from(batch.targets), dims),
    [STEP_IO.attentionMask]: tensorOf(d, batch.attentionMask!, dims),
    [STEP_IO.positionIds]: new ort.Tensor('int32', positionsFromMask(batch.attentionMask!, SHAPE), dims),
    [STEP_IO.lossMask]: tensorOf(d, batch.lossMask, dims),
  };
  if (batch.advantages) feeds[STEP_IO.advantages] = tensorOf(d, batch.advantages, [SHAPE.size]);
  if (batch.oldLogprobs) feeds[STEP_IO.oldLogprobs] = tensorOf(d, batch.oldLogprobs, dims);
  if (batch.refLogprobs && graph.inputNames.includes(STEP_IO.refLogprobs)) feeds[STEP_IO.refLogprobs] = tensorOf(d, batch.refLogprobs, dims);
  // The KL coefficient is a graph input; the cases with a KL term all use POLICY's.
  if (graph.inputNames.includes(STEP_IO.klCoef)) feeds[STEP_IO.klCoef] = tensorOf(d, [(POLICY as { klCoef: number }).klCoef], []);
  return feeds;
}

interface Case {
  name: string;
  config: LlamaConfig;
  lora: LoraSpec | null;
  loss: Loss;
}

const CASES: Case[] = [
  { name: 'Llama, full fine-tuning, supervised loss', config: tinyLlama(), lora: null, loss: { kind: 'sft' } },
  {
    name: 'Qwen2-style (q/k/v biases, tied embeddings), full fine-tuning, policy loss with KL',
    config: tinyLlama({ architecture: 'qwen2', attentionBias: true, tieWordEmbeddings: true }),
    lora: null,
    loss: POLICY,
  },
  { name: 'Qwen3-style (q/k norm), LoRA on every linear layer, policy loss with KL', config: tinyLlama({ architecture: 'qwen3', qkNorm: true }), lora: { rank: 2, alpha: 3, targetModules: [...LINEAR_MODULES] }, loss: POLICY },
  { name: 'Llama, LoRA on q_proj and v_proj, supervised loss', config: tinyLlama({ numLayers: 1 }), lora: { rank: 3, alpha: 6, targetModules: ['q_proj', 'v_proj'] }, loss: { kind: 'sft' } },
];

/** A store for `c` whose LoRA B matrices are random (B = 0 would make every A-gradient zero). */
async function makeStore(c: Case, dtype: StoreDType, deviceName: 'cpu' | 'device'): Promise<ParameterStore> {
  const device = deviceName === 'cpu' ? { name: 'cpu' as const, keepsStateOnDevice: false } : await testDevice();
  let loraWeights: Map<string, HostTensor> | undefined;
  if (c.lora) {
    loraWeights = initLoraWeights(c.config, c.lora, new SeededRng(2));
    const random = rng(8);
    for (const [name, t] of loraWeights) if (name.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 * (2 * random() - 1);
  }
  return ParameterStore.create({ config: c.config, weights: randomWeights(c.config), device, lora: c.lora, loraWeights, dtype });
}

/** The batch of case `c`, with policy inputs near the current log-probs so both clip branches occur. */
async function caseBatch(c: Case, store: ParameterStore): Promise<TrainBatch> {
  const batch = tokenBatch(c.config);
  if (c.loss.kind === 'sft') return batch;
  const lp = await CompiledGraph.create(buildLogprobGraph(c.config, store, SHAPE, c.loss.temperature, store.dtype), store.device);
  const feeds = stepFeeds(store, lp, batch, await store.readFlat());
  const current = (await lp.run({ ...feeds, ...store.feeds(lp.inputNames) }))[STEP_IO.logprobs].data as FlatArray;
  await lp.release();
  const random = rng(12);
  batch.advantages = Float64Array.of(1.3, -0.8);
  batch.oldLogprobs = Float64Array.from(current, (x) => x + 0.6 * (random() - 0.5));
  batch.refLogprobs = Float64Array.from(current, (x) => x + 1.0 * (random() - 0.5));
  return batch;
}

/** Optimizer settings under which the step's m output is exactly the raw gradient. */
const GRADIENT_PROBE: AdamWHyper = { betas: [0, 0.999], eps: 1e-8, weightDecay: 0, maxGradNorm: null };

describe('training step gradient', () => {
  for (const c of CASES) {
    it(`matches ${TEST_DEVICE_NAME === 'cpu' ? 'central finite differences (float64)' : 'the CPU float64 gradient'}: ${c.name}`, async () => {
      const store = await makeStore(c, DTYPE, 'device');
      const graph = await CompiledGraph.create(buildTrainStepGraph(store, { batch: SHAPE, loss: c.loss, optimizer: GRADIENT_PROBE }), store.device);
      const batch = await caseBatch(c, store);
      const flat = await store.readFlat();
      const out = await graph.run(stepFeeds(store, graph, batch, flat));
      const analytic = out[momentName('mOut', 0)].data as FlatArray;
      const gradNorm = Number(out[STEP_IO.gradNorm].data[0]);
      expect(gradNorm).toBeGreaterThan(0);
      expect(l2(analytic)).toBeCloseTo(gradNorm, 5);

      if (TEST_DEVICE_NAME === 'cpu') {
        // One random element of every weight, so every gradient path is exercised.
        const random = rng(21);
        const eps = 1e-6;
        const lossAt = async (x: FlatArray) => Number((await graph.run(stepFeeds(store, graph, batch, x))).loss.data[0]);
        for (const e of store.layout) {
          const i = e.offset + Math.floor(random() * e.size);
          const plus = flat.slice();
          const minus = flat.slice();
          plus[i] += eps;
          minus[i] -= eps;
          const numeric = ((await lossAt(plus)) - (await lossAt(minus))) / (2 * eps);
          const ok = Math.abs(analytic[i] - numeric) <= 1e-7 + 1e-5 * Math.abs(numeric);
          if (!ok) expect.fail(`d loss / d ${e.name}[${i - e.offset}]: autodiff ${analytic[i]}, finite difference ${numeric}`);
        }
        // Under LoRA only A and B are parameters; a gradient that is zero everywhere means no path.
        for (const e of store.layout) expect(analytic.subarray(e.offset, e.offset + e.size).some((g) => g !== 0), e.name).toBe(true);
      } else {
        // float32 finite differences are too coarse for a whole model: compare with the CPU's
        // float64 gradient of the same step instead (itself checked against finite differences).
        const ref = await makeStore(c, 'float64', 'cpu');
        const refGraph = await CompiledGraph.create(buildTrainStepGraph(ref, { batch: SHAPE, loss: c.loss, optimizer: GRADIENT_PROBE }), ref.device);
        const refOut = await refGraph.run(stepFeeds(ref, refGraph, batch, await ref.readFlat()));
        const expected = refOut[momentName('mOut', 0)].data as FlatArray;
        const scale = absMax(expected);
        for (let i = 0; i < expected.length; i++) {
          if (Math.abs(analytic[i] - expected[i]) > 2e-4 * scale + 1e-3 * Math.abs(expected[i])) {
            expect.fail(`gradient[${i}]: ${TEST_DEVICE_NAME} ${analytic[i]}, cpu float64 ${expected[i]}`);
          }
        }
        await refGraph.release();
        await ref.release();
      }
      await graph.release();
      await store.release();
    });
  }
});

/** torch.optim.AdamW after clip_grad_norm_, one update on the host in float64. */
function hostAdamW(p: ArrayLike<number>, g: ArrayLike<number>, lr: number, step: number, hp: AdamWHyper): Float64Array {
  const norm = Math.sqrt(Array.from(g).reduce((s, x) => s + x * x, 0));
  const coef = hp.maxGradNorm === null ? 1 : Math.min(1, hp.maxGradNorm / (norm + 1e-6));
  const [b1, b2] = hp.betas;
  return Float64Array.from(p, (pi, i) => {
    const gi = g[i] * coef;
    const m = (1 - b1) * gi;
    const v = (1 - b2) * gi * gi;
    const denom = Math.sqrt(v) / Math.sqrt(1 - b2 ** step) + hp.eps;
    return pi * (1 - lr * hp.weightDecay) - (lr / (1 - b1 ** step)) * (m / denom);
  });
}

describe('training step update', () => {
  it('applies global-norm clipping and AdamW to the gradient', async () => {
    const c = CASES[0];
    const store = await makeStore(c, DTYPE, 'device');
    const batch = tokenBatch(c.config);
    const flat = await store.readFlat();
    const probe = await CompiledGraph.create(buildTrainStepGraph(store, { batch: SHAPE, loss: c.loss, optimizer: GRADIENT_PROBE }), store.device);
    const g = (await probe.run(stepFeeds(store, probe, batch, flat)))[momentName('mOut', 0)].data as FlatArray;
    const gradNorm = l2(g);
    // A clip threshold below the norm, so clipping is active.
    const hp: AdamWHyper = { betas: [0.9, 0.95], eps: 1e-6, weightDecay: 0.1, maxGradNorm: gradNorm / 3 };
    const step = await CompiledGraph.create(buildTrainStepGraph(store, { batch: SHAPE, loss: c.loss, optimizer: hp }), store.device);
    const lr = 0.01;
    const out = await step.run(stepFeeds(store, step, batch, flat, lr, 3));
    const expected = hostAdamW(flat, g, lr, 3, hp);
    const got = out[STEP_IO.paramsOut].data as FlatArray;
    const tol = CHECK_DTYPE === 'float64' ? 1e-12 : 2e-6;
    for (let i = 0; i < got.length; i++) if (Math.abs(got[i] - expected[i]) > tol) expect.fail(`params[${i}]: ${got[i]}, expected ${expected[i]}`);
    expect(Number(out[STEP_IO.gradNorm].data[0])).toBeCloseTo(gradNorm, 4);
    await probe.release();
    await step.release();
    await store.release();
  });

  it('skips an update whose gradient is not finite, leaving parameters, moments and the step count alone', async () => {
    const config = tinyLlama();
    const device = await testDevice();
    // Moments in several pieces: every one of them must be kept.
    const create = () =>
      Trainer.create({
        config,
        weights: randomWeights(config),
        device,
        mode: { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj'] },
        loss: { kind: 'policy' },
        batch: SHAPE,
        optimizerRangeSize: 50,
      });
    const [trainer, twin] = [await create(), await create()];
    const batch = tokenBatch(config);
    const old = await trainer.logprobs(batch);
    const good = { ...batch, advantages: [1, -1], oldLogprobs: old };
    const ok = await trainer.step(good, 1e-2);
    expect(ok).toMatchObject({ step: 1, skipped: false });
    const before = await trainer.store.readFlat();
    const bad = await trainer.step({ ...batch, advantages: [NaN, 1], oldLogprobs: old }, 1e-2);
    expect(bad.skipped).toBe(true);
    expect(bad.step).toBe(1);
    expect(trainer.stepCount).toBe(1);
    expect(await trainer.store.readFlat()).toEqual(before);
    const next = await trainer.step(good, 1e-2);
    expect(next).toMatchObject({ step: 2, skipped: false });
    expect(Number.isFinite(next.loss)).toBe(true);
    // The twin never saw the bad batch; with the same moments it lands on the same parameters.
    await twin.step(good, 1e-2);
    await twin.step(good, 1e-2);
    const [a, b] = [await trainer.store.readFlat(), await twin.store.readFlat()];
    if (TEST_DEVICE_NAME === 'cpu') expect(a).toEqual(b);
    else a.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThan(1e-6));
    await trainer.release();
    await twin.release();
  });

  it('rejects batches that do not fit, naming the field', async () => {
    const config = tinyLlama({ numLayers: 1 });
    const trainer = await Trainer.create({ config, weights: randomWeights(config), device: await testDevice(), mode: { kind: 'full' }, loss: { kind: 'policy' }, batch: SHAPE });
    const batch = tokenBatch(config);
    await expect(trainer.step({ ...batch, inputIds: [1, 2, 3] }, 1e-3)).rejects.toThrow(/batch\.inputIds has 3 values/);
    await expect(trainer.step(batch, 1e-3)).rejects.toThrow(/advantages/);
    await expect(trainer.step({ ...batch, advantages: [1, 1] }, 1e-3)).rejects.toThrow(/oldLogprobs/);
    await expect(trainer.logprobs(batch, { reference: true })).rejects.toThrow(/keepReference/);
    await trainer.release();
  });
});

describe('trainer', () => {
  it('reports per-token log-probs consistent with the supervised loss and keeps state on the device', async () => {
    const config = tinyLlama();
    const device = await testDevice();
    const trainer = await Trainer.create({ config, weights: randomWeights(config), device, mode: { kind: 'full' }, loss: { kind: 'sft' }, batch: SHAPE });
    const batch = tokenBatch(config);
    const lp = await trainer.logprobs(batch);
    let sum = 0;
    let count = 0;
    for (let i = 0; i < lp.length; i++) {
      sum += lp[i] * batch.lossMask[i];
      count += batch.lossMask[i];
    }
    const r = await trainer.step(batch, 0.01);
    expect(r.loss).toBeCloseTo(-sum / count, 5);
    expect(trainer.store.flatTensor.location).toBe(device.keepsStateOnDevice ? 'gpu-buffer' : 'cpu');
    // The binding feeds generation-style graphs the updated weights.
    const feeds = trainer.weights().feeds(['model.embed_tokens.weight', 'lm_head.weight']);
    expect(Object.keys(feeds)).toHaveLength(2);
    expect(feeds['model.embed_tokens.weight'].location).toBe(device.keepsStateOnDevice ? 'gpu-buffer' : 'cpu');
    const after = await trainer.logprobs(batch);
    expect(Array.from(after)).not.toEqual(Array.from(lp));
    await trainer.release();
  });

  it('keeps the initial weights as the reference under full fine-tuning with a KL penalty', async () => {
    const config = tinyLlama();
    const trainer = await Trainer.create({
      config,
      weights: randomWeights(config),
      device: await testDevice(),
      mode: { kind: 'full' },
      loss: { kind: 'policy', klCoef: 0.1 },
      batch: SHAPE,
    });
    const batch = tokenBatch(config);
    const initial = await trainer.logprobs(batch);
    const ref0 = await trainer.logprobs(batch, { reference: true });
    expect(Array.from(ref0)).toEqual(Array.from(initial));
    const r = await trainer.step({ ...batch, advantages: [1, -0.5], oldLogprobs: initial, refLogprobs: ref0 }, 0.05);
    expect(r.kl).toBeCloseTo(0, 6);
    expect(r.clipRatio).toBe(0);
    const ref1 = await trainer.logprobs(batch, { reference: true });
    expect(Array.from(ref1)).toEqual(Array.from(ref0));
    const now = await trainer.logprobs(batch);
    expect(Array.from(now)).not.toEqual(Array.from(initial));

    // The coefficient is a per-step input (an adaptive KL controller sets it): at lr 0 nothing
    // moves, so two steps differ only by it, and loss = pg_loss + coefficient · kl each time.
    const at = (klCoef: number) => trainer.step({ ...batch, advantages: [1, -0.5], oldLogprobs: initial, refLogprobs: ref0 }, 0, { klCoef });
    const low = await at(0.2);
    const high = await at(0.7);
    expect(low.kl).toBeGreaterThan(1e-6);
    expect(high.kl).toBeCloseTo(low.kl!, 6);
    expect(low.loss).toBeCloseTo(low.pgLoss! + 0.2 * low.kl!, 6);
    expect(high.loss).toBeCloseTo(high.pgLoss! + 0.7 * high.kl!, 6);
    await expect(at(-1)).rejects.toThrow(/klCoef must be/);
    await trainer.release();
  });
});

describe('trainer: per-token advantages (tokenAdvantages)', () => {
  it("make the same step as per-sequence ones broadcast over their tokens, and differ when tokens differ", async () => {
    const config = tinyLlama();
    const weights = randomWeights(config);
    const device = await testDevice();
    const make = (tokenAdvantages: boolean) =>
      Trainer.create({ config, weights, device, mode: { kind: 'full' }, loss: { kind: 'policy', klCoef: 0, tokenAdvantages }, batch: SHAPE, dtype: DTYPE });
    const [perSequence, perToken, varied] = await Promise.all([make(false), make(true), make(true)]);
    const batch = tokenBatch(config);
    const old = await perSequence.logprobs(batch);
    const a = await perSequence.step({ ...batch, advantages: [0.8, -0.5], oldLogprobs: old }, 0.02);
    const b = await perToken.step({ ...batch, advantages: [0.8, 0.8, 0.8, 0.8, 0.8, -0.5, -0.5, -0.5, -0.5, -0.5], oldLogprobs: old }, 0.02);
    expect(b.loss).toBeCloseTo(a.loss, 6);
    expect(b.gradNorm).toBeCloseTo(a.gradNorm, 6);
    const [wa, wb] = await Promise.all([perSequence.logprobs(batch), perToken.logprobs(batch)]);
    for (let i = 0; i < wa.length; i++) expect(wb[i]).toBeCloseTo(wa[i], 6);
    const c = await varied.step({ ...batch, advantages: [0.8, -0.8, 0.8, 0.8, 0.8, -0.5, -0.5, 0.5, -0.5, -0.5], oldLogprobs: old }, 0.02);
    expect(Math.abs(c.gradNorm - a.gradNorm)).toBeGreaterThan(1e-6);
    await expect(perToken.step({ ...batch, advantages: [0.8, -0.5], oldLogprobs: old }, 0.02)).rejects.toThrow('one value per position (10)');
    await Promise.all([perSequence.release(), perToken.release(), varied.release()]);
  });

  it('makeCausalBatch trains the tokens a mask names and places per-token advantages on the positions predicting them', () => {
    const b = makeCausalBatch(
      [
        { tokens: [5, 6, 7, 8], trainTokens: [0, 0, 1, 1], tokenAdvantages: [0, 0, 0.5, -1] },
        { tokens: [9, 10, 11], lossStart: 2 },
      ],
      { size: 2, seqLen: 4 },
    );
    // Position t predicts token t + 1.
    expect(Array.from(b.lossMask)).toEqual([0, 1, 1, 0, 0, 1, 0, 0]);
    expect(Array.from(b.tokenAdvantages!)).toEqual([0, 0.5, -1, 0, 0, 0, 0, 0]);
    expect(() => makeCausalBatch([{ tokens: [1, 2, 3], trainTokens: [0, 1] }], { size: 1, seqLen: 4 })).toThrow('sequence 0 has 3 tokens but 2 trainTokens');
  });
});

describe('trainer: steps at another batch shape (step options.shape)', () => {
  it('make the same update as the trainer\'s own shape on the same sequences padded further, and refuse a batch of the wrong size', async () => {
    const config = tinyLlama();
    const weights = randomWeights(config);
    const device = await testDevice();
    const long: BatchShape = { size: 2, seqLen: 9 };
    const short: BatchShape = { size: 2, seqLen: 4 };
    // Other shapes sum in another order: float32 (WebGPU) agrees to rounding, 2e-6 seen on lavapipe.
    const digits = DTYPE === 'float64' ? 6 : 4;
    const make = () => Trainer.create({ config, weights, device, mode: { kind: 'full' }, loss: { kind: 'policy', klCoef: 0, tokenAdvantages: true }, batch: long, dtype: DTYPE });
    const [padded, sized] = await Promise.all([make(), make()]);
    const rows = [
      { tokens: [5, 6, 7, 8, 1], trainTokens: [0, 0, 1, 1, 1], tokenAdvantages: [0, 0, 0.5, -1, 0.25] },
      { tokens: [9, 2, 4], trainTokens: [0, 1, 1], tokenAdvantages: [0, -0.5, 0.75] },
    ];
    const run = async (trainer: Trainer, shape: BatchShape) => {
      const batch = makeCausalBatch(rows, shape);
      const oldLogprobs = await trainer.logprobs(batch, { shape });
      return trainer.step({ ...batch, advantages: batch.tokenAdvantages!, oldLogprobs }, 0.02, shape === long ? {} : { shape });
    };
    for (let i = 0; i < 2; i++) {
      const [a, b] = [await run(padded, long), await run(sized, short)];
      expect(b.loss).toBeCloseTo(a.loss, digits);
      expect(b.gradNorm).toBeCloseTo(a.gradNorm, digits);
    }
    const probe = makeCausalBatch(rows, long);
    const [wa, wb] = await Promise.all([padded.logprobs(probe), sized.logprobs(probe)]);
    for (let i = 0; i < wa.length; i++) expect(wb[i]).toBeCloseTo(wa[i], digits);
    const shortBatch = makeCausalBatch(rows, short);
    await expect(sized.step({ ...shortBatch, advantages: shortBatch.tokenAdvantages!, oldLogprobs: await sized.logprobs(shortBatch, { shape: short }) }, 0.02)).rejects.toThrow('a 2×9 batch needs 18');
    await Promise.all([padded.release(), sized.release()]);
  });
});

describe('trainer: updates in micro-batches (step options.microBatch)', () => {
  // Gradient accumulation must be the same update as the whole batch at once: each micro-batch's
  // loss is divided by the whole update's token count, so the sums of the micro-batches' losses,
  // diagnostics and gradients are the whole batch's; one clip and one AdamW step follow.
  const shape: BatchShape = { size: 5, seqLen: 7 };
  const rows = [
    { tokens: [5, 6, 7, 8, 1, 3], lossStart: 3 },
    { tokens: [9, 2, 4], lossStart: 1 },
    { tokens: [3, 3, 8, 2, 7, 1, 4, 6], lossStart: 4 },
    { tokens: [1, 2], lossStart: 1 },
    { tokens: [4, 8, 6, 2, 9], lossStart: 2 },
  ];
  const digits = DTYPE === 'float64' ? 9 : 4;
  const cases: { name: string; mode: Parameters<typeof Trainer.create>[0]['mode']; loss: Parameters<typeof Trainer.create>[0]['loss'] }[] = [
    { name: 'policy loss with KL and an entropy term, full fine-tuning', mode: { kind: 'full' }, loss: { kind: 'policy', temperature: 0.8, klCoef: 0.2, entropyCoef: -0.05 } },
    { name: 'policy loss, LoRA', mode: { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, loss: { kind: 'policy', klCoef: 0 } },
    { name: 'supervised loss', mode: { kind: 'full' }, loss: { kind: 'sft' } },
  ];
  for (const c of cases) {
    it(`make the whole batch's update, in 2 and 3 micro-batches (the last padded): ${c.name}`, async () => {
      const config = tinyLlama();
      const weights = randomWeights(config);
      const device = await testDevice();
      const make = () => Trainer.create({ config, weights, device, mode: c.mode, loss: c.loss, batch: shape, dtype: DTYPE, seed: 3 });
      const trainers = [await make(), await make(), await make()];
      const micro = [undefined, 2, 3];
      const batch = makeCausalBatch(rows, shape);
      const policy = c.loss.kind === 'policy';
      const results = [];
      for (let step = 0; step < 2; step++) {
        const per = [];
        for (const [i, t] of trainers.entries()) {
          const extra = policy
            ? { advantages: [0.9, -0.4, 1.3, -1.1, 0.2], oldLogprobs: Array.from(await t.logprobs(batch, { temperature: 0.8 }), (x, j) => x + 0.05 * Math.sin(j)), refLogprobs: c.loss.kind === 'policy' && (c.loss.klCoef ?? 0) > 0 ? await t.logprobs(batch, { reference: true, temperature: 0.8 }) : undefined }
            : {};
          per.push(await t.step({ ...batch, ...extra }, 0.05, { microBatch: micro[i] }));
        }
        results.push(per);
      }
      for (const [whole, ...parts] of results) {
        expect(whole.skipped).toBe(false);
        for (const r of parts) {
          for (const key of ['loss', 'gradNorm', 'pgLoss', 'clipRatio', 'ppoKl', 'kl', 'entropy'] as const) {
            if (whole[key] === undefined) continue;
            expect(r[key], key).toBeCloseTo(whole[key]!, digits);
          }
          expect(r.step).toBe(whole.step);
        }
      }
      // The weights after two updates (moments carried) agree: compare the policies' log-probs.
      const [a, b, d] = await Promise.all(trainers.map((t) => t.logprobs(batch)));
      for (let i = 0; i < a.length; i++) {
        expect(b[i]).toBeCloseTo(a[i], digits);
        expect(d[i]).toBeCloseTo(a[i], digits);
      }
      // And the update did move them (the comparison is not between three untouched models).
      const fresh = await make();
      const before = await fresh.logprobs(batch);
      expect(absMax(Array.from(a, (x, i) => x - before[i]))).toBeGreaterThan(1e-3);
      await Promise.all([...trainers, fresh].map((t) => t.release()));
    });
  }

  it('refuses a micro-batch size that is not a whole number above 0', async () => {
    const config = tinyLlama();
    const trainer = await Trainer.create({ config, weights: randomWeights(config), device: await testDevice(), mode: { kind: 'full' }, loss: { kind: 'sft' }, batch: shape, dtype: DTYPE });
    const batch = makeCausalBatch(rows, shape);
    await expect(trainer.step(batch, 0.01, { microBatch: 0 })).rejects.toThrow('microBatch must be a whole number > 0, got 0');
    await expect(trainer.step(batch, 0.01, { microBatch: 1.5 })).rejects.toThrow('microBatch');
    await trainer.release();
  });

  it('microBatchOf cuts rows and pads the last micro-batch with rows that train nothing', () => {
    const s: BatchShape = { size: 3, seqLen: 2 };
    const b: TrainBatch = { inputIds: [1, 2, 3, 4, 5, 6], targets: [2, 3, 4, 5, 6, 7], lossMask: [1, 1, 0, 1, 1, 0], advantages: [0.5, -1, 2], oldLogprobs: [-1, -2, -3, -4, -5, -6] };
    expect(microBatchOf(b, s, 2, 2, false)).toEqual({ inputIds: [5, 6, 0, 0], targets: [6, 7, 0, 0], lossMask: [1, 0, 0, 0], advantages: [2, 0], oldLogprobs: [-5, -6, 0, 0] });
    expect(microBatchOf({ ...b, advantages: [1, 2, 3, 4, 5, 6] }, s, 0, 2, true).advantages).toEqual([1, 2, 3, 4]);
  });
});

describe('trainer: entropy term of the policy loss', () => {
  it('with zero advantages and entropyCoef < 0 the step only minimises entropy: it reports the entropy and lowers it', async () => {
    const config = tinyLlama();
    const trainer = await Trainer.create({
      config,
      weights: randomWeights(config),
      device: await testDevice(),
      mode: { kind: 'full' },
      loss: { kind: 'policy', klCoef: 0, entropyCoef: -1 },
      batch: SHAPE,
    });
    const batch = tokenBatch(config);
    const old = await trainer.logprobs(batch);
    const first = await trainer.step({ ...batch, advantages: [0, 0], oldLogprobs: old }, 0.02);
    expect(first.entropy).toBeGreaterThan(0);
    // loss = pg (0 with zero advantages) − c · entropy = + entropy.
    expect(first.loss).toBeCloseTo(first.entropy!, 5);
    let last = first;
    for (let i = 0; i < 4; i++) last = await trainer.step({ ...batch, advantages: [0, 0], oldLogprobs: old }, 0.02);
    expect(last.entropy).toBeLessThan(first.entropy!);
    // Without a KL term in the graph there is no coefficient to set.
    await expect(trainer.step({ ...batch, advantages: [0, 0], oldLogprobs: old }, 0.02, { klCoef: 0.1 })).rejects.toThrow(/klCoef > 0/);
    await trainer.release();
  });
});

describe('Acceptance 3: a tiny built-in model learns a toy task', () => {
  it('tiny-chars learns to reverse three-digit strings by supervised fine-tuning', async () => {
    // The task: "<bos>123=321<eos>"; only the answer and <eos> count towards the loss.
    const model = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-chars'));
    const tok = model.tokenizer!;
    const bos = model.config.bosTokenId!;
    const eos = model.config.eosTokenIds[0];
    const digitId = (d: string) => tok.encode(d, { addSpecialTokens: false })[0];
    const eqId = tok.encode('=', { addSpecialTokens: false })[0];
    const shape: BatchShape = { size: 32, seqLen: 8 };
    const PAD = 0;
    const trainer = await Trainer.create({
      config: model.config,
      weights: model.weights,
      device: await testDevice(),
      mode: { kind: 'full' },
      optimizer: { betas: [0.9, 0.98], weightDecay: 0, maxGradNorm: 1 },
      loss: { kind: 'sft' },
      batch: shape,
      seed: 1,
    });
    const schedule = { kind: 'cosine' as const, lr: 3e-3, warmupSteps: 10, totalSteps: 300, minLrRatio: 0.1 };
    const example = () => {
      const digits = Array.from({ length: 3 }, () => String(trainer.rng.int(10)));
      const ids = digits.map(digitId);
      return { tokens: [bos, ...ids, eqId, ...[...ids].reverse(), eos], lossStart: 5 };
    };
    const threshold = 0.05;
    const started = Date.now();
    let loss = Infinity;
    let steps = 0;
    const losses: number[] = [];
    while (steps < 300 && loss >= threshold) {
      const batch = makeCausalBatch(Array.from({ length: shape.size }, example), shape, PAD);
      const r = await trainer.step(batch, learningRate(schedule, trainer.stepCount));
      losses.push(r.loss);
      steps++;
      // Judge on a moving average, not one lucky batch.
      if (losses.length >= 5) loss = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`tiny-chars reverse: mean loss ${loss.toFixed(4)} after ${steps} steps, ${seconds.toFixed(1)} s (first ${losses[0].toFixed(3)})`);
    expect(losses[0]).toBeGreaterThan(2);
    expect(loss).toBeLessThan(threshold);
    // A few seconds on two CPU cores; lavapipe (WebGPU on the CPU) is several times slower.
    expect(seconds).toBeLessThan(TEST_DEVICE_NAME === 'cpu' ? 60 : 240);
    // On strings it has not seen, greedy decoding gets the answer right: the correct token has
    // probability above 1/2 at (nearly) every answer position.
    const held = makeCausalBatch(Array.from({ length: shape.size }, example), shape, PAD);
    const lp = await trainer.logprobs(held);
    let right = 0;
    let total = 0;
    for (let i = 0; i < lp.length; i++) {
      if (!held.lossMask[i]) continue;
      total++;
      if (lp[i] > Math.log(0.5)) right++;
    }
    expect(right / total).toBeGreaterThan(0.95);
    await trainer.release();
  });
});


describe('a logits window (BatchShape.logitsFrom)', () => {
  // Three prompts of different lengths left-padded to end together, then their responses: the
  // output layer runs on the response positions alone, and the step is the one over every position.
  const config = tinyLlama({ vocabSize: 23 });
  const prompts = [[3, 4, 5, 6], [7, 8], [9, 10, 11]];
  const responses = [[12, 13, 14], [15, 16], [17, 18, 19]];
  const longest = 4;
  const full: BatchShape = { size: 3, seqLen: longest + 3 - 1 };
  const windowed: BatchShape = { ...full, logitsFrom: longest - 1 };
  const batch = () => {
    const b = makeCausalBatch(
      prompts.map((p, i) => ({ tokens: [...p, ...responses[i]], lossStart: p.length, leadingPad: longest - p.length })),
      full,
    );
    const n = full.size * full.seqLen;
    return { ...b, oldLogprobs: new Float64Array(n).fill(-2.5), advantages: [1, -0.5, 0.25] };
  };

  it('trains and scores as the whole window does, the positions before it 0, with fewer output-layer rows', async () => {
    const device = await testDevice();
    const make = (shape: BatchShape) => Trainer.create({ config, weights: randomWeights(config), device, mode: { kind: 'full' }, loss: { kind: 'policy', temperature: 0.9, entropyCoef: 0.01 }, batch: shape, seed: 2, dtype: DTYPE });
    const [a, b] = [await make(full), await make(windowed)];
    const data = batch();
    // Left padding: the two-token prompt starts at position 2; its response (2 tokens) ends a position short of the others.
    expect(Array.from(data.attentionMask.slice(full.seqLen, 2 * full.seqLen))).toEqual([0, 0, 1, 1, 1, 0]);
    const [la, lb] = [await a.logprobs(data), await b.logprobs(data)];
    const tol = DTYPE === 'float64' ? 1e-12 : 2e-6;
    for (let row = 0; row < full.size; row++) {
      for (let t = 0; t < full.seqLen; t++) {
        const i = row * full.seqLen + t;
        if (t < windowed.logitsFrom!) expect(lb[i]).toBe(0);
        else expect(Math.abs(lb[i] - la[i]), `log-prob at ${row}, ${t}`).toBeLessThan(tol);
      }
    }
    // Whole, then in micro-batches of one sequence.
    for (const microBatch of [undefined, 1]) {
      const [ra, rb] = [await a.step(data, 1e-2, { microBatch }), await b.step(data, 1e-2, { microBatch })];
      expect(Math.abs(ra.loss - rb.loss)).toBeLessThan(tol);
      expect(Math.abs(ra.gradNorm - rb.gradNorm)).toBeLessThan(tol * Math.max(1, ra.gradNorm));
    }
    const [pa, pb] = [await a.store.readFlat(), await b.store.readFlat()];
    pa.forEach((x, i) => expect(Math.abs(pb[i] - x)).toBeLessThan(tol));
    // A loss before the window would be dropped: refused.
    const early = { ...data, lossMask: Float64Array.from(data.lossMask, (m, i) => (i === 1 ? 1 : m)) };
    await expect(b.step(early, 1e-2)).rejects.toThrow(/counts position 1 of sequence 0, before the shape's logitsFrom \(3\)/);
    await a.release();
    await b.release();
    // The output layer's Gemm reads B·(T − logitsFrom) rows instead of B·T.
    const store = await ParameterStore.create({ config, weights: randomWeights(config), device: { name: 'cpu', keepsStateOnDevice: false } });
    const rowsOfOutputLayer = (shape: BatchShape) => {
      const g = buildLogprobGraph(config, store, shape, 1, 'float32');
      const head = g.nodes.find((n) => n.opType === 'Gemm' && n.inputs.includes('lm_head.weight'))!;
      return g.shapes.get(head.inputs[0])![0];
    };
    expect([rowsOfOutputLayer(full), rowsOfOutputLayer(windowed)]).toEqual([3 * 6, 3 * 3]);
    await store.release();
  });
});
