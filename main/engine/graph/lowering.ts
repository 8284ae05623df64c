// Lowerings: node rewrites applied while a graph is written for one execution provider, where
// that provider has no kernel for an op the graph library emits. onnxruntime would otherwise
// place the node on its CPU provider and copy its inputs to the host and its outputs back on
// every run (for the token log-prob that is the [tokens × vocabulary] logits, 1.2 GB a step on
// a 150k vocabulary). The graph library keeps emitting the op the CPU runs fastest; only the
// written model differs per provider, and each lowering computes the same function. Nodes a
// lowering leaves unread are pruned afterwards.
import type { NodeSpec } from './graph.ts';

/** Replacement nodes for `node`, or null to keep it. `fresh` names new intermediate values. */
export type Lowering = (node: NodeSpec, fresh: (hint: string) => string) => NodeSpec[] | null;

/**
 * LogSoftmax (no WebGPU kernel in onnxruntime 1.30) as x − m − log Σ exp(x − m) with m the row
 * maximum: ReduceMax, Sub, ReduceLogSumExp, Sub. The shift makes every exponent ≤ 0 with one
 * exactly 0, so the sum is in [1, n] and ReduceLogSumExp cannot overflow, whatever its kernel
 * does internally; it is the same max-shifted formula the CPU kernel evaluates.
 */
const logSoftmaxAsReductions: Lowering = (node, fresh) => {
  if (node.opType !== 'LogSoftmax' || node.domain) return null;
  const axis = node.attrs.axis && 'i' in node.attrs.axis ? node.attrs.axis.i : -1;
  const reduce = { axes: { ints: [axis] }, keepdims: { i: 1 } };
  const [x] = node.inputs;
  const max = fresh('logsoftmax_max');
  const shifted = fresh('logsoftmax_shifted');
  const logSum = fresh('logsoftmax_logsum');
  return [
    { opType: 'ReduceMax', inputs: [x], outputs: [max], attrs: reduce },
    { opType: 'Sub', inputs: [x, max], outputs: [shifted], attrs: {} },
    { opType: 'ReduceLogSumExp', inputs: [shifted], outputs: [logSum], attrs: reduce },
    { opType: 'Sub', inputs: [shifted, logSum], outputs: [node.outputs[0]], attrs: {} },
  ];
};

/**
 * A composite written as the one node its op named as equivalent (NodeSpec.equivalent), where the
 * provider has that node's kernel but onnxruntime does not fuse the composite for it: on WebGPU,
 * RMSNorm's Pow, ReduceMean, Add, Sqrt, Div, Mul (six dispatches, twice a layer in every decode
 * step) become one SimplifiedLayerNormalization. The CPU fuses the same pattern itself.
 */
function equivalentOf(opTypes: readonly string[]): Lowering {
  return (node) => (node.equivalent && opTypes.includes(node.equivalent.opType) ? [{ ...node.equivalent, outputs: node.outputs }] : null);
}

/** The lowerings a provider needs; none on the CPU, which has a kernel for every op emitted. */
export function loweringsFor(provider: 'cpu' | 'webgpu' | 'cuda'): Lowering[] {
  return provider === 'webgpu' ? [logSoftmaxAsReductions, equivalentOf(['SimplifiedLayerNormalization'])] : [];
}

/** Apply `lowerings` to `nodes` (the first that rewrites a node wins). */
export function lower(nodes: readonly NodeSpec[], lowerings: readonly Lowering[], fresh: (hint: string) => string): NodeSpec[] {
  if (lowerings.length === 0) return [...nodes];
  return nodes.flatMap((n) => {
    for (const l of lowerings) {
      const replaced = l(n, fresh);
      if (replaced) return replaced;
    }
    return [n];
  });
}
