// A transpose that moves only axes of size 1 is written as a Reshape (no copy, and on a GPU no
// kernel dispatch): attention's head split and merge in every decode step. Checked for the nodes
// it emits and, against a host transpose, for the values and the gradient it gives.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { grad } from '../../../main/engine/graph/autodiff.ts';
import { emitModel } from '../../../main/engine/graph/emit.ts';
import { Graph } from '../../../main/engine/graph/graph.ts';
import * as op from '../../../main/engine/graph/ops.ts';
import { sessionOptions } from '../../../main/engine/runtime/devices.ts';
import { cpuTensor } from '../../../main/engine/runtime/session.ts';

/** out[perm-index] = x, on the host: the reference transpose. */
function hostTranspose(x: Float32Array, shape: number[], perm: number[]): Float32Array {
  const outShape = perm.map((p) => shape[p]);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(x.length);
  const idx = new Array(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    perm.forEach((p, i) => (src += idx[i] * strides[p]));
    out[o] = x[src];
    for (let d = outShape.length - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

describe('transpose', () => {
  it.each([
    ['moves only a size-1 axis: a Reshape', [2, 1, 3, 4], [0, 2, 1, 3], 'Reshape'],
    ['swaps two sized axes: a Transpose', [2, 2, 3, 4], [0, 2, 1, 3], 'Transpose'],
    ['moves a size-1 axis and swaps sized ones: a Transpose', [1, 3, 4], [2, 0, 1], 'Transpose'],
  ])('%s', async (_name, shape, perm, expected) => {
    const g = new Graph('t');
    const x = g.input('x', shape);
    const w = g.input('w', perm.map((p) => shape[p]));
    const y = op.transpose(x, perm);
    const loss = op.sum(op.mul(y, w));
    const [dx] = grad(loss, [x]);
    g.output('y', y);
    g.output('dx', dx);
    const ops = g.nodes.map((n) => n.opType);
    expect(ops).toContain(expected);
    expect(ops).not.toContain(expected === 'Reshape' ? 'Transpose' : '__none__');

    const size = shape.reduce((a, b) => a * b, 1);
    const xs = Float32Array.from({ length: size }, (_, i) => Math.sin(i + 1));
    const ws = Float32Array.from({ length: size }, (_, i) => Math.cos(3 * i));
    const session = await ort.InferenceSession.create(emitModel(g), sessionOptions({ name: 'cpu', keepsStateOnDevice: false }));
    const out = await session.run({ x: cpuTensor(xs, shape), w: cpuTensor(ws, perm.map((p) => shape[p])) });
    await session.release();
    expect(Array.from(out.y.data as Float32Array)).toEqual(Array.from(hostTranspose(xs, shape, perm)));
    // d(sum(transpose(x) * w))/dx = w transposed back.
    const inverse = perm.map((_, i) => perm.indexOf(i));
    expect(Array.from(out.dx.data as Float32Array)).toEqual(Array.from(hostTranspose(ws, perm.map((p) => shape[p]), inverse)));
  });
});
