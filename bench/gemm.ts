// The matrix products of one full fine-tuning step, timed one by one in onnxruntime's CPU kernel:
// the part of a training step whose speed the engine cannot change, only onnxruntime can. Its
// twin, bench/reference/gemm.py, times the same products in PyTorch, so `compare-gemm` shows how
// much of the `compare-train` ratio the two libraries' matrix kernels account for.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { emitModel } from '../main/engine/graph/emit.ts';
import { Graph } from '../main/engine/graph/graph.ts';
import * as op from '../main/engine/graph/ops.ts';
import { weightShapes } from '../main/engine/nn/config.ts';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { sessionOptions } from '../main/engine/runtime/devices.ts';
import { engineThreads, median, round } from './common.ts';

export interface GemmBenchOptions {
  model: string;
  batch: number;
  seq: number;
  repeats: number;
  warmup: number;
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
}

export interface GemmResult {
  bench: 'gemm';
  impl: 'autodidact' | 'pytorch';
  model: string;
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

export async function benchGemm(o: GemmBenchOptions): Promise<GemmResult> {
  const { config } = await loadModelFolder(o.model);
  const list = stepGemms(linearWeights(weightShapes(config), config.tieWordEmbeddings), o.batch * o.seq);
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-gemm-'));
  const gemms: GemmTiming[] = [];
  try {
    for (const [index, g] of list.entries()) {
      // One prefix per product: a forward and an input gradient can share a shape.
      const ms = await timeGemm(g, o.repeats, o.warmup, path.join(profileDir, `gemm${index}`));
      gemms.push({ ...g, ms: round(ms), gflop_per_s: round((2 * g.m * g.n * g.k) / ms / 1e6, 1) });
    }
  } finally {
    fs.rmSync(profileDir, { recursive: true, force: true });
  }
  return {
    bench: 'gemm',
    impl: 'autodidact',
    model: path.basename(path.resolve(o.model)),
    batch: o.batch,
    seq: o.seq,
    threads: engineThreads(),
    gemm_ms_per_step: round(gemms.reduce((s, g) => s + g.count * g.ms, 0), 2),
    gflop_per_step: round(list.reduce((s, g) => s + (g.count * 2 * g.m * g.n * g.k) / 1e9, 0), 3),
    gemms,
  };
}
