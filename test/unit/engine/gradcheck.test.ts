// Every gradient rule, checked against central finite differences on the test device.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { grad } from '../../../main/engine/graph/autodiff.ts';
import { emitModel } from '../../../main/engine/graph/emit.ts';
import { Graph } from '../../../main/engine/graph/graph.ts';
import * as op from '../../../main/engine/graph/ops.ts';
import { sessionOptions } from '../../../main/engine/runtime/devices.ts';
import { TEST_DEVICE_NAME } from '../../helpers/device.ts';
import { gradcheck } from '../../helpers/gradcheck.ts';

const positive = (n: number, seed = 3) => Array.from({ length: n }, (_, i) => 0.5 + ((i * 7919 + seed) % 13) / 10);

describe('gradient rules match finite differences', () => {
  it('add, sub, mul, div with broadcasting', async () => {
    await gradcheck((a, b) => op.add(a, b), [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }]);
    await gradcheck((a, b) => op.sub(a, b), [{ name: 'a', shape: [2, 1, 3] }, { name: 'b', shape: [4, 1] }]);
    await gradcheck((a, b) => op.mul(a, b), [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 1] }]);
    await gradcheck((a, b) => op.div(a, b), [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3], values: positive(3) }]);
  });

  it('elementwise maximum and minimum', async () => {
    await gradcheck((a, b) => op.maximum(a, b), [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 3] }]);
    await gradcheck((a, b) => op.minimum(a, b), [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }]);
  });

  it('unary functions', async () => {
    await gradcheck((x) => op.neg(x), [{ name: 'x', shape: [5] }]);
    await gradcheck((x) => op.exp(x), [{ name: 'x', shape: [5] }]);
    await gradcheck((x) => op.log(x), [{ name: 'x', shape: [5], values: positive(5) }]);
    await gradcheck((x) => op.sqrt(x), [{ name: 'x', shape: [5], values: positive(5) }]);
    await gradcheck((x) => op.tanh(x), [{ name: 'x', shape: [5] }]);
    await gradcheck((x) => op.sigmoid(x), [{ name: 'x', shape: [5] }]);
    await gradcheck((x) => op.abs(x), [{ name: 'x', shape: [5] }]);
    await gradcheck((x) => op.pow(x, 3), [{ name: 'x', shape: [5] }]);
    await gradcheck((x) => op.pow(x, -0.5), [{ name: 'x', shape: [5], values: positive(5) }]);
    await gradcheck((x) => op.clip(x, -0.3, 0.4), [{ name: 'x', shape: [8], values: [-0.9, -0.5, -0.2, 0, 0.1, 0.35, 0.6, 0.95] }]);
  });

  it('SiLU (a primitive: sigmoid recomputed in the backward)', async () => {
    await gradcheck((x) => op.silu(x), [{ name: 'x', shape: [6] }]);
    await gradcheck((x) => op.silu(x), [{ name: 'x', shape: [2, 4], values: [-6, -2.5, -1, -0.2, 0, 0.3, 1.5, 5] }]);
  });

  it('where', async () => {
    await gradcheck(
      (a, b) => op.where(op.greater(a, 0), a, b),
      [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }],
    );
  });

  it('matmul, plain and batched with broadcasting', async () => {
    await gradcheck((a, b) => op.matmul(a, b), [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [4, 2] }]);
    await gradcheck((a, b) => op.matmul(a, b), [{ name: 'a', shape: [2, 1, 3, 4] }, { name: 'b', shape: [3, 4, 2] }]);
  });

  it('gemm in all four transpose cases, and a linear layer with bias', async () => {
    for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]]) {
      await gradcheck((a, b) => op.gemm(a, b, tA, tB), [
        { name: 'a', shape: tA ? [4, 3] : [3, 4] },
        { name: 'b', shape: tB ? [2, 4] : [4, 2] },
      ]);
    }
    await gradcheck((x, w, b) => op.linear(x, w, b), [
      { name: 'x', shape: [2, 3, 4] },
      { name: 'w', shape: [5, 4] },
      { name: 'b', shape: [5] },
    ]);
  });

  it('reshape, transpose, slice, concat, expand', async () => {
    await gradcheck((x) => op.reshape(x, [3, -1]), [{ name: 'x', shape: [2, 3, 2] }]);
    await gradcheck((x) => op.transpose(x, [2, 0, 1]), [{ name: 'x', shape: [2, 3, 4] }]);
    await gradcheck((x) => op.slice(x, 1, 1, 3), [{ name: 'x', shape: [2, 4, 2] }]);
    await gradcheck((a, b) => op.concat([a, b, a], 1), [{ name: 'a', shape: [2, 1] }, { name: 'b', shape: [2, 3] }]);
    await gradcheck((x) => op.expand(x, [3, 2, 4]), [{ name: 'x', shape: [2, 1] }]);
  });

  it('a chain of reshapes is one Reshape from its start (none back to its shape), also through a primitive', async () => {
    const g = new Graph('chain');
    const x = g.input('x', [2, 3, 4]);
    const y = op.reshape(op.reshape(op.reshape(x, [6, 4]), [2, 12]), [24]);
    expect(g.nodes.filter((n) => n.opType === 'Reshape').map((n) => n.inputs[0])).toEqual(['x', 'x', 'x']);
    expect(op.reshape(y, [2, 3, 4])).toBe(x);
    await gradcheck((a) => op.mul(op.reshape(op.reshape(op.exp(a), [6, 4]), [4, 6]), op.reshape(a, [4, 6])), [{ name: 'a', shape: [2, 3, 4] }]);
    // linearLogSoftmaxPick views its picks with an untaped reshape: a taped reshape of its output
    // must still differentiate through the primitive rather than read the view's source.
    await gradcheck((h, w, i) => op.reshape(op.linearLogSoftmaxPick(h, w, i), [6]), [
      { name: 'h', shape: [2, 3, 3] },
      { name: 'w', shape: [5, 3] },
      { name: 'ids', shape: [2, 3, 1], values: [4, 0, 2, 1, 4, 4], int: true },
    ]);
  });

  it('reductions', async () => {
    await gradcheck((x) => op.sum(x, [1]), [{ name: 'x', shape: [2, 3, 2] }]);
    await gradcheck((x) => op.sum(x, [0, 2], true), [{ name: 'x', shape: [2, 3, 2] }]);
    await gradcheck((x) => op.mean(x, [-1]), [{ name: 'x', shape: [3, 4] }]);
    await gradcheck((x) => op.max(x, [1]), [{ name: 'x', shape: [3, 4] }]);
    await gradcheck((x) => op.logSumExp(x, -1), [{ name: 'x', shape: [3, 4] }]);
  });

  it('softmax and log-softmax', async () => {
    await gradcheck((x) => op.softmax(x, -1), [{ name: 'x', shape: [2, 5] }]);
    await gradcheck((x) => op.softmax(x, 0), [{ name: 'x', shape: [3, 2] }]);
    await gradcheck((x) => op.logSoftmax(x, -1), [{ name: 'x', shape: [2, 5] }]);
  });

  it('gather (embedding) with repeated indices, by scatter-add and by one-hot product', async () => {
    for (const way of ['scatter', 'onehot'] as const) {
      await gradcheck((t, i) => op.gather(t, i, way), [
        { name: 'table', shape: [5, 3] },
        { name: 'ids', shape: [2, 3], values: [4, 0, 4, 1, 4, 0], int: true },
      ]);
    }
  });

  it('gatherLast (token log-prob pick)', async () => {
    await gradcheck((x, i) => op.gatherLast(op.logSoftmax(x), i), [
      { name: 'x', shape: [2, 3, 5] },
      { name: 'ids', shape: [2, 3, 1], values: [4, 0, 2, 1, 4, 4], int: true },
    ]);
  });

  it('logSoftmaxPick (a primitive: the token log-prob, gradient by one scatter add)', async () => {
    await gradcheck((x, i) => op.logSoftmaxPick(x, i), [
      { name: 'x', shape: [2, 3, 5] },
      { name: 'ids', shape: [2, 3, 1], values: [4, 0, 2, 1, 4, 4], int: true },
    ]);
    // Several picks per row, one of them twice: the scatter must add, and the row sum of g counts both.
    await gradcheck((x, i) => op.logSoftmaxPick(x, i), [
      { name: 'x', shape: [3, 4] },
      { name: 'ids', shape: [3, 2], values: [0, 3, 2, 2, 1, 0], int: true },
    ]);
  });

  it('linearLogSoftmaxPick (a primitive: the token log-prob from hidden states, gradient on the hidden side)', async () => {
    const W = { name: 'w', shape: [5, 3] };
    await gradcheck((x, w, i) => op.linearLogSoftmaxPick(x, w, i), [{ name: 'x', shape: [2, 3, 3] }, W, { name: 'ids', shape: [2, 3, 1], values: [4, 0, 2, 1, 4, 4], int: true }]);
    // A temperature (scale ≠ 1), and several picks per position, one of them twice.
    await gradcheck((x, w, i) => op.linearLogSoftmaxPick(x, w, i, 1 / 0.7), [{ name: 'x', shape: [3, 3] }, W, { name: 'ids', shape: [3, 2], values: [0, 3, 2, 2, 1, 0], int: true }]);
  });

  it('RMSNorm (a primitive: per-row scale recomputed in the backward)', async () => {
    await gradcheck((x, w) => op.rmsNorm(x, w, 1e-6), [{ name: 'x', shape: [2, 3, 4] }, { name: 'w', shape: [4] }]);
    // Per-head norm (q_norm / k_norm): [B, heads, T, D] with one [D] weight; a single row.
    await gradcheck((x, w) => op.rmsNorm(x, w, 1e-5), [{ name: 'x', shape: [1, 2, 3, 4] }, { name: 'w', shape: [4] }]);
    await gradcheck((x, w) => op.rmsNorm(x, w, 1e-6), [{ name: 'x', shape: [5] }, { name: 'w', shape: [5] }]);
    // A weight that is not one [H] vector takes the general (broadcast) path of the rule.
    await gradcheck((x, w) => op.rmsNorm(x, w, 1e-6), [{ name: 'x', shape: [2, 3, 4] }, { name: 'w', shape: [3, 4] }]);
    // With eps large against mean(x²), so a wrong eps term in the rule shows.
    await gradcheck((x, w) => op.rmsNorm(x, w, 0.5), [{ name: 'x', shape: [3, 4] }, { name: 'w', shape: [4] }]);
  });

  it('RoPE', async () => {
    const T = 3;
    const D = 4;
    const cos = Array.from({ length: T * D }, (_, i) => Math.cos((i % D) * 0.3 + Math.floor(i / D)));
    const sin = Array.from({ length: T * D }, (_, i) => Math.sin((i % D) * 0.3 + Math.floor(i / D)));
    await gradcheck((x, c, s) => op.rope(x, c, s), [
      { name: 'x', shape: [1, 2, T, D] },
      { name: 'cos', shape: [T, D], values: cos },
      { name: 'sin', shape: [T, D], values: sin },
    ]);
  });

  it('causal attention with grouped KV heads', async () => {
    const T = 3;
    const bias = Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -1e4 : 0));
    await gradcheck((q, k, v, b) => op.attention(q, k, v, b), [
      { name: 'q', shape: [1, 4, T, 2] },
      { name: 'k', shape: [1, 2, T, 2] },
      { name: 'v', shape: [1, 2, T, 2] },
      { name: 'bias', shape: [T, T], values: bias },
    ]);
    // A per-sequence padding mask [B, 1, 1, 1, S] (the training graph's) with two query heads per KV head.
    const padding = [0, 0, -1e4, 0, 0, 0];
    await gradcheck((q, k, v, b) => op.attention(q, k, v, b), [
      { name: 'q', shape: [2, 4, T, 2] },
      { name: 'k', shape: [2, 2, T, 2] },
      { name: 'v', shape: [2, 2, T, 2] },
      { name: 'bias', shape: [2, 1, 1, 1, T], values: padding },
    ]);
  });
});

