// Gradient checking: the autodiff gradient of a random projection of an op's output against
// central finite differences of the same compiled graph's forward value.
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { grad } from '../../main/engine/graph/autodiff.ts';
import type { DType } from '../../main/engine/graph/dtype.ts';
import { Graph, type Sym } from '../../main/engine/graph/graph.ts';
import * as op from '../../main/engine/graph/ops.ts';
import { CompiledGraph } from '../../main/engine/runtime/session.ts';
import { mulberry32Uniform } from '../../main/engine/runtime/rng.ts';
import { CHECK_DTYPE, testDevice } from './device.ts';

/** A seeded generator (mulberry32), so failures reproduce. */
export const rng = mulberry32Uniform;

export interface CheckInput {
  name: string;
  shape: number[];
  /** Values; default uniform in [-1, 1). */
  values?: number[];
  /** Integer inputs (indices) are fed as int32 and not differentiated. */
  int?: boolean;
}

function typed(dtype: DType, values: ArrayLike<number>): Float32Array | Float64Array {
  return dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}

/**
 * Check d(sum(R ⊙ f(inputs)))/d(input) for every float input against central differences.
 * `build` receives the symbolic inputs in order and returns f's output.
 */
export async function gradcheck(build: (...xs: Sym[]) => Sym, inputs: CheckInput[], seed = 1): Promise<void> {
  const dtype = CHECK_DTYPE;
  const device = await testDevice();
  const random = rng(seed);
  const g = new Graph('gradcheck');
  const syms = inputs.map((i) => g.input(i.name, i.shape, i.int ? 'int32' : dtype));
  const y = build(...syms);
  const projection = Array.from({ length: y.size }, () => random() * 2 - 1);
  const loss = op.sum(op.mul(y, g.constant(projection, y.shape, y.dtype)));
  g.output('loss', loss);
  const floatInputs = syms.filter((_, i) => !inputs[i].int);
  grad(loss, floatInputs).forEach((gx, i) => g.output(`grad_${floatInputs[i].name}`, gx));
  const compiled = await CompiledGraph.create(g, device);

  const values = inputs.map((i) => i.values ?? Array.from({ length: i.shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1));
  const feeds = (vals: number[][]): Record<string, ort.Tensor> =>
    Object.fromEntries(
      inputs.map((inp, i) => [
        inp.name,
        new ort.Tensor(inp.int ? 'int32' : dtype, inp.int ? Int32Array.from(vals[i]) : typed(dtype, vals[i]), inp.shape),
      ]),
    );
  const result = await compiled.run(feeds(values));

  const eps = dtype === 'float64' ? 1e-6 : 1e-2;
  const [atol, rtol] = dtype === 'float64' ? [1e-7, 1e-6] : [5e-3, 3e-2];
  const lossAt = async (vals: number[][]) => Number((await compiled.run(feeds(vals))).loss.data[0]);
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i].int) continue;
    const analytic = result[`grad_${inputs[i].name}`].data as Float64Array;
    for (let j = 0; j < values[i].length; j++) {
      const plus = values.map((v) => [...v]);
      const minus = values.map((v) => [...v]);
      plus[i][j] += eps;
      minus[i][j] -= eps;
      const numeric = ((await lossAt(plus)) - (await lossAt(minus))) / (2 * eps);
      const a = analytic[j];
      const ok = Math.abs(a - numeric) <= atol + rtol * Math.abs(numeric);
      if (!ok) {
        expect.fail(`d loss / d ${inputs[i].name}[${j}]: autodiff ${a}, finite difference ${numeric}`);
      }
    }
  }
  await compiled.release();
}
