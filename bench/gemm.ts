// The matrix products of one full fine-tuning step, timed one by one in onnxruntime's kernel (the
// CPU's, or a GPU provider's with --device): the part of a training step whose speed the engine
// cannot change, only onnxruntime can. Its twin, bench/reference/gemm.py, times the same products
// in PyTorch (on CUDA with --device cuda), so `compare-gemm` shows how much of the `compare-train`
// ratio the two libraries' matrix kernels account for.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { emitModel } from '../main/engine/graph/emit.ts';
import { Graph } from '../main/engine/graph/graph.ts';
import * as op from '../main/engine/graph/ops.ts';
import { weightShapes } from '../main/engine/nn/config.ts';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { type Device, type DeviceRequest, resolveDevice, sessionOptions } from '../main/engine/runtime/devices.ts';
import { DeviceTransfer, disposeTensor } from '../main/engine/runtime/parameter-store.ts';
import type { Precision } from '../main/engine/runtime/precision.ts';
import { CompiledGraph } from '../main/engine/runtime/session.ts';
import { engineThreads, median, round } from './common.ts';

export interface GemmBenchOptions {
  model: string;
  batch: number;
  seq: number;
  repeats: number;
  warmup: number;
  /** cpu (onnxruntime's own kernel timings) or a GPU (wall time of runs on operands held on it). Default cpu. */
  device?: DeviceRequest;
  /** mixed: float16 operands and product (a GPU only). Default fp32. */
  precision?: Precision;
}

/** One product of the step: op(A) @ op(B) = [m, n] over k, done `count` times per step. */
export interface StepGemm {
  /** The linear layers' weight shape [out, in], and which of its three products this is. */
  weight: [number, number];
  pass: 'forward' | 'input_grad' | 'weight_grad';
  m: number;
  n: number;
  k: number;
  trans_a: boolean;
  trans_b: boolean;
  count: number;
}

export interface GemmTiming extends StepGemm {
  ms: number;
  gflop_per_s: number;
  /** On a GPU: the same product as a MatMul of operands laid out [m, k] and [k, n] (no transpose attribute), for comparing onnxruntime's two kernels. */
  matmul_ms?: number;
}

export interface GemmResult {
  bench: 'gemm';
  impl: 'autodidact' | 'pytorch';
  model: string;
  device: string;
  precision: Precision;
  batch: number;
  seq: number;
  threads: number;
  /** Σ count · ms: the step's linear-layer products, in milliseconds. */
  gemm_ms_per_step: number;
  gflop_per_step: number;
  gemms: GemmTiming[];
}

/**
 * The products of every linear layer (and the LM head) in one training step over `tokens` rows,
 * oriented as the engine's `linear` and its gradient rule emit them: y = x Wᵀ, dx = dy W,
 * dW = dyᵀ x. Layers with the same weight shape share one entry. Attention's batched products
 * and the embedding's gradient are left out: they are small, and done differently on each side.
 */
