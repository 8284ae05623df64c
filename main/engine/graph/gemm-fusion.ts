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

/** The values of `graph`'s one-element float constants, by name. */
function scalarConstants(graph: Graph): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of graph.initializers) {
    if (c.shape.reduce((a, b) => a * b, 1) !== 1) continue;
    const view = new DataView(c.raw.buffer, c.raw.byteOffset, c.raw.byteLength);
    if (c.dtype === 'float32') out.set(c.name, view.getFloat32(0, true));
    else if (c.dtype === 'float64') out.set(c.name, view.getFloat64(0, true));
    else if (c.dtype === 'float16') out.set(c.name, float16BitsToFloat32(view.getUint16(0, true)));
  }
  return out;
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
  const constants = scalarConstants(graph);
  // Who writes and who reads each value, kept up to date as nodes are rewritten (a training
  // step has thousands of nodes and hundreds of rewrites: rebuilding it each time took seconds).
  const writer = new Map<string, number>();
  const readers = new Map<string, Set<number>>();
  const read = (value: string, i: number) => {
    if (!value) return;
    const set = readers.get(value);
    if (set) set.add(i);
    else readers.set(value, new Set([i]));
  };
  const unread = (value: string, i: number) => readers.get(value)?.delete(i);
  const place = (i: number, n: Written) => {
    nodes[i] = n;
    for (const x of n.inputs) read(x, i);
    for (const o of n.outputs) if (o) writer.set(o, i);
  };
  const remove = (i: number) => {
    const n = nodes[i]!;
    for (const x of n.inputs) if (x) unread(x, i);
    for (const o of n.outputs) if (o && writer.get(o) === i) writer.delete(o);
    nodes[i] = null;
  };
  nodes.forEach((n, i) => place(i, n!));
  const producer = (value: string) => (writer.has(value) ? nodes[writer.get(value)!] : null);
  const only = (value: string, reader: number) => !outputs.has(value) && readers.get(value)?.size === 1 && readers.get(value)!.has(reader);
  const scale = (n: Written, name: 'alpha' | 'beta', factor: number) => {
    n.attrs[name] = { f: floatAttr(n, name) * factor } satisfies Attr;
  };

  // Scalar factors first (a LoRA delta's scale sits between its two products), then sums.
  nodes.forEach((n, i) => {
    if (!n || !isPlain(n, 'Mul') || n.inputs.length !== 2) return;
    for (const [k, c] of [[0, 1], [1, 0]] as const) {
      const factor = constants.get(n.inputs[c]);
      if (factor === undefined) continue;
      const [x, out] = [n.inputs[k], n.outputs[0]];
      const g = producer(x);
      if (isGemm(g) && only(x, i)) {
        const at = writer.get(x)!;
        scale(g, 'alpha', factor);
        if (g.inputs.length > 2 && g.inputs[2]) scale(g, 'beta', factor);
        remove(i);
        writer.delete(x);
        g.outputs = [out];
        writer.set(out, at);
        return;
      }
      const reads = [...(readers.get(out) ?? [])];
      const asOperand = reads.length > 0 && reads.every((r) => isGemm(nodes[r]) && nodes[r]!.inputs.slice(0, 2).includes(out) && nodes[r]!.inputs[2] !== out);
      if (!outputs.has(out) && asOperand) {
        for (const r of reads) {
          const reader = nodes[r]!;
          // Both operands the same scaled value: the product carries the factor twice.
          scale(reader, 'alpha', factor ** reader.inputs.slice(0, 2).filter((v) => v === out).length);
          reader.inputs = reader.inputs.map((v, j) => (j < 2 && v === out ? x : v));
          unread(out, r);
          read(x, r);
        }
        remove(i);
        return;
      }
    }
  });

  nodes.forEach((n, i) => {
    if (!n || !isPlain(n, 'Add') || n.inputs.length !== 2) return;
    const sum = n.outputs[0];
    for (const [k, other] of [[0, 1], [1, 0]] as const) {
      const p = n.inputs[k];
      const g = producer(p);
      if (!isGemm(g) || g.inputs.length > 2 || !only(p, i)) continue;
      const y = n.inputs[other];
      const [ps, ys, ss] = [graph.shapes.get(p), graph.shapes.get(y), graph.shapes.get(sum)];
      if (!ps || !ys || !ss || ps.join() !== ss.join() || ys.join() !== ss.join() || graph.dtypes.get(y) !== graph.dtypes.get(sum)) continue;
      // In the Add's place: y and the Gemm's operands are all written before it.
      const fused = { ...g, inputs: [...g.inputs, y], outputs: [sum], attrs: { ...g.attrs, beta: { f: 1 } } };
      remove(writer.get(p)!);
      remove(i);
      place(i, fused);
      return;
    }
  });
  return nodes.filter((n): n is Written => n !== null);
};