// RMSNorm and SiLU are primitives so that onnxruntime's CPU optimiser can fuse their forward
// (SimplifiedLayerNormalization, QuickGelu) in training graphs too: that needs every forward
// intermediate to have one consumer, so the backward must neither read one nor repeat a node
// of the pattern (common-subexpression elimination would merge them). The fused kernels are
// float32-only, so this is a CPU float32 check.
describe.skipIf(TEST_DEVICE_NAME !== 'cpu')('onnxruntime fuses the RMSNorm and SiLU forward in a training graph', () => {
  it('leaves SimplifiedLayerNormalization and QuickGelu nodes after optimisation', async () => {
    const g = new Graph('fusion');
    const x = g.input('x', [2, 3, 8]);
    const w = g.input('w', [8]);
    const y = op.silu(op.rmsNorm(x, w, 1e-5));
    expect(g.tape.map((e) => e.op)).toEqual(['rmsNorm', 'silu']);
    const loss = op.sum(op.mul(y, g.constant(Array.from({ length: y.size }, (_, i) => Math.sin(i)), y.shape, 'float32')));
    g.output('loss', loss);
    grad(loss, [x, w]).forEach((gr, i) => g.output(`grad_${i}`, gr));

    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'autodidact-fusion-'));
    try {
      const file = path.join(dir, 'optimized.onnx');
      const session = await ort.InferenceSession.create(emitModel(g), sessionOptions({ name: 'cpu', keepsStateOnDevice: false }, { optimizedModelFilePath: file }));
      await session.release();
      const nodes = onnxProto.onnx.ModelProto.decode(await fs.readFile(file)).graph?.node ?? [];
      const count = (type: string) => nodes.filter((n) => n.opType === type).length;
      expect(count('SimplifiedLayerNormalization')).toBe(1);
      expect(count('QuickGelu')).toBe(1);
      expect(count('ReduceMean')).toBe(0);
      expect(count('Sigmoid')).toBe(1); // the backward's own
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
