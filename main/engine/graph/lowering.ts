// Lowerings: node rewrites applied while a graph is written for one execution provider, where
// that provider has no kernel for an op the graph library emits. onnxruntime would otherwise
// place the node on its CPU provider and copy its inputs to the host and its outputs back on
// every run (for the token log-prob that is the [tokens × vocabulary] logits, 1.2 GB a step on
// a 150k vocabulary). The graph library keeps emitting the op the CPU runs fastest; only the
// written model differs per provider, and each lowering computes the same function. Nodes a
// lowering leaves unread are pruned afterwards.
import { type GraphPass, fuseIntoGemm } from './gemm-fusion.ts';
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
  return (node) => {
    const e = node.equivalent;
    if (!e || !opTypes.includes(e.opType)) return null;
    const { outputs, ...fused } = e;
    return [{ ...fused, outputs: outputs ?? node.outputs }];
  };
}

/**
 * The fused nodes WebGPU gets (all kernels of its provider in onnxruntime 1.30): RMSNorm, a
 * residual sum with the norm after it (SkipSimplifiedLayerNormalization, which also writes the
 * sum), the rotary embedding, a decode step's attention with its cache update, and SiLU
 * (QuickGelu with alpha 1).
 */
export const WEBGPU_FUSED = ['SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'RotaryEmbedding', 'GroupQueryAttention', 'QuickGelu'] as const;

/** The lowerings a provider needs; none on the CPU, which has a kernel for every op emitted. */
export function loweringsFor(provider: 'cpu' | 'webgpu' | 'cuda'): Lowering[] {
  return provider === 'webgpu' ? [logSoftmaxAsReductions, equivalentOf(WEBGPU_FUSED)] : [];
}

/** The passes over the written nodes a provider gets: on WebGPU scalar factors and sums folded into Gemms (fewer dispatches); the CPU's graphs as built. */
export function passesFor(provider: 'cpu' | 'webgpu' | 'cuda'): GraphPass[] {
  return provider === 'webgpu' ? [fuseIntoGemm] : [];
}

/**
 * Apply `lowerings` to `nodes` (the first that rewrites a node wins). A rewritten node that also
 * writes a value an earlier node wrote (a fused node's extra outputs) takes the place of the
 * first such node, which is dropped, so every value still has one writer and is written before
 * it is read; the composite's nodes left unread are pruned afterwards.
 */
export function lower(nodes: readonly NodeSpec[], lowerings: readonly Lowering[], fresh: (hint: string) => string): NodeSpec[] {
  if (lowerings.length === 0) return [...nodes];
  const out: (NodeSpec | null)[] = [];
  const writer = new Map<string, number>();
  for (const n of nodes) {
    let replaced: NodeSpec[] | null = null;
    for (const l of lowerings) {
      replaced = l(n, fresh);
      if (replaced) break;
    }
    for (const r of replaced ?? [n]) {
      const earlier = replaced ? r.outputs.flatMap((o) => (o && writer.has(o) ? [writer.get(o)!] : [])) : [];
      const at = earlier.length > 0 ? Math.min(...earlier) : out.length;
      for (const i of earlier) out[i] = null;
      if (at === out.length) out.push(r);
      else out[at] = r;
      for (const o of r.outputs) if (o) writer.set(o, at);
    }
  }
  return out.filter((n): n is NodeSpec => n !== null);
}
