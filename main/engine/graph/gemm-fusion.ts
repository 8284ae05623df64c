// Gemm fusion: a product's scalar factor and the sum it is added into, written into the Gemm
// itself (ONNX Gemm computes Y = alpha·A·B + beta·C), so each is one node instead of two or three.
// On a GPU every node is a dispatch: a LoRA delta is ((x·Aᵀ)·scale)·Bᵀ added to the base layer's
// output, and the backward pass sums many products (the gradient of a layer's input from each of
// q, k and v), so a Qwen2.5-0.5B-shaped LoRA step has hundreds of such Mul and Add nodes. The
// graph library keeps writing them apart (the CPU runs that as fast, and its graphs stay as they
// are); this pass rewrites the written nodes for WebGPU, computing the same values.
import { float16BitsToFloat32 } from './dtype.ts';
import type { Attr, Graph, NodeSpec } from './graph.ts';

/** A rewrite of the whole list of written nodes (after lowerings and pruning). */
export type GraphPass = (nodes: readonly NodeSpec[], graph: Graph) => NodeSpec[];

function floatAttr(n: Pick<NodeSpec, 'attrs'>, name: 'alpha' | 'beta'): number {
  const a = n.attrs[name];
  return a && 'f' in a ? a.f : 1;
}

/** The value of a one-element float constant, or null. */
function scalarConstant(graph: Graph, name: string): number | null {
  const c = graph.initializers.find((i) => i.name === name);
  if (!c || c.shape.reduce((a, b) => a * b, 1) !== 1) return null;
  const view = new DataView(c.raw.buffer, c.raw.byteOffset, c.raw.byteLength);
  if (c.dtype === 'float32') return view.getFloat32(0, true);
  if (c.dtype === 'float64') return view.getFloat64(0, true);
  if (c.dtype === 'float16') return float16BitsToFloat32(view.getUint16(0, true));
  return null;
}

const isGemm = (n: Written | null | undefined): n is Written => !!n && n.opType === 'Gemm' && !n.domain;
const isPlain = (n: Written, op: string) => n.opType === op && !n.domain;

/**
 * - Mul(Gemm(...), c), c a scalar constant, the product read by the Mul alone: the Gemm's alpha
 *   (and beta, where it has a C) times c.
 * - Mul(x, c) read only as a Gemm's A or B operand: those Gemms read x, alpha times c.
 * - Add(Gemm(a, b), y), the product read by the Add alone and y of the sum's shape and type:
 *   Gemm(a, b, C = y, beta = 1), in the Add's place.
 * A value that is a graph output is never removed.
 */
type Written = Omit<NodeSpec, 'inputs' | 'outputs'> & { inputs: string[]; outputs: string[] };

export const fuseIntoGemm: GraphPass = (written, graph) => {
  const nodes: (Written | null)[] = written.map((n) => ({ ...n, attrs: { ...n.attrs }, inputs: [...n.inputs], outputs: [...n.outputs] }));
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const writer = new Map<string, number>();
  const readers = new Map<string, number[]>();
  const index = () => {
    writer.clear();
    readers.clear();
    nodes.forEach((n, i) => {
      if (!n) return;
      for (const o of n.outputs) if (o) writer.set(o, i);
      for (const x of n.inputs) {
        if (!x) continue;
        const list = readers.get(x);
        if (list) list.push(i);
        else readers.set(x, [i]);
      }
    });
  };
  const only = (value: string, reader: number) => !outputs.has(value) && (readers.get(value) ?? []).every((r) => r === reader) && readers.get(value)?.length === 1;
  const set = (n: Written, name: 'alpha' | 'beta', value: number) => {
    n.attrs[name] = { f: value } satisfies Attr;
  };

  // Scalar factors first (a LoRA delta's scale sits between its two products), then sums.
  index();
  nodes.forEach((n, i) => {
    if (!n || !isPlain(n, 'Mul') || n.inputs.length !== 2) return;
    for (const [k, c] of [[0, 1], [1, 0]] as const) {
      const factor = scalarConstant(graph, n.inputs[c]);
      if (factor === null) continue;
      const x = n.inputs[k];
      const producer = writer.has(x) ? nodes[writer.get(x)!] : undefined;
      if (isGemm(producer) && only(x, i)) {
        const g = producer;
        set(g, 'alpha', floatAttr(g, 'alpha') * factor);
        if (g.inputs.length > 2 && g.inputs[2]) set(g, 'beta', floatAttr(g, 'beta') * factor);
        g.outputs = [n.outputs[0]];
        nodes[i] = null;
        index();
        return;
      }
      const out = n.outputs[0];
      const reads = readers.get(out) ?? [];
      const asOperand = reads.length > 0 && reads.every((r) => {
        const g = nodes[r];
        return isGemm(g) && g.inputs.slice(0, 2).includes(out) && g.inputs[2] !== out;
      });
      if (!outputs.has(out) && asOperand) {
        for (const r of new Set(reads)) {
          const g = nodes[r]!;
          // Both operands the same scaled value: the product carries the factor twice.
          const times = g.inputs.slice(0, 2).filter((v) => v === out).length;
          g.inputs = g.inputs.map((v, j) => (j < 2 && v === out ? x : v));
          set(g, 'alpha', floatAttr(g, 'alpha') * factor ** times);
        }
        nodes[i] = null;
        index();
        return;
      }
    }
  });

  nodes.forEach((n, i) => {
    if (!n || !isPlain(n, 'Add') || n.inputs.length !== 2) return;
    const sum = n.outputs[0];
    for (const [k, other] of [[0, 1], [1, 0]] as const) {
      const p = n.inputs[k];
      const g = writer.has(p) ? nodes[writer.get(p)!] : null;
      if (!isGemm(g) || g.inputs.length > 2 || !only(p, i)) continue;
      const y = n.inputs[other];
      const [ps, ys, ss] = [graph.shapes.get(p), graph.shapes.get(y), graph.shapes.get(sum)];
      if (!ps || !ys || !ss || ps.join() !== ss.join() || ys.join() !== ss.join() || graph.dtypes.get(y) !== graph.dtypes.get(sum)) continue;
      // In the Add's place: y and the Gemm's operands are all written before it.
      nodes[i] = { ...g, inputs: [...g.inputs, y], outputs: [sum], attrs: { ...g.attrs, beta: { f: 1 } } };
      nodes[writer.get(p)!] = null;
      index();
      return;
    }
  });
  return nodes.filter((n): n is Written => n !== null);
};
