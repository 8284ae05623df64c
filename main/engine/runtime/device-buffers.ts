// The GPU memory the engine's own buffers take: every gpu-buffer tensor a graph run hands back
// and the engine keeps (the flat parameters and optimizer state, a trainable copy, the KV cache)
// is counted from its shape and type until it is disposed. onnxruntime's own arena (a run's
// intermediate activations) is not visible from here; rl/memory.ts estimates it.
import type * as ort from 'onnxruntime-node';

const BYTES: Partial<Record<ort.Tensor.Type, number>> = {
  float64: 8,
  int64: 8,
  uint64: 8,
  float32: 4,
  int32: 4,
  uint32: 4,
  float16: 2,
  int16: 2,
  uint16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const live = new Map<ort.Tensor, number>();
let liveBytes = 0;
let peakBytes = 0;

/** The bytes a tensor's values take (its shape times its element size). */
export function tensorBytes(t: Pick<ort.Tensor, 'dims' | 'type'>): number {
  return t.dims.reduce((n, d) => n * d, 1) * (BYTES[t.type] ?? 4);
}

/** Count the gpu-buffer tensors among a run's outputs (CPU tensors are the host's memory). */
export function trackDeviceOutputs(outputs: Record<string, ort.Tensor>): void {
  for (const t of Object.values(outputs)) {
    if (t.location !== 'gpu-buffer' || live.has(t)) continue;
    const bytes = tensorBytes(t);
    live.set(t, bytes);
    liveBytes += bytes;
  }
  peakBytes = Math.max(peakBytes, liveBytes);
}

/** Dispose a gpu-buffer tensor and stop counting it (a CPU tensor is left to the garbage collector). */
export function disposeTensor(t: ort.Tensor | null | undefined): void {
  if (!t || t.location !== 'gpu-buffer') return;
  const bytes = live.get(t);
  if (bytes !== undefined) {
    live.delete(t);
    liveBytes -= bytes;
  }
  t.dispose();
}

export interface DeviceBufferUsage {
  /** Bytes held now, by how many tensors. */
  bytes: number;
  tensors: number;
  /** The most held at once since the last resetPeak(). */
  peakBytes: number;
}

export function deviceBufferUsage(): DeviceBufferUsage {
  return { bytes: liveBytes, tensors: live.size, peakBytes };
}

/** Start a new peak from what is held now (e.g. at the start of a training step). */
export function resetDeviceBufferPeak(): void {
  peakBytes = liveBytes;
}
