// The KV cache of one generation, in the layout of graphs.ts (keys and values [B·KVH, L, D]
// per layer), in one of two homes:
//  - HostKvCache: float32 arrays on the host, fed to every decode step as CPU tensors that view
//    them (no copy); the host writes each step's new k, v in place.
//  - DeviceKvCache: gpu-buffer tensors the graphs return and take back (WebGPU). Their values
//    are never read on the host (getData() on a gpu-buffer tensor aborts the process).
import type * as ort from 'onnxruntime-node';
import type { LlamaConfig } from '../nn/config.ts';
import { disposeTensor } from '../runtime/device-buffers.ts';
import { cpuTensor } from '../runtime/session.ts';
import { type CacheDType, IO } from './graphs.ts';

export type FloatArray = Float32Array | Float64Array;

export function floatArray(dtype: CacheDType, n: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/**
 * Host arrays sized for `capacity` slots per row, used as a window of the first `length` slots:
 * a decode graph reads the whole window, so the window grows with the generation instead of
 * starting at the full length (less memory traffic while sequences are short). Growing moves
 * each row's slots to the wider stride in place.
 */
export class HostKvCache {
  readonly keys: FloatArray[] = [];
  readonly values: FloatArray[] = [];
  private feedTensors: Record<string, ort.Tensor> = {};
  private readonly kvh: number;
  private readonly d: number;
  private window = 0;

  constructor(
    config: LlamaConfig,
    readonly rows: number,
    readonly capacity: number,
    readonly dtype: CacheDType,
  ) {
    this.kvh = config.numKvHeads;
    this.d = config.headDim;
    const size = rows * this.kvh * capacity * this.d;
    for (let l = 0; l < config.numLayers; l++) {
      this.keys.push(floatArray(dtype, size));
      this.values.push(floatArray(dtype, size));
    }
  }

  /** Slots per row the decode graph currently sees. */
  get length(): number {
    return this.window;
  }

  /** Start over with a window of `length` slots (contents are rewritten by fillFromPrefill). */
  reset(length: number): void {
    this.setWindow(length);
  }

  /** Widen the window to `length` slots, keeping every row's slots. */
  grow(length: number): void {
    const from = this.window;
    if (length <= from) return;
    const run = from * this.d;
    const slabs = this.rows * this.kvh;
    for (const a of [...this.keys, ...this.values]) {
      // last slab first: each destination lies at or after its source and past every lower one
      for (let s = slabs - 1; s > 0; s--) a.copyWithin(s * length * this.d, s * run, s * run + run);
    }
    this.setWindow(length);
  }

  private setWindow(length: number): void {
    if (!(length >= 1 && length <= this.capacity)) throw new Error(`cache window ${length} outside 1..${this.capacity}`);
    this.window = length;
    const slabs = this.rows * this.kvh;
    const n = slabs * length * this.d;
    this.feedTensors = {};
    this.keys.forEach((k, l) => {
      this.feedTensors[IO.pastK(l)] = cpuTensor(k.subarray(0, n), [slabs, length, this.d]);
      this.feedTensors[IO.pastV(l)] = cpuTensor(this.values[l].subarray(0, n), [slabs, length, this.d]);
    });
  }

  /** The cache inputs of a decode step (the same tensors while the window stays). */
  feeds(): Record<string, ort.Tensor> {
    return this.feedTensors;
  }

  /**
   * Place one layer's prompt keys and values ([P, KVH, T, D], as prefill returns them) in slots
   * 0..T−1 of the N sample rows of each prompt: the prompt is computed once, copied N times.
   */
  fillFromPrefill(layer: number, k: FloatArray, v: FloatArray, prompts: number, samplesPerPrompt: number, promptLength: number): void {
    const { kvh: KVH, d: D, window: L } = this;
    if (promptLength > L) throw new Error(`prompt length ${promptLength} exceeds the cache window ${L}`);
    const run = promptLength * D;
    for (let p = 0; p < prompts; p++) {
      for (let h = 0; h < KVH; h++) {
        const src = (p * KVH + h) * run;
        for (let n = 0; n < samplesPerPrompt; n++) {
          const slab = ((p * samplesPerPrompt + n) * KVH + h) * L * D;
          this.keys[layer].set(k.subarray(src, src + run), slab);
          this.values[layer].set(v.subarray(src, src + run), slab);
        }
      }
    }
  }

  /** Write one layer's new k, v ([B, KVH, 1, D], as a decode step returns them) to `slot`. */
  writeStep(layer: number, k: FloatArray, v: FloatArray, slot: number): void {
    const { d: D, window: L } = this;
    const K = this.keys[layer];
    const V = this.values[layer];
    const slabs = this.rows * this.kvh;
    // plain loops: per-slab subarray().set() costs more in view allocations than it copies
    for (let s = 0; s < slabs; s++) {
      const src = s * D;
      const dst = (s * L + slot) * D;
      for (let j = 0; j < D; j++) {
        K[dst + j] = k[src + j];
        V[dst + j] = v[src + j];
      }
    }
  }
}

export class DeviceKvCache {
  private tensors: Record<string, ort.Tensor> = {};

  constructor(private readonly layers: number) {}

  /** Take the whole-cache outputs of a run (cache_k.l, cache_v.l) as the next step's inputs. */
  replace(outputs: Record<string, ort.Tensor>): void {
    const next: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layers; l++) {
      const k = outputs[IO.cacheK(l)];
      const v = outputs[IO.cacheV(l)];
      if (!k || !v) throw new Error(`the graph returned no cache for layer ${l}`);
      next[IO.pastK(l)] = k;
      next[IO.pastV(l)] = v;
    }
    // Only now free the previous step's buffers: the run that read them has finished.
    this.dispose();
    this.tensors = next;
  }

  feeds(): Record<string, ort.Tensor> {
    return this.tensors;
  }

  dispose(): void {
    for (const t of Object.values(this.tensors)) disposeTensor(t);
    this.tensors = {};
  }
}
