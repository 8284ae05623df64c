// The parameter store: the one place a model's weights live while it trains.
//
// Trainable parameters (every weight under full fine-tuning, the LoRA A/B matrices under LoRA)
// are one flat buffer, so the optimizer is a few elementwise ops and the training step feeds
// and receives a single tensor. Frozen weights (the base model under LoRA) are held once and fed
// to every graph by name. On WebGPU all of it stays on the GPU: the flat buffer, the frozen
// weights, and the per-weight tensors inference graphs read (cut from the flat buffer by a small
// "unflatten" graph after every change). Values come back to the host only through graphs whose
// outputs are routed to the CPU, never through getData() on a GPU tensor (that aborts).
import * as ort from 'onnxruntime-node';
import { type DType, float16OverflowIndex, float32ToFloat16Bits } from '../graph/dtype.ts';
import { Graph, type Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import { type LinearModule, type LlamaConfig, weightShapes } from '../nn/config.ts';
import { type WeightSource, packedQkvName, packedQkvShapes, qkvProjections } from '../nn/llama.ts';
import { widenFloat16 } from '../nn/safetensors.ts';
import { type LoraSpec, initLoraWeights, loraDelta, loraScale, loraShapes, loraTargets, loraWeightName } from '../nn/lora.ts';
import { disposeTensor } from './device-buffers.ts';
import type { Device } from './devices.ts';
import { type Precision, computeDtype } from './precision.ts';
import { SeededRng } from './rng.ts';
import { CompiledGraph } from './session.ts';
import { type HostTensor, type HostWeight, type WeightBinding, float32Values, isHalf, pickFeeds } from './weights.ts';

/** The float type a store computes in: float64 only for gradient checks on the CPU. */
export type StoreDType = 'float32' | 'float64';
export type FlatArray = Float32Array | Float64Array;

export interface ParamEntry {
  name: string;
  shape: number[];
  /** Position of the first element in the flat buffer. */
  offset: number;
  size: number;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function allocate(dtype: StoreDType, n: number): FlatArray {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

// Freeing a tensor's device memory also stops device-buffers.ts counting it.
export { disposeTensor };

/**
 * Moves flat arrays between the host and the device. On the CPU a tensor simply views the
 * array; on WebGPU an Identity graph with device-resident outputs uploads, and one with CPU
 * outputs downloads. The graphs are compiled once per shape and reused.
 */
export class DeviceTransfer {
  private readonly graphs = new Map<string, Promise<CompiledGraph>>();

  constructor(
    readonly device: Device,
    readonly dtype: StoreDType,
  ) {
    if (device.keepsStateOnDevice && dtype !== 'float32') throw new Error(`${device.name} computes in float32; a ${dtype} store needs the cpu device`);
  }

  /** A graph passing `shapes` through (cast to `as`); `from`: each input's type (default the store's). */
  private identity(shapes: readonly (readonly number[])[], toDevice: boolean, as: DType = this.dtype, from?: readonly DType[]): Promise<CompiledGraph> {
    const types = from ?? shapes.map(() => this.dtype);
    const key = `${toDevice ? 'up' : 'down'}|${as}|${shapes.map((s, i) => `${types[i]}:${s.join('x')}`).join(',')}`;
    let p = this.graphs.get(key);
    if (!p) {
      const g = new Graph(toDevice ? 'upload' : 'download');
      const outs = shapes.map((shape, i) => {
        const x = g.input(`in_${i}`, shape, types[i]);
        g.output(`out_${i}`, as === types[i] ? op.identity(x) : op.cast(x, as));
        return `out_${i}`;
      });
      p = CompiledGraph.create(g, this.device, { keepOnDevice: toDevice ? outs : [] });
      this.graphs.set(key, p);
      p.catch(() => this.graphs.delete(key));
    }
    return p;
  }

  /**
   * Tensors holding `arrays` on the device (on the CPU: views of the same arrays). The upload
   * graph stays open until release(): once the last ORT session closes, the WebGPU device goes
   * away and every gpu-buffer tensor made on it with it (feeding one then aborts the process).
   */
  async upload(arrays: readonly { data: FlatArray; shape: readonly number[] }[]): Promise<ort.Tensor[]> {
    if (!this.device.keepsStateOnDevice) return arrays.map((a) => new ort.Tensor(this.dtype, a.data, [...a.shape]));
    if (arrays.length === 0) return [];
    const graph = await this.identity(arrays.map((a) => a.shape), true);
    const out = await graph.run(Object.fromEntries(arrays.map((a, i) => [`in_${i}`, new ort.Tensor(this.dtype, a.data, [...a.shape])])));
    return arrays.map((_, i) => out[`out_${i}`]);
  }

  /**
   * float16 tensors of `arrays` on the device (frozen weights under mixed precision). Float
   * arrays are rounded once to nearest even: on a GPU by a Cast as they are uploaded, on the CPU
   * on the host; float16 ones (`half`: a half-precision checkpoint held as loaded) go as they are
   * (on the CPU the tensor views the array).
   */
  async uploadHalf(arrays: readonly ({ data: FlatArray; shape: readonly number[] } | { half: Uint16Array; shape: readonly number[] })[]): Promise<ort.Tensor[]> {
    const tensor = (a: (typeof arrays)[number]) => ('half' in a ? new ort.Tensor('float16', a.half, [...a.shape]) : new ort.Tensor(this.dtype, a.data, [...a.shape]));
    if (!this.device.keepsStateOnDevice) return arrays.map((a) => ('half' in a ? tensor(a) : new ort.Tensor('float16', Uint16Array.from(a.data, float32ToFloat16Bits), [...a.shape])));
    if (arrays.length === 0) return [];
    const from = arrays.map((a): DType => ('half' in a ? 'float16' : this.dtype));
    const graph = await this.identity(arrays.map((a) => a.shape), true, 'float16', from);
    const out = await graph.run(Object.fromEntries(arrays.map((a, i) => [`in_${i}`, tensor(a)])));
    return arrays.map((_, i) => out[`out_${i}`]);
  }

  /** The values of a tensor as a host array (on the CPU: the tensor's own array, not a copy). */
  async download(t: ort.Tensor): Promise<FlatArray> {
    return (await this.downloadAll([t]))[0];
  }

  /** download() of several tensors, through one graph run on a device. */
  async downloadAll(ts: readonly ort.Tensor[]): Promise<FlatArray[]> {
    if (!ts.some((t) => t.location === 'gpu-buffer')) return ts.map((t) => t.data as FlatArray);
    const graph = await this.identity(ts.map((t) => t.dims), false);
    const out = await graph.run(Object.fromEntries(ts.map((t, i) => [`in_${i}`, t])));
    return ts.map((_, i) => out[`out_${i}`].data as FlatArray);
  }

  async release(): Promise<void> {
    const all = [...this.graphs.values()];
    this.graphs.clear();
    for (const p of all) await (await p).release();
  }
}

/**
 * Weights that never change, held once on the device and fed to any graph by name (the base
 * model under LoRA; the reference copy under full fine-tuning).
 */
export class FrozenWeights implements WeightBinding {
  private constructor(
    private readonly tensors: Map<string, ort.Tensor>,
    private readonly shapes: Map<string, number[]>,
    /** The type the weights are held and fed in: float16 under mixed precision. */
    readonly dtype: StoreDType | 'float16',
    /** The type bind() gives them in by default (the store's). */
    private readonly fedAs: StoreDType,
  ) {}

  /**
   * Hold `names` of `weights` on the device (float32 arrays are viewed, not copied, on the CPU);
   * with `half`, as float16 (mixed precision: half the memory, and the type the products read),
   * which weights loaded as float16 already are (uploaded as they are). Without `half` those are
   * widened to the store's type. With `packQkv`, on a GPU, each layer's q, k and v are held as
   * one packed weight (and bias) instead (WeightSource.packedQkv): for weights only generation
   * reads, whose decode step then runs one product and a GroupQueryAttention reading it.
   */
  static async create(weights: ReadonlyMap<string, HostWeight>, namesIn: readonly string[], transfer: DeviceTransfer, half = false, packQkv = false): Promise<FrozenWeights> {
    const { names, packed } = packQkv && transfer.device.keepsStateOnDevice && packingQkv() ? packAttentionInputs(weights, namesIn) : { names: namesIn, packed: new Map<string, HostWeight>() };
    const held = names.map((name) => {
      const t = packed.get(name) ?? weights.get(name);
      if (!t) throw new Error(`the model has no weight "${name}"`);
      return t;
    });
    const wide = (t: HostWeight) => {
      const data = float32Values(t);
      return { data: transfer.dtype === 'float64' ? Float64Array.from(data) : data, shape: t.shape };
    };
    // A float32 weight that float16 cannot hold would become ±infinity in the narrowing: refused
    // naming it, as a bfloat16 checkpoint's is at load (safetensors.ts).
    if (half) {
      held.forEach((t, i) => {
        if (isHalf(t)) return;
        const at = float16OverflowIndex(t.data);
        if (at >= 0) {
          throw new Error(
            `weight "${names[i]}" holds ${t.data[at]} (element ${at}), beyond float16's range (±65504), so it cannot be held in float16 for precision "mixed"; set precision to "fp32" to run this model`,
          );
        }
      });
    }
    const tensors = half ? await transfer.uploadHalf(held.map((t) => (isHalf(t) ? t : wide(t)))) : await transfer.upload(held.map(wide));
    return new FrozenWeights(
      new Map(names.map((n, i) => [n, tensors[i]])),
      new Map(names.map((n, i) => [n, [...held[i].shape]])),
      half ? 'float16' : transfer.dtype,
      transfer.dtype,
    );
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }

  shapeOf(name: string): number[] {
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`the model has no weight "${name}"`);
    return shape;
  }

  get names(): string[] {
    return [...this.shapes.keys()];
  }

  /** Declare `name` as an input of `g` (once per graph, tracked by `declared`). */
  declare(g: Graph, name: string, declared: Map<string, Sym>): Sym {
    let s = declared.get(name);
    if (!s) {
      const shape = this.shapes.get(name);
      if (!shape) throw new Error(`the model has no weight "${name}"`);
      s = g.input(name, shape, this.dtype);
      declared.set(name, s);
    }
    return s;
  }

  bind(g: Graph, compute: DType = this.fedAs): WeightSource {
    const declared = new Map<string, Sym>();
    const views = new Map<string, Sym>();
    const get = (name: string) => viewAs(views, name, () => this.declare(g, name, declared), compute);
    const packedQkv = (layer: number) => {
      const [weight, bias] = [packedQkvName(layer, 'weight'), packedQkvName(layer, 'bias')];
      return this.has(weight) ? { weight: get(weight), bias: this.has(bias) ? get(bias) : null } : null;
    };
    return { get, packedQkv };
  }

  feeds(inputNames: readonly string[]): Record<string, ort.Tensor> {
    return pickFeeds(this.tensors, inputNames);
  }

  release(): void {
    for (const t of this.tensors.values()) disposeTensor(t);
    this.tensors.clear();
  }
}

/** Whether q, k and v may be packed (WeightSource.packedQkv); AUTODIDACT_PACK_QKV=0 turns it off, to measure the difference. */
export function packingQkv(env: string | undefined = process.env.AUTODIDACT_PACK_QKV): boolean {
  return env !== '0';
}

/**
 * `names` with each layer's q, k and v projections (weights, and biases where the model has
 * them) replaced by one packed weight and bias, rows q then k then v (WeightSource.packedQkv),
 * built on the host. Not where a q/k norm sits between the products and RoPE (the fused
 * attention reads the packed product as it is).
 */
function packAttentionInputs(weights: ReadonlyMap<string, HostWeight>, names: readonly string[]): { names: string[]; packed: Map<string, HostWeight> } {
  const wanted = new Set(names);
  const packed = new Map<string, HostWeight>();
  if (names.some((n) => n.endsWith('.q_norm.weight'))) return { names: [...names], packed };
  const dropped = new Set<string>();
  for (let l = 0; ; l++) {
    const parts = qkvProjections(l);
    if (!weights.has(`${parts[0]}.weight`)) break;
    for (const part of ['weight', 'bias'] as const) {
      const each = parts.map((p) => `${p}.${part}`);
      if (!each.every((n) => wanted.has(n) && weights.has(n))) continue;
      const ts = each.map((n) => weights.get(n)!);
      const shape = [ts.reduce((r, t) => r + t.shape[0], 0), ...ts[0].shape.slice(1)];
      packed.set(packedQkvName(l, part), ts.every(isHalf) ? { shape, half: concatArrays(ts.map((t) => t.half), Uint16Array) } : { shape, data: concatArrays(ts.map(float32Values), Float32Array) });
      for (const n of each) dropped.add(n);
    }
  }
  return { names: [...names.filter((n) => !dropped.has(n)), ...packed.keys()], packed };
}

function concatArrays<A extends Float32Array | Uint16Array>(parts: A[], Type: { new (n: number): A }): A {
  const out = new Type(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface ParameterStoreOptions {
  config: LlamaConfig;
  /** The model's weights by Hugging Face name (e.g. HfModel.weights); never modified. Float16 ones (loaded with hostHalf) are widened into the float32 master copies of those trained. */
  weights: ReadonlyMap<string, HostWeight>;
  device: Device;
  /** Train LoRA adapters on frozen weights; omitted, every weight is trainable. */
  lora?: LoraSpec | null;
  /** Initial adapter weights by PEFT name; omitted, PEFT's initialisation drawn from `rng`. */
  loraWeights?: ReadonlyMap<string, HostTensor>;
  rng?: SeededRng;
  dtype?: StoreDType;
  /** mixed: frozen weights held in float16 and every weight read as float16 by the training graphs (fp32 master copies stay in the flat buffer). */
  precision?: Precision;
  /**
   * Under LoRA, also hold each adapted layer's weight with its adapter merged in, recomputed after
   * every change, for generation (generationWeights): a decode step on a GPU is bound by how many
   * nodes it dispatches, and an unmerged adapter adds two products per linear layer (and its scale
   * and add where the Gemm fusion does not fold them). Costs one more
   * copy of the adapted weights (mergedValues), in the type graphs read weights in. Default off.
   */
  mergeAdapters?: boolean;
}

/** Prefixes of the flat reader's outputs (ParameterStore.flatReader): a trainable weight's view, a merged weight. */
const VIEW_OUTPUT = 'view:';
const MERGED_OUTPUT = 'merged:';

/** The graph input a store feeds its whole flat buffer to (a training step's AdamW reads it). */
export const FLAT_PARAMS_INPUT = 'params_flat';

export class ParameterStore implements WeightBinding {
  /** Where each trainable weight sits in the flat buffer, in a fixed order. */
  readonly layout: readonly ParamEntry[];
  /** Number of trainable values. */
  readonly size: number;
  private readonly byName: Map<string, ParamEntry>;
  private readonly targets: Map<string, LinearModule>;
  private flat: ort.Tensor;
  private views: Map<string, ort.Tensor> | null = null;
  /** The graph reading the flat buffer after each change (flatReader), compiled on first use. */
  private flatGraph: Promise<CompiledGraph> | null = null;
  /** Under mergeAdapters: W + scale·B·A per adapted weight (by its HF name), cut with the views. */
  private merged: Map<string, ort.Tensor> | null = null;
  /** The base weights an adapter is merged into under mergeAdapters, by HF name (none otherwise). */
  private readonly mergedNames: ReadonlySet<string>;
  /**
   * Layers whose merged q, k and v are held as one packed weight (WeightSource.packedQkv): every
   * layer with all three adapted, in a model without q/k norms. Same memory as three copies.
   */
  private readonly packedLayers: ReadonlySet<number>;
  private versionCounter = 0;

  private constructor(
    readonly config: LlamaConfig,
    readonly device: Device,
    readonly dtype: StoreDType,
    readonly precision: Precision,
    readonly lora: LoraSpec | null,
    readonly frozen: FrozenWeights,
    readonly transfer: DeviceTransfer,
    layout: ParamEntry[],
    flat: ort.Tensor,
    /** Hold merged copies of the adapted weights for generation (ParameterStoreOptions.mergeAdapters). */
    readonly mergeAdapters: boolean,
  ) {
    this.layout = layout;
    this.size = layout.reduce((s, e) => s + e.size, 0);
    this.byName = new Map(layout.map((e) => [e.name, e]));
    this.targets = new Map(lora ? loraTargets(config, lora).map((t) => [t.prefix, t.module]) : []);
    this.mergedNames = new Set(mergeAdapters ? [...this.targets.keys()].map((prefix) => `${prefix}.weight`) : []);
    const qkvMerged = (l: number) => qkvProjections(l).every((prefix) => this.mergedNames.has(`${prefix}.weight`));
    this.packedLayers = new Set(config.qkNorm || !packingQkv() ? [] : Array.from({ length: config.numLayers }, (_, l) => l).filter(qkvMerged));
    this.flat = flat;
  }

  static async create(options: ParameterStoreOptions): Promise<ParameterStore> {
    const { config, weights, device } = options;
    const dtype = options.dtype ?? 'float32';
    const precision = options.precision ?? 'fp32';
    if (precision === 'mixed' && dtype !== 'float32') throw new Error(`mixed precision keeps float32 master weights; a ${dtype} store computes in ${dtype} only`);
    const lora = options.lora ?? null;
    const baseShapes = weightShapes(config);
    for (const [name, shape] of baseShapes) {
      const t = weights.get(name);
      if (!t) throw new Error(`the weights have no "${name}", which this ${config.architecture} config needs`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`weight "${name}" has shape [${t.shape}] but the config needs [${shape}]`);
      }
    }

    const trainableShapes = lora ? loraShapes(config, lora) : baseShapes;
    let initial: ReadonlyMap<string, HostWeight> = weights;
    if (lora) {
      initial = options.loraWeights ?? initLoraWeights(config, lora, options.rng ?? new SeededRng(0));
      for (const [name, shape] of trainableShapes) {
        const t = initial.get(name);
        if (!t) throw new Error(`the LoRA weights have no "${name}"`);
        if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
          throw new Error(`LoRA weight "${name}" has shape [${t.shape}] but rank ${lora.rank} needs [${shape}]`);
        }
      }
    }

    const layout: ParamEntry[] = [];
    let offset = 0;
    for (const [name, shape] of trainableShapes) {
      const size = numel(shape);
      layout.push({ name, shape: [...shape], offset, size });
      offset += size;
    }
    const host = allocate(dtype, offset);
    for (const e of layout) {
      const t = initial.get(e.name)!;
      if (isHalf(t)) widenFloat16(t.half, host, e.offset);
      else host.set(t.data, e.offset);
    }

    const transfer = new DeviceTransfer(device, dtype);
    const frozen = await FrozenWeights.create(weights, lora ? baseShapes.map(([n]) => n) : [], transfer, precision === 'mixed');
    const [flat] = await transfer.upload([{ data: host, shape: [offset] }]);
    const store = new ParameterStore(config, device, dtype, precision, lora, frozen, transfer, layout, flat, Boolean(lora && options.mergeAdapters));
    await store.refreshViews();
    return store;
  }

  /**
   * The type of the per-weight views graphs read the trainable weights as: under mixed precision
   * float16 copies cut from the float32 flat buffer once per change (by the unflatten graph), not
   * cast in every graph that reads them (every decode step); gradients are taken with respect to
   * them and cast to float32 (the trainer's masterGradients). Else the store's type.
   */
  get viewDtype(): StoreDType | 'float16' {
    return this.precision === 'mixed' ? 'float16' : this.dtype;
  }

  /** The float type the training graphs compute in: float16 under mixed precision, else the store's. */
  get compute(): DType {
    return this.precision === 'mixed' ? computeDtype(this.precision) : this.dtype;
  }

  /** Bumped whenever the trainable values change. */
  get version(): number {
    return this.versionCounter;
  }

  /** The current flat buffer (a gpu-buffer tensor on WebGPU). Valid until the next change. */
  get flatTensor(): ort.Tensor {
    return this.flat;
  }

  entry(name: string): ParamEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * Adopt `next` as the flat buffer (e.g. a training step's output). The previous buffer and
   * the per-weight tensors cut from it are freed, so tensors from earlier feeds() calls must
   * not be fed again: call feeds() before each run.
   */
  async replaceFlat(next: ort.Tensor): Promise<void> {
    if (next.dims.length !== 1 || next.dims[0] !== this.size || next.type !== this.dtype) {
      throw new Error(`replaceFlat: expected a ${this.dtype}[${this.size}] tensor, got ${next.type}[${next.dims}]`);
    }
    if (next === this.flat) return;
    this.dropViews();
    disposeTensor(this.flat);
    this.flat = next;
    this.versionCounter++;
    await this.refreshViews();
  }

  /** Overwrite every trainable value from a host array (loading a checkpoint). */
  async writeFlat(values: FlatArray): Promise<void> {
    if (values.length !== this.size) throw new Error(`writeFlat: expected ${this.size} values, got ${values.length}`);
    const data = allocate(this.dtype, this.size);
    data.set(values);
    const [t] = await this.transfer.upload([{ data, shape: [this.size] }]);
    await this.replaceFlat(t);
  }

  /** A host copy of the flat buffer. */
  async readFlat(): Promise<FlatArray> {
    const data = await this.transfer.download(this.flat);
    return this.flat.location === 'gpu-buffer' ? data : data.slice();
  }

  /** Host copies of the trainable weights by name (HF names, or PEFT names under LoRA), float32. */
  async readWeights(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const flat = await this.transfer.download(this.flat);
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const e of this.layout) out.set(e.name, { shape: [...e.shape], data: Float32Array.from(flat.subarray(e.offset, e.offset + e.size)) });
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Feeding inference graphs

  /** The model with its adapters (the policy): weights as inputs by name, in `compute` (default: the store's float type). */
  bind(g: Graph, compute: DType = this.dtype): WeightSource {
    return this.source(g, true, compute).source;
  }

  /** The base model with LoRA adapters off (the reference under LoRA); frozen weights only. */
  baseBinding(): WeightBinding {
    if (!this.lora) return this;
    return { bind: (g, compute = this.dtype) => this.source(g, false, compute).source, feeds: (names) => this.frozen.feeds(names) };
  }

  /**
   * The policy for generation graphs: under mergeAdapters each adapted layer reads one weight, its
   * merged copy (fed under the base weight's name), and no adapter term; else the store itself.
   * Equal to bind()'s policy up to rounding (the merge's own, and under mixed precision the
   * merged weight's rounding to float16, as the base's was).
   */
  generationWeights(): WeightBinding {
    if (!this.mergeAdapters) return this;
    return {
      bind: (g, compute = this.dtype) => {
        const declared = new Map<string, Sym>();
        const views = new Map<string, Sym>();
        const declareMerged = (name: string, shape: number[]): Sym => {
          let s = declared.get(name);
          if (!s) {
            s = g.input(name, shape, this.viewDtype);
            declared.set(name, s);
          }
          return s;
        };
        const declare = (name: string): Sym => (this.mergedNames.has(name) ? declareMerged(name, this.frozen.shapeOf(name)) : this.frozen.declare(g, name, declared));
        const packedQkv = (layer: number) => {
          if (!this.packedLayers.has(layer)) return null;
          const [weight, bias] = [packedQkvName(layer, 'weight'), packedQkvName(layer, 'bias')];
          const shapes = packedQkvShapes(this.config);
          return {
            weight: viewAs(views, weight, () => declareMerged(weight, shapes.weight), compute),
            bias: shapes.bias ? viewAs(views, bias, () => declareMerged(bias, shapes.bias!), compute) : null,
          };
        };
        return { get: (name) => viewAs(views, name, () => declare(name), compute), packedQkv };
      },
      feeds: (inputNames) => {
        if (!this.merged) throw new Error('parameter store: the merged weights are being rebuilt; await the change before feeding a graph');
        return { ...this.frozen.feeds(inputNames), ...pickFeeds(this.merged, inputNames) };
      },
    };
  }


  /**
   * The weights as `compute` values (`get`), and the graph inputs they are read from (`input`):
   * under mixed precision a trainable weight is a float32 input (its master copy) cast to
   * float16, which is what gradients are taken with respect to.
   */
  private source(g: Graph, adapters: boolean, compute: DType): { source: WeightSource; input: (name: string) => Sym } {
    const declared = new Map<string, Sym>();
    const views = new Map<string, Sym>();
    const declare = (name: string): Sym => {
      if (this.frozen.has(name)) return this.frozen.declare(g, name, declared);
      const e = this.byName.get(name);
      if (!e) throw new Error(`the model has no weight "${name}"`);
      let s = declared.get(name);
      if (!s) {
        s = g.input(name, e.shape, this.viewDtype);
        declared.set(name, s);
      }
      return s;
    };
    const get = (name: string): Sym => viewAs(views, name, () => declare(name), compute);
    const src: WeightSource = { get };
    if (this.lora && adapters) {
      const scale = loraScale(this.lora);
      src.linearDelta = (prefix, _module, x) =>
        this.targets.has(prefix) ? loraDelta(x, get(loraWeightName(prefix, 'A')), get(loraWeightName(prefix, 'B')), scale) : null;
    }
    return { source: src, input: declare };
  }

  feeds(inputNames: readonly string[]): Record<string, ort.Tensor> {
    const out = this.frozen.feeds(inputNames);
    for (const n of inputNames) {
      if (n === FLAT_PARAMS_INPUT) out[n] = this.flat;
      if (!this.byName.has(n)) continue;
      if (!this.views) throw new Error('parameter store: the per-weight tensors are being rebuilt; await the change before feeding a graph');
      out[n] = this.views.get(n)!;
    }
    return out;
  }

  /**
   * Per-weight tensors of the current flat buffer (CPU subarray views, or the flat reader's
   * outputs on a device) and, under mergeAdapters, the merged weights.
   */
  private async refreshViews(): Promise<void> {
    if (this.views) return;
    const onDevice = this.device.keepsStateOnDevice;
    if (!onDevice) {
      const flat = this.flat.data as FlatArray;
      const view = (e: ParamEntry) => flat.subarray(e.offset, e.offset + e.size);
      // Mixed precision is refused on the CPU; its graphs are still built here (tests), so the views have their type.
      this.views = new Map(this.layout.map((e) => [e.name, this.viewDtype === 'float16' ? new ort.Tensor('float16', Uint16Array.from(view(e), float32ToFloat16Bits), [...e.shape]) : new ort.Tensor(this.dtype, view(e), [...e.shape])]));
      if (!this.mergeAdapters) return;
    }
    // On a device one graph cuts every view and merges the adapters from the same slices (each
    // node is a dispatch, and this runs after every step); on the CPU it only merges.
    if (!this.flatGraph) {
      const reader = this.flatReader(onDevice);
      this.flatGraph = CompiledGraph.create(reader, this.device, { keepOnDevice: reader.outputs.map((o) => o.name) });
    }
    const graph = await this.flatGraph;
    const out = await graph.run({ ...this.frozen.feeds(graph.inputNames), flat: this.flat });
    const named = (prefix: string) => new Map(graph.outputNames.filter((o) => o.startsWith(prefix)).map((o) => [o.slice(prefix.length), out[o]]));
    if (onDevice) this.views = named(VIEW_OUTPUT);
    if (this.mergeAdapters) this.merged = named(MERGED_OUTPUT);
  }

  /**
   * The graph reading the flat buffer, its outputs named by what they hold: with `views`, each
   * trainable weight cut out in the type graphs read weights in (VIEW_OUTPUT + its name); under
   * mergeAdapters, W + scale·(B·A) for every adapted weight (MERGED_OUTPUT + the name it is fed
   * under), computed in the store's type from the frozen weight (widened where it is held as
   * float16) and the adapter's master values, then given the type graphs read weights in: one
   * rounding to float16 under mixed precision. Each weight is sliced once, and each merge is one
   * Gemm on WebGPU (alpha the scale, C the frozen weight); packed layers' q, k, v are
   * concatenated (WeightSource.packedQkv). Public so its nodes can be inspected.
   */
  flatReader(views: boolean): Graph {
    const g = new Graph(views ? 'unflatten' : 'merge-adapters');
    const flat = g.input('flat', [this.size], this.dtype);
    const cuts = new Map<string, Sym>();
    const cut = (e: ParamEntry): Sym => {
      let s = cuts.get(e.name);
      if (!s) cuts.set(e.name, (s = op.reshape(op.slice(flat, 0, e.offset, e.offset + e.size), e.shape)));
      return s;
    };
    if (views) for (const e of this.layout) g.output(VIEW_OUTPUT + e.name, op.cast(cut(e), this.viewDtype));
    if (!this.mergeAdapters) return g;
    const scale = loraScale(this.lora!);
    const declared = new Map<string, Sym>();
    const frozen = (name: string) => op.cast(this.frozen.declare(g, name, declared), this.dtype);
    const adapter = (prefix: string, part: 'A' | 'B') => cut(this.byName.get(loraWeightName(prefix, part))!);
    const merge = (prefix: string) => op.add(frozen(`${prefix}.weight`), op.mul(op.gemm(adapter(prefix, 'B'), adapter(prefix, 'A')), scale));
    const emit = (name: string, value: Sym) => g.output(MERGED_OUTPUT + name, op.cast(value, this.viewDtype));
    const packed = new Set([...this.packedLayers].flatMap(qkvProjections));
    for (const prefix of this.targets.keys()) if (!packed.has(prefix)) emit(`${prefix}.weight`, merge(prefix));
    for (const l of this.packedLayers) {
      const parts = qkvProjections(l);
      emit(packedQkvName(l, 'weight'), op.concat(parts.map(merge), 0));
      if (this.config.attentionBias) emit(packedQkvName(l, 'bias'), op.concat(parts.map((p) => frozen(`${p}.bias`)), 0));
    }
    return g;
  }

  /** Values held in merged copies under mergeAdapters (0 otherwise), packed biases included. */
  get mergedValues(): number {
    let n = 0;
    for (const name of this.mergedNames) n += numel(this.frozen.shapeOf(name));
    n += this.packedLayers.size * numel(packedQkvShapes(this.config).bias ?? [0]);
    return n;
  }

  private dropViews(): void {
    if (this.views && this.device.keepsStateOnDevice) for (const t of this.views.values()) disposeTensor(t);
    this.views = null;
    if (this.merged && this.device.keepsStateOnDevice) for (const t of this.merged.values()) disposeTensor(t);
    this.merged = null;
  }

  /**
   * Another set of values for the trainable weights, fed together with this store's frozen ones
   * (an EMA teacher: under LoRA the same base with its own adapters). Its values are its own
   * copy; `write` replaces them.
   */
  async trainableCopy(values: FlatArray): Promise<TrainableCopy> {
    const copy = new TrainableCopy(this, (g, compute) => this.source(g, true, compute ?? this.dtype).source);
    await copy.write(values);
    return copy;
  }

  // -------------------------------------------------------------------------------------------
  // The training graph's view

  /**
   * The WeightSource of a training graph: every weight is an input by name, fed by feeds() (on
   * the CPU, views of the flat buffer, so nothing is copied or cut in the graph). `params` are
   * the trainable weights in layout order, the symbols the gradient is taken with respect to.
   */
  trainingSource(g: Graph): { source: WeightSource; params: Sym[] } {
    const { source, input } = this.source(g, true, this.compute);
    return { source, params: this.layout.map((e) => input(e.name)) };
  }

  async release(): Promise<void> {
    this.dropViews();
    disposeTensor(this.flat);
    this.frozen.release();
    await this.flatGraph?.then((g) => g.release()).catch(() => undefined);
    this.flatGraph = null;
    await this.transfer.release();
  }
}

/** The trainable weights of a store with other values (`ParameterStore.trainableCopy`). */
export class TrainableCopy implements WeightBinding {
  private tensors = new Map<string, ort.Tensor>();

  constructor(
    private readonly store: ParameterStore,
    private readonly source: (g: Graph, compute?: DType) => WeightSource,
  ) {}

  bind(g: Graph, compute?: DType): WeightSource {
    return this.source(g, compute);
  }

  feeds(inputNames: readonly string[]): Record<string, ort.Tensor> {
    return { ...this.store.frozen.feeds(inputNames), ...pickFeeds(this.tensors, inputNames) };
  }

  /** Replace every value (flat, in the store's layout); tensors from earlier feeds() must not be fed again. */
  async write(values: FlatArray): Promise<void> {
    if (values.length !== this.store.size) throw new Error(`trainable copy: expected ${this.store.size} values, got ${values.length}`);
    const { layout, dtype, transfer } = this.store;
    const arrays = layout.map((e) => {
      const data = allocate(dtype, e.size);
      data.set(values.subarray(e.offset, e.offset + e.size));
      return { data, shape: e.shape };
    });
    // In the type the store's own views have (float16 under mixed precision).
    const next = this.store.viewDtype === 'float16' ? await transfer.uploadHalf(arrays) : await transfer.upload(arrays);
    this.release();
    this.tensors = new Map(layout.map((e, i) => [e.name, next[i]]));
  }

  release(): void {
    for (const t of this.tensors.values()) disposeTensor(t);
    this.tensors.clear();
  }
}

/** The weight `name` as a `compute` value, declared once per graph (a Cast where it is held in another type). */
function viewAs(views: Map<string, Sym>, name: string, declare: () => Sym, compute: DType): Sym {
  let v = views.get(name);
  if (!v) {
    v = op.cast(declare(), compute);
    views.set(name, v);
  }
  return v;
}
