// How a graph gets its weights. A graph declares the weights it reads as inputs named by their
// Hugging Face names; a `WeightBinding` both declares them (the model's `WeightSource`) and
// supplies the tensors to feed for them at run time. Keeping the two together means a weight
// is held once, in one place, and every session (training, prefill, decode) is fed from it.
import * as ort from 'onnxruntime-node';
import type { DType } from '../graph/dtype.ts';
import type { Graph, Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import type { WeightSource } from '../nn/llama.ts';
import { type Float16Tensor, widenFloat16 } from '../nn/safetensors.ts';

export interface WeightBinding {
  /**
   * The WeightSource a model built into `g` reads from (declares graph inputs on first use).
   * `compute`: the float type the model computes in (float16 under mixed precision); a weight
   * held in another type is cast to it in the graph. Default: the type the weights are fed in,
   * float32 (float64 in gradient checks) for every binding.
   */
  bind(g: Graph, compute?: DType): WeightSource;
  /** The tensors to feed for those of `inputNames` that are weights this binding declared. */
  feeds(inputNames: readonly string[]): Record<string, ort.Tensor>;
}

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * A weight as a checkpoint was loaded: float32, or float16 bits (`half`) where the loader kept a
 * half-precision checkpoint's values for a run that reads them only as float16 (hostHalf).
 */
export type HostWeight = HostTensor | Float16Tensor;

export function isHalf(t: HostWeight): t is Float16Tensor {
  return 'half' in t;
}

/** A weight's values as float32 (a float16 one widened exactly, into a new array). */
export function float32Values(t: HostWeight): Float32Array {
  return isHalf(t) ? (widenFloat16(t.half) as Float32Array) : t.data;
}

/**
 * Frozen weights held on the host and fed to every graph as CPU tensors (no copy: the tensors
 * view the same arrays; float16 ones are fed as float16 and cast in the graph). Enough for
 * inference on the CPU; training and GPU residency use the parameter store.
 */
export class HostWeights<W extends HostWeight = HostWeight> implements WeightBinding {
  private readonly tensors = new Map<string, ort.Tensor>();

  constructor(readonly weights: ReadonlyMap<string, W>) {
    for (const [name, t] of weights) this.tensors.set(name, isHalf(t) ? new ort.Tensor('float16', t.half, t.shape) : new ort.Tensor('float32', t.data, t.shape));
  }

  bind(g: Graph, compute: DType = 'float32'): WeightSource {
    const declared = new Map<string, Sym>();
    return {
      get: (name) => {
        let s = declared.get(name);
        if (!s) {
          const t = this.weights.get(name);
          if (!t) throw new Error(`the model has no weight "${name}"`);
          s = op.cast(g.input(name, t.shape, isHalf(t) ? 'float16' : 'float32'), compute);
          declared.set(name, s);
        }
        return s;
      },
    };
  }

  feeds(inputNames: readonly string[]): Record<string, ort.Tensor> {
    return pickFeeds(this.tensors, inputNames);
  }
}

/** The tensors of `tensors` that `inputNames` asks for (names it does not hold are skipped). */
export function pickFeeds(tensors: ReadonlyMap<string, ort.Tensor>, inputNames: readonly string[]): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const n of inputNames) {
    const t = tensors.get(n);
    if (t) out[n] = t;
  }
  return out;
}
