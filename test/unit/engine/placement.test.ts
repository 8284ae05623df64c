// Node placement on a GPU provider: every node of every graph the engine runs (training steps,
// log-probs, prefill, decode, the parameter store's upload/cut graphs) runs on the chosen
// provider, read from onnxruntime's own per-node profiles, so an op that would fall back to
// the CPU provider (with host copies every run) fails here. On the CPU device there is nothing
// to check. Also: the LogSoftmax lowering computes what the CPU kernel does, and an unlowered
// graph is refused on WebGPU with a message that says what to do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { Generator } from '../../../main/engine/generate/generator.ts';
import { buildDecodeGraph } from '../../../main/engine/generate/graphs.ts';
import { samplingMode } from '../../../main/engine/generate/sampler.ts';
import { emitModel } from '../../../main/engine/graph/emit.ts';
import { grad } from '../../../main/engine/graph/autodiff.ts';
import { Graph } from '../../../main/engine/graph/graph.ts';
import { lower, loweringsFor } from '../../../main/engine/graph/lowering.ts';
import * as op from '../../../main/engine/graph/ops.ts';
import { sessionOptions } from '../../../main/engine/runtime/devices.ts';
import { CompiledGraph, cpuTensor } from '../../../main/engine/runtime/session.ts';
import { TokenScorer } from '../../../main/engine/runtime/token-logprobs.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import type { Precision } from '../../../main/engine/runtime/precision.ts';
import { Trainer, makeCausalBatch } from '../../../main/engine/runtime/trainer.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { randomWeights, tinyLlama } from '../../helpers/tiny-llama.ts';

const onGpu = TEST_DEVICE_NAME !== 'cpu';

interface Placement {
  nodes: number;
  byProvider: Record<string, number>;
  byOp: Record<string, number>;
  cpuNodes: string[];
}

/** Kernel executions by provider, read from onnxruntime profile files (Chrome trace JSON). */
function readPlacement(dir: string): Placement {
  const placement: Placement = { nodes: 0, byProvider: {}, byOp: {}, cpuNodes: [] };
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const events = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { cat: string; name: string; args?: { provider?: string; op_name?: string } }[];
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.provider) continue;
      placement.nodes++;
      placement.byProvider[e.args.provider] = (placement.byProvider[e.args.provider] ?? 0) + 1;
      if (e.args.op_name) placement.byOp[e.args.op_name] = (placement.byOp[e.args.op_name] ?? 0) + 1;
      if (e.args.provider === 'CPUExecutionProvider') placement.cpuNodes.push(`${e.args.op_name} (${e.name.replace(/_kernel_time$/, '')}, ${f})`);
    }
  }
  return placement;
}

