// A compiled graph: one onnxruntime InferenceSession for one built graph on one device.
// All runs go through one queue, so only one session computes at a time (concurrent WebGPU
// sessions crash on Linux, and on the CPU two sessions would only fight for the same cores).
import * as ort from 'onnxruntime-node';
import { emitModel } from '../graph/emit.ts';
import { loweringsFor, passesFor } from '../graph/lowering.ts';
import type { Graph } from '../graph/graph.ts';
import { trackDeviceOutputs } from './device-buffers.ts';
import { type Device, sessionOptions } from './devices.ts';

let queue: Promise<unknown> = Promise.resolve();

/** onnxruntime's refusal when a node would fall back to its CPU provider (see devices.ts). */
const CPU_FALLBACK_REFUSED = /fallback to CPU EP has been explicitly disabled/;

/** Run `fn` after every run queued before it has finished. */
export function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const next = queue.then(fn, fn);
  queue = next.catch(() => undefined);
  return next;
}

export interface CompileOptions {
  /**
   * Outputs that stay on the device as gpu-buffer tensors (WebGPU) so they can be fed straight
   * back to the next run. Everything else is read back to the CPU. Ignored on the CPU device.
   */
  keepOnDevice?: readonly string[];
}

export class CompiledGraph {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly device: Device,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly modelBytes: number,
  ) {}

  static async create(graph: Graph, device: Device, options: CompileOptions = {}): Promise<CompiledGraph> {
    const bytes = emitModel(graph, loweringsFor(device.name), passesFor(device.name));
    const outputNames = graph.outputs.map((o) => o.name);
    const extra: Partial<ort.InferenceSession.SessionOptions> = {};
    if (device.keepsStateOnDevice) {
      const keep = new Set(options.keepOnDevice ?? []);
      extra.preferredOutputLocation = Object.fromEntries(outputNames.map((n) => [n, keep.has(n) ? 'gpu-buffer' : 'cpu']));
    }
    // ORT's extended fusions (e.g. SiLU -> com.microsoft QuickGelu) have float32-only kernels,
    // so float64 graphs (gradient checks) would fail to compile with them.
    if (graph.inputs.some((s) => s.dtype === 'float64')) extra.graphOptimizationLevel = 'basic';
    let session: ort.InferenceSession;
    try {
      session = await exclusive(() => ort.InferenceSession.create(bytes, sessionOptions(device, extra)));
    } catch (e) {
      const message = (e as Error).message;
      if (CPU_FALLBACK_REFUSED.test(message)) {
        throw new Error(
          `could not compile graph "${graph.name}" for ${device.name}: it has nodes the ${device.name} provider has no kernel for, ` +
            `which onnxruntime would run on the CPU, copying their tensors to the host and back on every run. ` +
            `Add a lowering for them (main/engine/graph/lowering.ts); AUTODIDACT_PROFILE=DIR/prefix with ` +
            `AUTODIDACT_ALLOW_CPU_FALLBACK=1 lists them (nodes whose provider is CPUExecutionProvider).`,
        );
      }
      throw new Error(`could not compile graph "${graph.name}" for ${device.name}: ${message}`);
    }
    return new CompiledGraph(session, device, graph.inputs.map((s) => s.name), outputNames, bytes.length);
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    for (const name of this.inputNames) {
      if (!(name in feeds)) throw new Error(`missing input "${name}"`);
    }
    const outputs = await exclusive(() => this.session.run(feeds));
    if (this.device.keepsStateOnDevice) trackDeviceOutputs(outputs);
    return outputs;
  }

  async release(): Promise<void> {
    if (process.env.AUTODIDACT_PROFILE) this.session.endProfiling();
    await this.session.release();
  }
}

/** A CPU tensor over a typed array (no copy). */
export function cpuTensor(data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array, shape: readonly number[]): ort.Tensor {
  const type =
    data instanceof Float32Array
      ? 'float32'
      : data instanceof Float64Array
        ? 'float64'
        : data instanceof Int32Array
          ? 'int32'
          : data instanceof BigInt64Array
            ? 'int64'
            : data instanceof Uint16Array
              ? 'float16'
              : 'bool';
  return new ort.Tensor(type, data, [...shape]);
}
