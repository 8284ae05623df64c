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
