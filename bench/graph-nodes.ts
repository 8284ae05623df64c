// `npm run bench -- graph-nodes`: the nodes of a training step, a prefill and a decode step as
// they are written for a provider (after pruning and its lowerings), counted by op type, built
// from a config alone: weights are declared as graph inputs and never allocated, so the graphs
// of a 0.5B-shaped model are counted in seconds on any machine. On a GPU each node is a
// dispatch (about 95 µs of host time each on an H200 through WebGPU), so this is the number the
// graph builder's fusions and reshape removals are measured by.
import onnxProto from 'onnx-proto';
import { type CacheDType, type DecodeShape, type PrefillShape, buildDecodeGraph, buildPrefillGraph } from '../main/engine/generate/graphs.ts';
import { samplingMode } from '../main/engine/generate/sampler.ts';
import { emitModel } from '../main/engine/graph/emit.ts';
import type { Graph, Sym } from '../main/engine/graph/graph.ts';
import { loweringsFor, passesFor } from '../main/engine/graph/lowering.ts';
import { LINEAR_MODULES, type LlamaConfig, weightShapes } from '../main/engine/nn/config.ts';
import { type WeightSource, packedQkvName, packedQkvShapes } from '../main/engine/nn/llama.ts';
import { type LoraSpec, loraDelta, loraScale, loraShapes, loraTargets, loraWeightName } from '../main/engine/nn/lora.ts';
import { ADAMW_DEFAULTS } from '../main/engine/optim/adamw.ts';
import { type StepGraphParameters, buildTrainStepGraph } from '../main/engine/runtime/trainer.ts';
import type { WeightBinding } from '../main/engine/runtime/weights.ts';
import { type Precision, computeDtype } from '../main/engine/runtime/precision.ts';
import * as op from '../main/engine/graph/ops.ts';
import type { DType } from '../main/engine/graph/dtype.ts';

export interface GraphNodesOptions {
  config: LlamaConfig;
  provider: 'cpu' | 'webgpu';
  /** Training batch: sequences and tokens per sequence. */
  batch: number;
  seq: number;
  /** LoRA rank on every linear layer; null trains every weight. */
  loraRank: number | null;
  /** Generation: prompts (one sample each), padded prompt length and cache slots. */
  rows: number;
  promptLength: number;
  cacheLength: number;
  /** mixed: frozen weights declared float16, trainable ones float32 cast to float16 (as the parameter store does). Default fp32. */
  precision?: Precision;
}

export interface GraphNodeCount {
  graph: 'train' | 'prefill' | 'decode';
  /** Under LoRA, generation graphs are counted twice: reading the adapters, and merged into the weights (a GPU run's default where memory allows, ParameterStore's mergeAdapters). */
  adapters?: 'unmerged' | 'merged';
  /** q, k and v read as one packed weight: merged adapters, and weights held for generation only on a GPU (FrozenWeights' packQkv: the chat command, the generate bench). */
  qkv?: 'packed';
  nodes: number;
  byOp: Record<string, number>;
}

/**
 * Weights declared by shape only, with LoRA adapters on the targeted layers: float32, or float16
 * under mixed precision (the frozen weights as held, the trainable ones as the store's views of its
 * float32 masters), cast where the graph computes in another type.
 */
function shapeOnlySource(g: Graph, config: LlamaConfig, lora: LoraSpec | null, precision: Precision, compute: DType = computeDtype(precision), packQkv = false): { source: WeightSource; params: Sym[] } {
  // (lora null with the weights' own shapes, q, k and v packed, is also what generation reads when
  // adapters are merged on every linear layer: ParameterStore's generationWeights.)
  const packedShape = packedQkvShapes(config);
  const packedShapes: [string, number[]][] = packQkv
    ? Array.from({ length: config.numLayers }, (_, l): [string, number[]][] => [
        [packedQkvName(l, 'weight'), packedShape.weight],
        ...(packedShape.bias ? [[packedQkvName(l, 'bias'), packedShape.bias] as [string, number[]]] : []),
      ]).flat()
    : [];
  const shapes = new Map([...weightShapes(config), ...(lora ? loraShapes(config, lora) : []), ...packedShapes]);
  const declared = new Map<string, Sym>();
  const views = new Map<string, Sym>();
  const input = (name: string): Sym => {
    let s = declared.get(name);
    if (!s) {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`the model has no weight "${name}"`);
      s = g.input(name, shape, computeDtype(precision));
      declared.set(name, s);
    }
    return s;
  };
  const get = (name: string): Sym => {
    let v = views.get(name);
    if (!v) views.set(name, (v = op.cast(input(name), compute)));
    return v;
  };
  const source: WeightSource = { get };
  if (packQkv && !config.qkNorm) source.packedQkv = (l) => ({ weight: get(packedQkvName(l, 'weight')), bias: config.attentionBias ? get(packedQkvName(l, 'bias')) : null });
  const trainable = lora ? loraShapes(config, lora) : weightShapes(config);
  if (lora) {
    const targets = new Set(loraTargets(config, lora).map((t) => t.prefix));
    const scale = loraScale(lora);
    source.linearDelta = (prefix, _module, x) => (targets.has(prefix) ? loraDelta(x, get(loraWeightName(prefix, 'A')), get(loraWeightName(prefix, 'B')), scale) : null);
  }
  return { source, params: trainable.map(([name]) => input(name)) };
}

