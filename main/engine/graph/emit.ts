// Write a built graph as an ONNX ModelProto (package onnx-proto).
import onnxProto from 'onnx-proto';
import { type DType, ONNX_ELEM_TYPE } from './dtype.ts';
import type { Attr, Graph, Shape } from './graph.ts';
import { type Lowering, lower } from './lowering.ts';
import type { GraphPass } from './gemm-fusion.ts';

const { onnx } = onnxProto;
const AttrType = onnx.AttributeProto.AttributeType;

/** The opset every graph is written against: ScatterElements add (16), Trilu (14). */
export const OPSET = 17;

function valueInfo(name: string, shape: Shape, dtype: DType): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: { elemType: ONNX_ELEM_TYPE[dtype], shape: { dim: shape.map((d) => ({ dimValue: d })) } },
    },
  };
}

function attribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  if ('i' in a) return { name, type: AttrType.INT, i: a.i };
  if ('f' in a) return { name, type: AttrType.FLOAT, f: a.f };
  if ('s' in a) return { name, type: AttrType.STRING, s: new TextEncoder().encode(a.s) };
  if ('ints' in a) return { name, type: AttrType.INTS, ints: [...a.ints] };
  return { name, type: AttrType.FLOATS, floats: [...a.floats] };
}

/**
 * The nodes the outputs depend on, in order. Autodiff builds gradient terms nobody reads (the
 * frozen weights' gradients under LoRA, say), and onnxruntime runs such nodes all the same.
 */
function liveNodes(graph: Graph, nodes: Graph['nodes'] = graph.nodes, keepEquivalentInputs = false): Graph['nodes'] {
  const needed = new Set(graph.outputs.map((o) => o.name));
  const keep: boolean[] = new Array(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep[i] = true;
    for (const inp of n.inputs) if (inp) needed.add(inp);
    // Before a lowering: an equivalent node may read views only it needs (attention's layout).
    if (keepEquivalentInputs && n.equivalent) for (const inp of n.equivalent.inputs) if (inp) needed.add(inp);
  }
  return nodes.filter((_, i) => keep[i]);
}

/**
 * Graph.output() writes each output through an Identity node, which onnxruntime runs as a full
 * copy (17 MB for a training step's flat parameters). Where an output's source is computed by a
 * node and feeds no other output, that node writes the output name directly instead: its uses
 * are renamed and the Identity dropped. Sources that are graph inputs or initializers (or shared
 * by two outputs) keep their Identity.
 */
function elideOutputCopies(graph: Graph, nodes: Graph['nodes']): Graph['nodes'] {
  const outputNames = new Set(graph.outputs.map((o) => o.name));
  const produced = new Set(nodes.flatMap((n) => n.outputs));
  const sourceCount = new Map<string, number>();
  for (const n of nodes) {
    if (n.opType === 'Identity' && !n.domain && outputNames.has(n.outputs[0])) {
      sourceCount.set(n.inputs[0], (sourceCount.get(n.inputs[0]) ?? 0) + 1);
    }
  }
  const rename = new Map<string, string>();
  const dropped = new Set<Graph['nodes'][number]>();
  for (const n of nodes) {
    if (n.opType !== 'Identity' || n.domain || !outputNames.has(n.outputs[0])) continue;
    const src = n.inputs[0];
    if (!produced.has(src) || outputNames.has(src) || sourceCount.get(src) !== 1) continue;
    rename.set(src, n.outputs[0]);
    dropped.add(n);
  }
  if (rename.size === 0) return nodes;
  const r = (name: string) => rename.get(name) ?? name;
  return nodes
    .filter((n) => !dropped.has(n))
    .map((n) => ({
      ...n,
      inputs: n.inputs.map(r),
      outputs: n.outputs.map(r),
      ...(n.equivalent
        ? { equivalent: { ...n.equivalent, inputs: n.equivalent.inputs.map(r), ...(n.equivalent.outputs ? { outputs: n.equivalent.outputs.map((o) => (o ? r(o) : o)) } : {}) } }
        : {}),
    }));
}

/**
 * Serialize `graph` to ONNX bytes, ready for `InferenceSession.create`. `lowerings` rewrite the
 * nodes a provider has no kernel for (see lowering.ts), then `passes` rewrite the written nodes as
 * a whole (e.g. gemm-fusion.ts); both per provider (loweringsFor, passesFor).
 */
export function emitModel(graph: Graph, lowerings: readonly Lowering[] = [], passes: readonly GraphPass[] = []): Uint8Array {
  if (graph.outputs.length === 0) throw new Error(`graph ${graph.name} has no outputs`);
  let nodes = elideOutputCopies(graph, liveNodes(graph, graph.nodes, lowerings.length > 0));
  if (lowerings.length > 0) nodes = liveNodes(graph, lower(nodes, lowerings, (hint) => graph.fresh(hint)));
  for (const pass of passes) nodes = pass(nodes, graph);
  const used = new Set(nodes.flatMap((n) => n.inputs));
  // onnxruntime's contrib ops (a lowering's fused nodes) are all version 1 of their domain.
  const domains = [...new Set(nodes.flatMap((n) => (n.domain ? [n.domain] : [])))].sort();
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'autodidact',
    opsetImport: [{ domain: '', version: OPSET }, ...domains.map((domain) => ({ domain, version: 1 }))],
    graph: {
      name: graph.name,
      node: nodes.map((n) => ({
        opType: n.opType,
        domain: n.domain ?? '',
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
      })),
      input: graph.inputs.map((s) => valueInfo(s.name, s.shape, s.dtype)),
      output: graph.outputs.map((o) => valueInfo(o.name, o.sym.shape, o.sym.dtype)),
      initializer: graph.initializers.filter((c) => used.has(c.name)).map((c) => ({
        name: c.name,
        dataType: ONNX_ELEM_TYPE[c.dtype],
        dims: [...c.shape],
        rawData: c.raw,
      })),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
