// Gemm fusion (graph/gemm-fusion.ts): a scalar factor and the sum a product is added into,
// written into the Gemm (alpha, beta, C). The rewritten model must compute what the graph
// does, on onnxruntime's CPU kernels and on the test device's, and leave alone what it
// cannot fold: a product read twice, a graph output, a sum that broadcasts.
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { emitModel } from '../../../main/engine/graph/emit.ts';
import { fuseIntoGemm } from '../../../main/engine/graph/gemm-fusion.ts';
import { Graph, type Sym } from '../../../main/engine/graph/graph.ts';
import { passesFor } from '../../../main/engine/graph/lowering.ts';
import * as op from '../../../main/engine/graph/ops.ts';
import { loraDelta } from '../../../main/engine/nn/lora.ts';
import { sessionOptions } from '../../../main/engine/runtime/devices.ts';
import { CompiledGraph } from '../../../main/engine/runtime/session.ts';
import { CHECK_DTYPE, testDevice } from '../../helpers/device.ts';
import { rng } from '../../helpers/gradcheck.ts';

const dtype = CHECK_DTYPE as 'float32' | 'float64';
const CPU = { name: 'cpu', keepsStateOnDevice: false } as const;

function opsOf(bytes: Uint8Array): string[] {
  return (onnxProto.onnx.ModelProto.decode(bytes).graph?.node ?? []).map((n) => String(n.opType));
}

function randomTensor(shape: number[], seed: number): ort.Tensor {
  const random = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, () => random() * 2 - 1);
  return new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values), shape);
}

async function runOnCpu(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float64Array>> {
  const session = await ort.InferenceSession.create(bytes, sessionOptions(CPU));
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Float64Array.from(t.data as Float32Array)]));
}

/** A LoRA layer and its gradient, as the training step has them: base + ((x·Aᵀ)·s)·Bᵀ, then a sum of products. */
function loraGraph(): { g: Graph; inputs: Record<string, number[]> } {
  const g = new Graph('lora_layer');
  const [N, IN, OUT, R] = [6, 8, 5, 2];
  const x = g.input('x', [N, IN], dtype);
  const w = g.input('w', [OUT, IN], dtype);
  const a = g.input('a', [R, IN], dtype);
  const b = g.input('b', [OUT, R], dtype);
  const v = g.input('v', [OUT, IN], dtype);
  const y = op.add(op.linear(x, w), loraDelta(x, a, b, 1.75));
  g.output('y', y);
  // Two products summed, the way a layer input's gradient gathers its readers' terms.
  const dy = g.input('dy', [N, OUT], dtype);
  g.output('dx', op.add(op.gemm(dy, w), op.gemm(dy, v)));
  // A scaled product read twice: the scale goes into both readers.
  const scaled = op.mul(x, 0.5) as Sym;
  g.output('twice', op.add(op.gemm(scaled, w, false, true), op.mul(op.gemm(scaled, v, false, true), 3)));
  return { g, inputs: { x: [N, IN], w: [OUT, IN], a: [R, IN], b: [OUT, R], v: [OUT, IN], dy: [N, OUT] } };
}

describe('Gemm fusion', () => {
  it('folds scales and sums into the Gemms and computes the same values (onnxruntime CPU kernels)', async () => {
    const { g, inputs } = loraGraph();
    const plain = emitModel(g);
    const fused = emitModel(g, [], [fuseIntoGemm]);
    const [before, after] = [opsOf(plain), opsOf(fused)];
    const count = (ops: string[], t: string) => ops.filter((o) => o === t).length;
    expect(count(after, 'Gemm')).toBe(count(before, 'Gemm'));
    // Every Mul by a constant and every Add of a product is gone.
    expect(count(after, 'Mul')).toBe(0);
    expect(count(after, 'Add')).toBe(0);
    expect(count(before, 'Mul') + count(before, 'Add')).toBe(6);
    const feeds = Object.fromEntries(Object.entries(inputs).map(([k, shape], i) => [k, randomTensor(shape, i + 1)]));
    const [want, got] = [await runOnCpu(plain, feeds), await runOnCpu(fused, feeds)];
    for (const k of ['y', 'dx', 'twice']) {
      want[k].forEach((value, i) => expect(Math.abs(got[k][i] - value), `${k}[${i}]`).toBeLessThan(dtype === 'float64' ? 1e-13 : 1e-5));
    }
  });

  it('runs on the test device as the graph is compiled for it', async () => {
    const device = await testDevice();
    const { g, inputs } = loraGraph();
    const feeds = Object.fromEntries(Object.entries(inputs).map(([k, shape], i) => [k, randomTensor(shape, i + 1)]));
    const want = await runOnCpu(emitModel(g), feeds);
    const compiled = await CompiledGraph.create(g, device);
    const got = await compiled.run(feeds);
    await compiled.release();
    for (const k of ['y', 'dx', 'twice']) {
      const values = got[k].data as Float32Array;
      want[k].forEach((value, i) => expect(Math.abs(values[i] - value), `${k}[${i}]`).toBeLessThan(dtype === 'float64' ? 1e-13 : 1e-5));
    }
    expect(passesFor('cpu')).toEqual([]);
  });

  it('leaves a product read twice, a product that is a graph output and a sum that broadcasts', () => {
    const g = new Graph('unfusable');
    const x = g.input('x', [3, 4], dtype);
    const w = g.input('w', [2, 4], dtype);
    const p = op.linear(x, w);
    g.output('sum', op.add(p, g.input('y', [3, 2], dtype)));
    g.output('again', op.mul(p, 2));
    const q = op.linear(x, w);
    g.output('q', q);
    g.output('q_sum', op.add(q, g.input('z', [3, 2], dtype)));
    g.output('broadcast', op.add(op.linear(x, g.input('u', [2, 4], dtype)), g.input('row', [1, 2], dtype)));
    const ops = opsOf(emitModel(g, [], [fuseIntoGemm]));
    // p read by the Add and the Mul; q an output; the last sum broadcasts a row: all as written.
    expect(ops.filter((o) => o === 'Add').length).toBe(3);
    expect(ops.filter((o) => o === 'Mul').length).toBe(1);
  });
});