/** Nodes of `graph` as written for `provider`, by op type (domain-qualified when not ONNX's). */
export function countNodes(graph: Graph, provider: 'cpu' | 'webgpu'): { nodes: number; byOp: Record<string, number> } {
  const model = onnxProto.onnx.ModelProto.decode(emitModel(graph, loweringsFor(provider), passesFor(provider)));
  const byOp: Record<string, number> = {};
  for (const n of model.graph?.node ?? []) {
    const key = n.domain ? `${n.domain}.${n.opType}` : String(n.opType);
    byOp[key] = (byOp[key] ?? 0) + 1;
  }
  const sorted = Object.fromEntries(Object.entries(byOp).sort((a, b) => b[1] - a[1]));
  return { nodes: model.graph?.node?.length ?? 0, byOp: sorted };
}

export function graphNodes(o: GraphNodesOptions): GraphNodeCount[] {
  const { config } = o;
  const lora: LoraSpec | null = o.loraRank === null ? null : { rank: o.loraRank, alpha: 2 * o.loraRank, targetModules: [...LINEAR_MODULES] };
  const trainable = lora ? loraShapes(config, lora) : weightShapes(config);
  const precision = o.precision ?? 'fp32';
  const params: StepGraphParameters = {
    config,
    dtype: 'float32',
    precision,
    size: trainable.reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0),
    trainingSource: (g) => shapeOnlySource(g, config, lora, precision),
  };
  const train = buildTrainStepGraph(params, { batch: { size: o.batch, seqLen: o.seq }, loss: { kind: 'sft' }, optimizer: ADAMW_DEFAULTS });
  const binding = (adapters: LoraSpec | null, packQkv = false): WeightBinding => ({
    bind: (g, compute) => shapeOnlySource(g, config, adapters, precision, compute ?? 'float32', packQkv).source,
    feeds: () => {
      throw new Error('graph-nodes builds graphs only; it has no weights to feed');
    },
  });
  const dtype: CacheDType = 'float32';
  const common = {
    dtype,
    rows: o.rows,
    cacheLength: o.cacheLength,
    mode: samplingMode({ temperature: 1, topK: 0, topP: 1 }, config.vocabSize),
    deviceCache: o.provider !== 'cpu',
    emitLogits: false,
    // Mixed precision generates in float16 on a device cache (the CPU refuses it).
    ...(precision === 'mixed' && o.provider !== 'cpu' ? { compute: 'float16' as const } : {}),
  };
  const prefillShape: PrefillShape = { ...common, prompts: o.rows, samplesPerPrompt: 1, promptLength: o.promptLength };
  const decodeShape: DecodeShape = common;
  const generation = (adapters: LoraSpec | null, label?: GraphNodeCount['adapters'], packed = label === 'merged'): GraphNodeCount[] => {
    const weights = binding(adapters, packed);
    const tags = { ...(label && { adapters: label }), ...(packed && !config.qkNorm && { qkv: 'packed' as const }) };
    return [
      { graph: 'prefill', ...tags, ...countNodes(buildPrefillGraph(config, weights, prefillShape), o.provider) },
      { graph: 'decode', ...tags, ...countNodes(buildDecodeGraph(config, weights, decodeShape), o.provider) },
    ];
  };
  // Without LoRA: generating from a full fine-tuning run's weights, and from weights held for generation only.
  const plain = o.provider === 'cpu' ? generation(null) : [...generation(null), ...generation(null, undefined, true)];
  return [{ graph: 'train', ...countNodes(train, o.provider) }, ...(lora ? [...generation(lora, 'unmerged'), ...generation(null, 'merged')] : plain)];
}
