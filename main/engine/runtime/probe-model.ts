// A one-node model used to check that an execution provider starts.
import { Graph } from '../graph/graph.ts';
import { emitModel } from '../graph/emit.ts';
import * as op from '../graph/ops.ts';

export function probeModel(): Uint8Array {
  const g = new Graph('probe');
  const x = g.input('x', [2, 2]);
  g.output('y', op.add(x, x));
  return emitModel(g);
}

/**
 * A float16 product, cast back to float32: the kernels mixed precision cannot do without
 * (halfPrecisionSupport in devices.ts).
 */
export function halfProbeModel(): Uint8Array {
  const g = new Graph('half_probe');
  const a = op.cast(g.input('a', [2, 2], 'float32'), 'float16');
  g.output('y', op.cast(op.gemm(a, a, false, true), 'float32'));
  return emitModel(g);
}
