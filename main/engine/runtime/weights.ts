// How a graph gets its weights. A graph declares the weights it reads as inputs named by their
// Hugging Face names; a `WeightBinding` both declares them (the model's `WeightSource`) and
// supplies the tensors to feed for them at run time. Keeping the two together means a weight
// is held once, in one place, and every session (training, prefill, decode) is fed from it.
import * as ort from 'onnxruntime-node';
import type { DType } from '../graph/dtype.ts';
import type { Graph, Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import type { WeightSource } from '../nn/llama.ts';

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
 * Frozen float32 weights held on the host and fed to every graph as CPU tensors (no copy: the
 * tensors view the same arrays). Enough for inference on the CPU; training and GPU residency
 * use the parameter store.
 */
export class HostWeights implements WeightBinding {
  private readonly tensors = new Map<string, ort.Tensor>();

  constructor(readonly weights: ReadonlyMap<string, HostTensor>) {
    for (const [name, t] of weights) this.tensors.set(name, new ort.Tensor('float32', t.data, t.shape));
  }

  bind(g: Graph, compute: DType = 'float32'): WeightSource {
    const declared = new Map<string, Sym>();
    return {
      get: (name) => {
        let s = declared.get(name);
        if (!s) {
          const t = this.weights.get(name);
          if (!t) throw new Error(`the model has no weight "${name}"`);
          s = op.cast(g.input(name, t.shape, 'float32'), compute);
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