export function stepGemms(weights: [out: number, inp: number][], tokens: number): StepGemm[] {
  const groups = new Map<string, { weight: [number, number]; count: number }>();
  for (const [o, i] of weights) {
    const key = `${o}x${i}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { weight: [o, i], count: 0 }));
    group.count++;
  }
  return [...groups.values()].flatMap(({ weight, count }) => {
    const [o, i] = weight;
    return [
      { weight, pass: 'forward', m: tokens, n: o, k: i, trans_a: false, trans_b: true, count },
      { weight, pass: 'input_grad', m: tokens, n: i, k: o, trans_a: false, trans_b: false, count },
      { weight, pass: 'weight_grad', m: o, n: i, k: tokens, trans_a: true, trans_b: false, count },
    ] satisfies StepGemm[];
  });
}

/** Weight shapes of a model's linear layers: every *_proj and the LM head (tied or not). */
export function linearWeights(shapes: [string, number[]][], tiedEmbeddings: boolean): [number, number][] {
  const linear = shapes.filter(([name]) => name.endsWith('_proj.weight') || name === 'lm_head.weight');
  const out = linear.map(([, s]) => [s[0], s[1]] as [number, number]);
  if (tiedEmbeddings) {
    const [v, h] = shapes.find(([name]) => name === 'model.embed_tokens.weight')![1];
    out.push([v, h]);
  }
  return out;
}

/**
 * The kernel time of one Gemm node, from onnxruntime's own profile: the wall time of a run would
 * also count copying the result out to Javascript, which the engine's step never does for these.
 */
async function timeGemm(g: StepGemm, repeats: number, warmup: number, profilePrefix: string): Promise<number> {
  const graph = new Graph('gemm');
  const a = graph.input('a', g.trans_a ? [g.k, g.m] : [g.m, g.k]);
  const b = graph.input('b', g.trans_b ? [g.n, g.k] : [g.k, g.n]);
  graph.output('c', op.gemm(a, b, g.trans_a, g.trans_b));
  const session = await ort.InferenceSession.create(
    emitModel(graph),
    sessionOptions({ name: 'cpu', keepsStateOnDevice: false }, { enableProfiling: true, profileFilePrefix: profilePrefix }),
  );
  const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
  const feeds = { a: new ort.Tensor('float32', random(g.m * g.k), a.shape as number[]), b: new ort.Tensor('float32', random(g.k * g.n), b.shape as number[]) };
  for (let i = 0; i < warmup + repeats; i++) await session.run(feeds);
  await session.endProfiling();
  await session.release();
  // onnxruntime names the file PREFIX_<date>_<time>.json.
  const dir = path.dirname(profilePrefix);
  const name = fs.readdirSync(dir).find((f) => f.startsWith(`${path.basename(profilePrefix)}_`) && f.endsWith('.json'));
  if (!name) throw new Error(`onnxruntime wrote no profile under ${profilePrefix}`);
  const events = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as { cat?: string; name: string; dur: number; args?: { op_name?: string } }[];
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.args?.op_name === 'Gemm').map((e) => e.dur / 1000);
  if (kernels.length !== warmup + repeats) throw new Error(`onnxruntime's profile holds ${kernels.length} Gemm timings, expected ${warmup + repeats}`);
  return median(kernels.slice(warmup));
}

/**
 * On a GPU onnxruntime's profile times how long a kernel took to record, not to run, so a product
 * is timed by the wall clock: `repeats` runs on operands held on the device, their products kept
 * there, then one read of a single value, which waits for the queue (WebGPU runs a device's work
 * in order). Each run's own overhead is counted, as a step's nodes pay it. `matmul`: the same
 * product as MatMul with the operands laid out for it.
 */
interface DeviceTiming {
  device: Device;
  precision: Precision;
  transfer: DeviceTransfer;
  /** A one-value graph whose CPU output waits for the device's queue. */
  reader: CompiledGraph;
}

async function deviceTiming(device: Device, precision: Precision): Promise<DeviceTiming> {
  const sync = new Graph('sync');
  sync.output('y', op.add(sync.input('x', [1]), 1));
  return { device, precision, transfer: new DeviceTransfer(device, 'float32'), reader: await CompiledGraph.create(sync, device) };
}

async function timeOnDevice(g: StepGemm, { device, precision, transfer, reader }: DeviceTiming, repeats: number, warmup: number, matmul: boolean): Promise<number> {
  const dtype = precision === 'mixed' ? 'float16' : 'float32';
  const graph = new Graph('gemm');
  const a = graph.input('a', !matmul && g.trans_a ? [g.k, g.m] : [g.m, g.k], dtype);
  const b = graph.input('b', !matmul && g.trans_b ? [g.n, g.k] : [g.k, g.n], dtype);
  graph.output('c', matmul ? op.matmul(a, b) : op.gemm(a, b, g.trans_a, g.trans_b));
  const product = await CompiledGraph.create(graph, device, { keepOnDevice: ['c'] });
  const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
  const shapes = [a.shape, b.shape].map((s) => [...s]);
  const operands = shapes.map((shape) => ({ data: random(shape[0] * shape[1]), shape }));
  const [ta, tb] = precision === 'mixed' ? await transfer.uploadHalf(operands) : await transfer.upload(operands);
  const wait = async () => void (await reader.run({ x: new ort.Tensor('float32', Float32Array.of(0), [1]) }));
  try {
    for (let i = 0; i < warmup; i++) disposeTensor((await product.run({ a: ta, b: tb })).c);
    await wait();
    const started = performance.now();
    for (let i = 0; i < repeats; i++) disposeTensor((await product.run({ a: ta, b: tb })).c);
    await wait();
    return (performance.now() - started) / repeats;
  } finally {
    disposeTensor(ta);
    disposeTensor(tb);
    await product.release();
  }
}

export async function benchGemm(o: GemmBenchOptions): Promise<GemmResult> {
  const { config } = await loadModelFolder(o.model);
  const device = await resolveDevice(o.device ?? 'cpu');
  const precision = o.precision ?? 'fp32';
  if (precision === 'mixed' && !device.keepsStateOnDevice) throw new Error('gemm --precision mixed times float16 products on a GPU (--device webgpu); the CPU has no float16 kernels');
  const list = stepGemms(linearWeights(weightShapes(config), config.tieWordEmbeddings), o.batch * o.seq);
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-gemm-'));
  const gemms: GemmTiming[] = [];
  const perSecond = (g: StepGemm, ms: number) => round((2 * g.m * g.n * g.k) / ms / 1e6, 1);
  const onDevice = device.keepsStateOnDevice ? await deviceTiming(device, precision) : null;
  try {
    for (const [index, g] of list.entries()) {
      if (onDevice) {
        const ms = await timeOnDevice(g, onDevice, o.repeats, o.warmup, false);
        const matmulMs = await timeOnDevice(g, onDevice, o.repeats, o.warmup, true);
        gemms.push({ ...g, ms: round(ms), gflop_per_s: perSecond(g, ms), matmul_ms: round(matmulMs) });
        continue;
      }
      // One prefix per product: a forward and an input gradient can share a shape.
      const ms = await timeGemm(g, o.repeats, o.warmup, path.join(profileDir, `gemm${index}`));
      gemms.push({ ...g, ms: round(ms), gflop_per_s: perSecond(g, ms) });
    }
  } finally {
    fs.rmSync(profileDir, { recursive: true, force: true });
    await onDevice?.reader.release();
    await onDevice?.transfer.release();
  }
  return {
    bench: 'gemm',
    impl: 'autodidact',
    model: path.basename(path.resolve(o.model)),
    device: device.name,
    precision,
    batch: o.batch,
    seq: o.seq,
    threads: engineThreads(),
    gemm_ms_per_step: round(gemms.reduce((s, g) => s + g.count * g.ms, 0), 2),
    gflop_per_step: round(list.reduce((s, g) => s + (g.count * 2 * g.m * g.n * g.k) / 1e9, 0), 3),
    gemms,
  };
}