/** Run `fn` with profiling on and the CPU fallback allowed, so placement is observed, not refused. */
async function profiled(fn: () => Promise<void>): Promise<Placement> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-placement-'));
  const saved = { profile: process.env.AUTODIDACT_PROFILE, allow: process.env.AUTODIDACT_ALLOW_CPU_FALLBACK };
  process.env.AUTODIDACT_PROFILE = path.join(dir, 'p');
  process.env.AUTODIDACT_ALLOW_CPU_FALLBACK = '1';
  try {
    await fn();
  } finally {
    for (const [key, value] of [['AUTODIDACT_PROFILE', saved.profile], ['AUTODIDACT_ALLOW_CPU_FALLBACK', saved.allow]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  const placement = readPlacement(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  return placement;
}

describe.runIf(onGpu)(`node placement on ${TEST_DEVICE_NAME}`, () => {
  // Head size 16: onnxruntime's GroupQueryAttention takes multiples of 8, and rotates q and k
  // itself (do_rotary) for multiples of 16.
  const config = tinyLlama({ vocabSize: 37, maxPositionEmbeddings: 64, hiddenSize: 32, numHeads: 2, numKvHeads: 1, headDim: 16 });
  const weights = randomWeights(config);
  const toRelease: { release(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const r of toRelease) await r.release();
  });

  it.each([
    ['full fine-tuning, policy loss with an entropy term', { kind: 'full' } as const, { kind: 'policy', temperature: 0.8, klCoef: 0.01, entropyCoef: 0.01 } as const],
    ['LoRA, supervised loss', { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj', 'v_proj', 'down_proj'] } as const, { kind: 'sft' } as const],
    ['LoRA, policy loss, mixed precision', { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj', 'v_proj', 'down_proj'] } as const, { kind: 'policy', temperature: 0.8, klCoef: 0.01, entropyCoef: 0.01 } as const, 'mixed' as const],
    ['LoRA, adapters merged for generation', { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj', 'v_proj', 'down_proj'] } as const, { kind: 'sft' } as const, 'fp32' as const, true],
    ['LoRA, adapters merged for generation, mixed precision', { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj', 'v_proj', 'down_proj'] } as const, { kind: 'sft' } as const, 'mixed' as const, true],
  ])('%s: training step (whole and in micro-batches), log-probs, prefill and decode run no node on the CPU provider', async (_name, mode, loss, precision: Precision = 'fp32', mergeAdapters = false) => {
    const device = await testDevice();
    const batch = { size: 2, seqLen: 6 };
    const placement = await profiled(async () => {
      const trainer = await Trainer.create({ config, weights, device, mode, loss, batch, seed: 1, precision, mergeAdapters });
      try {
        const b = makeCausalBatch([{ tokens: [1, 5, 7, 9, 2], lossStart: 2 }, { tokens: [3, 4, 6], lossStart: 1 }], batch);
        const filled = loss.kind === 'policy'
          ? { ...b, oldLogprobs: new Float32Array(12).fill(-3), refLogprobs: new Float32Array(12).fill(-3), advantages: Float32Array.of(0.5, -0.5) }
          : b;
        await trainer.step(filled, 1e-3);
        // An update in micro-batches: the first's and later micro-batch graphs and the one applying their sum.
        await trainer.step(filled, 1e-3, { microBatch: 1 });
        await trainer.logprobs(b);
        await trainer.logprobs(b, { reference: true });
        const gen = await Generator.create({ config, weights: trainer.weights(), device, maxLength: 16, precision });
        await gen.generate({ promptIds: [[1, 2, 3], [4]], samplesPerPrompt: 2, maxNewTokens: 3, temperature: 0.9, topP: 0.9, topK: 5 });
        await gen.generate({ promptIds: [[5, 6]], maxNewTokens: 2, temperature: 0 });
        await gen.release();
        const scorer = new TokenScorer({ config, weights: trainer.weights(), device, precision });
        await scorer.score([[1, 2, 3, 4]]);
        await scorer.release();
      } finally {
        await trainer.release();
      }
    });
    console.log(`placement (${_name}): ${placement.nodes} node runs, ${JSON.stringify(placement.byProvider)}`);
    expect(placement.nodes, 'profiles were read').toBeGreaterThan(100);
    expect(placement.cpuNodes, 'nodes onnxruntime placed on the CPU provider').toEqual([]);
    // The fused kernels ran (see WEBGPU_FUSED in lowering.ts).
    for (const fused of ['SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'RotaryEmbedding', 'GroupQueryAttention', 'QuickGelu']) {
      expect(placement.byOp[fused] ?? 0, fused).toBeGreaterThan(0);
    }
  });

  it('a graph with a node the provider has no kernel for is refused, with what to do', async () => {
    const device = await testDevice();
    const g = new Graph('raw_log_softmax');
    g.output('y', op.logSoftmax(g.input('x', [2, 5]), -1));
    await expect(ort.InferenceSession.create(emitModel(g), sessionOptions(device))).rejects.toThrow(/fallback to CPU EP has been explicitly disabled/);
    // CompiledGraph lowers it, so the same graph compiles.
    const compiled = await CompiledGraph.create(g, device);
    toRelease.push(compiled);
  });
});

describe('the LogSoftmax lowering', () => {
  it('is ReduceMax, Sub, ReduceLogSumExp, Sub on WebGPU and nothing on the CPU', () => {
    const g = new Graph('lsm');
    g.output('y', op.logSoftmax(g.input('x', [2, 3]), 1));
    const lowered = (loweringsFor('webgpu')[0])(g.nodes[0], (h) => g.fresh(h));
    expect(lowered?.map((n) => n.opType)).toEqual(['ReduceMax', 'Sub', 'ReduceLogSumExp', 'Sub']);
    expect(lowered?.[0].attrs.axes).toEqual({ ints: [1] });
    expect(lowered?.[3].outputs).toEqual(g.nodes[0].outputs);
    expect(loweringsFor('cpu')).toEqual([]);
  });

  it('writes RMSNorm as one SimplifiedLayerNormalization on WebGPU, with the composite\'s values', async () => {
    const device = await testDevice();
    const shape = [3, 8];
    const g = new Graph('rms');
    const x = g.input('x', shape);
    const w = g.input('w', [8]);
    g.output('y', op.rmsNorm(x, w, 1e-5));
    const loweredNodes = lower(g.nodes, loweringsFor('webgpu'), (h) => g.fresh(h));
    expect(loweredNodes.map((n) => n.opType)).toContain('SimplifiedLayerNormalization');
    const xs = Float32Array.from({ length: 24 }, (_, i) => 3 * Math.sin(i));
    const ws = Float32Array.from({ length: 8 }, (_, i) => 1 + 0.1 * i);
    const run = async (lowered: boolean) => {
      const session = await ort.InferenceSession.create(
        emitModel(g, lowered ? loweringsFor('webgpu') : []),
        sessionOptions(lowered ? device : { name: 'cpu', keepsStateOnDevice: false }, { graphOptimizationLevel: 'disabled' }),
      );
      const out = await session.run({ x: cpuTensor(xs, shape), w: cpuTensor(ws, [8]) });
      await session.release();
      return out.y.data as Float32Array;
    };
    const composite = await run(false);
    const fused = await run(true);
    // By hand for row 0: x / sqrt(mean(x²) + eps) · w.
    const row = Array.from(xs.slice(0, 8));
    const rms = Math.sqrt(row.reduce((a, v) => a + v * v, 0) / 8 + 1e-5);
    row.forEach((v, i) => expect(composite[i]).toBeCloseTo((v / rms) * ws[i], 5));
    for (let i = 0; i < 24; i++) expect(Math.abs(fused[i] - composite[i]), `value ${i}`).toBeLessThanOrEqual(1e-5);
  });

  /** `g`'s output y on the CPU as built, and on `device` as lowered for WebGPU. */
  async function compositeAndFused(g: Graph, feeds: Record<string, ort.Tensor>) {
    const device = await testDevice();
    const run = async (lowered: boolean) => {
      const session = await ort.InferenceSession.create(
        emitModel(g, lowered ? loweringsFor('webgpu') : []),
        sessionOptions(lowered ? device : { name: 'cpu', keepsStateOnDevice: false }, { graphOptimizationLevel: 'disabled' }),
      );
      const out = await session.run(feeds);
      await session.release();
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
    };
    return { composite: await run(false), fused: await run(true) };
  }

  it('writes a residual sum and its RMSNorm as one SkipSimplifiedLayerNormalization on WebGPU, with both values', async () => {
    const g = new Graph('skip_rms');
    const x = g.input('x', [3, 8]);
    const d = g.input('d', [3, 8]);
    const w = g.input('w', [8]);
    const { sum, normed } = op.addRmsNorm(x, d, w, 1e-5);
    // The sum is read after the norm too (the next residual connection).
    g.output('y', op.mul(normed, 2));
    g.output('s', op.add(sum, 1));
    const lowered = lower(g.nodes, loweringsFor('webgpu'), (h) => g.fresh(h));
    const fusedAt = lowered.findIndex((n) => n.opType === 'SkipSimplifiedLayerNormalization');
    expect(lowered[fusedAt]?.outputs).toEqual([normed.name, '', '', sum.name]);
    // It takes the place of the Add that wrote the sum, before anything reads it.
    expect(lowered.findIndex((n) => n.inputs.includes(sum.name))).toBeGreaterThan(fusedAt);
    expect(lowered.filter((n) => n.outputs.includes(sum.name))).toHaveLength(1);
    const xs = Float32Array.from({ length: 24 }, (_, i) => 2 * Math.sin(i));
    const ds = Float32Array.from({ length: 24 }, (_, i) => Math.cos(3 * i));
    const ws = Float32Array.from({ length: 8 }, (_, i) => 1 - 0.05 * i);
    const { composite, fused } = await compositeAndFused(g, { x: cpuTensor(xs, [3, 8]), d: cpuTensor(ds, [3, 8]), w: cpuTensor(ws, [8]) });
    // By hand for row 0: s = x + d; y = 2 · s / sqrt(mean(s²) + eps) · w.
    const s0 = Array.from(xs.slice(0, 8), (v, i) => v + ds[i]);
    const rms = Math.sqrt(s0.reduce((a, v) => a + v * v, 0) / 8 + 1e-5);
    s0.forEach((v, i) => {
      expect(composite.s[i]).toBeCloseTo(v + 1, 5);
      expect(composite.y[i]).toBeCloseTo((2 * v * ws[i]) / rms, 5);
    });
    for (const k of ['y', 's']) for (let i = 0; i < 24; i++) expect(Math.abs(fused[k][i] - composite[k][i]), `${k}[${i}]`).toBeLessThanOrEqual(1e-5);
  });

  it('writes RoPE with its rotary rows, and its gradient, as one RotaryEmbedding each on WebGPU, with the composite\'s values', async () => {
    const [B, H, T, D] = [2, 3, 4, 8];
    const g = new Graph('rotary');
    const x = g.input('x', [B, H, T, D]);
    const positions = [[0, 1, 2, 3], [5, 6, 7, 11]];
    const angle = (p: number, i: number) => p * 10000 ** (-(2 * (i % (D / 2))) / D);
    const table = (f: (a: number) => number) => positions.flat().flatMap((p) => Array.from({ length: D }, (_, i) => f(angle(p, i))));
    const half = (f: (a: number) => number) => positions.flat().flatMap((p) => Array.from({ length: D / 2 }, (_, i) => f(angle(p, i))));
    const rows = {
      positions: g.constant(Array.from({ length: B * T }, (_, i) => BigInt(i)), [B, T], 'int64'),
      cos: g.constant(half(Math.cos), [B * T, D / 2], 'float32'),
      sin: g.constant(half(Math.sin), [B * T, D / 2], 'float32'),
    };
    const y = op.rope(x, g.constant(table(Math.cos), [B, 1, T, D], 'float32'), g.constant(table(Math.sin), [B, 1, T, D], 'float32'), rows);
    g.output('y', y);
    // The gradient of Σ y·w: the rotation back, also one RotaryEmbedding (reading −sin).
    const w = g.input('w', [B, H, T, D]);
    const [gx] = grad(op.sum(op.mul(y, w)), [x]);
    g.output('gx', gx);
    const lowered = lower(g.nodes, loweringsFor('webgpu'), (h) => g.fresh(h)).map((n) => n.opType);
    expect(lowered.filter((o) => o === 'RotaryEmbedding').length).toBe(2);
    const xs = Float32Array.from({ length: B * H * T * D }, (_, i) => Math.sin(0.7 * i));
    const ws = Float32Array.from({ length: B * H * T * D }, (_, i) => Math.cos(0.3 * i));
    const { composite, fused } = await compositeAndFused(g, { x: cpuTensor(xs, [B, H, T, D]), w: cpuTensor(ws, [B, H, T, D]) });
    // By hand for batch 1, head 0, position 11, dimension 1 (first half): x₁·cos − x₅·sin, and
    // the gradient there w₁·cos + w₅·sin.
    const base = ((1 * H + 0) * T + 3) * D;
    expect(composite.y[base + 1]).toBeCloseTo(xs[base + 1] * Math.cos(angle(11, 1)) - xs[base + 5] * Math.sin(angle(11, 1)), 5);
    expect(composite.gx[base + 1]).toBeCloseTo(ws[base + 1] * Math.cos(angle(11, 1)) + ws[base + 5] * Math.sin(angle(11, 1)), 5);
    for (const k of ['y', 'gx']) for (let i = 0; i < xs.length; i++) expect(Math.abs(fused[k][i] - composite[k][i]), `${k}[${i}]`).toBeLessThanOrEqual(1e-5);
  });

  it('writes a device-cache decode step\'s RoPE inside its GroupQueryAttention from head size 16 on, and as RotaryEmbeddings below', () => {
    const decodeOps = (headDim: number) => {
      const config = tinyLlama({ vocabSize: 37, hiddenSize: 2 * headDim, numHeads: 2, numKvHeads: 1, headDim, numLayers: 3 });
      const shape = { dtype: 'float32' as const, rows: 2, cacheLength: 8, mode: samplingMode({ temperature: 1, topK: 0, topP: 1 }, 37), deviceCache: true, emitLogits: false };
      const model = onnxProto.onnx.ModelProto.decode(emitModel(buildDecodeGraph(config, new HostWeights(randomWeights(config)), shape), loweringsFor('webgpu')));
      return model.graph!.node!;
    };
    const rotated = decodeOps(16);
    const gqa = rotated.filter((n) => n.opType === 'GroupQueryAttention');
    expect(gqa).toHaveLength(3);
    for (const n of gqa) {
      expect(Number(n.attribute!.find((a) => a.name === 'do_rotary')?.i)).toBe(1);
      // q, k, v, past k, past v, seqlens, total length, cos table, sin table; no bias (each row's length masks)
      expect(n.input![7]).not.toBe('');
      expect(n.input![8]).not.toBe('');
      expect(n.input).toHaveLength(9);
    }
    expect(rotated.filter((n) => n.opType === 'RotaryEmbedding')).toHaveLength(0);
    const composite = decodeOps(8);
    expect(composite.filter((n) => n.opType === 'GroupQueryAttention')).toHaveLength(3);
    expect(composite.filter((n) => n.opType === 'RotaryEmbedding')).toHaveLength(6);
  });

  it('writes SiLU as one QuickGelu (alpha 1) on WebGPU, with the composite\'s values; its gradient as built', async () => {
    const g = new Graph('silu');
    const x = g.input('x', [3, 8]);
    const y = op.silu(x);
    g.output('y', y);
    const [gx] = grad(op.sum(op.mul(y, g.input('w', [3, 8]))), [x]);
    g.output('gx', gx);
    const lowered = lower(g.nodes, loweringsFor('webgpu'), (h) => g.fresh(h)).map((n) => n.opType);
    expect(lowered.filter((o) => o === 'QuickGelu').length).toBe(1);
    const xs = Float32Array.from({ length: 24 }, (_, i) => 3 * Math.sin(i));
    const ws = Float32Array.from({ length: 24 }, (_, i) => Math.cos(i));
    const { composite, fused } = await compositeAndFused(g, { x: cpuTensor(xs, [3, 8]), w: cpuTensor(ws, [3, 8]) });
    // By hand: silu(x) = x / (1 + e^−x); its derivative σ(x)·(1 + x·(1 − σ(x))).
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    expect(composite.y[5]).toBeCloseTo(xs[5] * sig(xs[5]), 5);
    expect(composite.gx[5]).toBeCloseTo(ws[5] * sig(xs[5]) * (1 + xs[5] * (1 - sig(xs[5]))), 5);
    for (const k of ['y', 'gx']) for (let i = 0; i < 24; i++) expect(Math.abs(fused[k][i] - composite[k][i]), `${k}[${i}]`).toBeLessThanOrEqual(1e-5);
  });

  it('computes the CPU kernel\'s values, also for logits far beyond exp\'s float32 range', async () => {
    const device = await testDevice();
    // Rows of ordinary logits, large ones (exp(x) overflows float32 past 88.7) and very negative ones.
    const values = [0.5, -1.25, 3, 0, 2.75, 1000, 990, 1003.5, 999, 1001, -500, -520, -480, -505, -499];
    const shape = [3, 5];
    const g = new Graph('lsm_values');
    g.output('y', op.logSoftmax(g.input('x', shape), -1));
    const run = async (lowered: boolean) => {
      const bytes = emitModel(g, lowered ? loweringsFor('webgpu') : []);
      const session = await ort.InferenceSession.create(bytes, sessionOptions(lowered ? device : { name: 'cpu', keepsStateOnDevice: false }));
      const out = await session.run({ x: cpuTensor(Float32Array.from(values), shape) });
      await session.release();
      return out.y.data as Float32Array;
    };
    const reference = await run(false);
    const lowered = await run(true);
    // By hand for the first row: log-softmax = x - logsumexp(x).
    const row0 = values.slice(0, 5);
    const m = Math.max(...row0);
    const lse = m + Math.log(row0.reduce((s, x) => s + Math.exp(x - m), 0));
    row0.forEach((x, i) => expect(reference[i]).toBeCloseTo(x - lse, 5));
    for (let i = 0; i < values.length; i++) {
      expect(Number.isFinite(lowered[i]), `value ${i}`).toBe(true);
      expect(Math.abs(lowered[i] - reference[i]), `value ${i}`).toBeLessThanOrEqual(1e-5);
    }
  });
});
