// Execution devices: which onnxruntime execution provider runs a session, and with what options.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

export type DeviceName = 'cpu' | 'webgpu' | 'cuda';
export type DeviceRequest = DeviceName | 'auto';

export interface Device {
  name: DeviceName;
  /** Whether values can stay on the device between runs (gpu-buffer tensors). */
  keepsStateOnDevice: boolean;
}

function bundled(name: string): boolean {
  return ort.listSupportedBackends().some((b) => b.name === name && b.bundled);
}

/** The CUDA EP needs its provider library, which the install script fetches on a GPU box. */
function cudaInstalled(): boolean {
  return ort.listSupportedBackends().some((b) => b.name === 'cuda');
}

/**
 * Resolve a device request. `auto` prefers a GPU: CUDA where its binaries are installed and
 * answer, else WebGPU where an adapter answers, else the CPU.
 */
export async function resolveDevice(request: DeviceRequest): Promise<Device> {
  if (request === 'cpu') return { name: 'cpu', keepsStateOnDevice: false };
  const order: DeviceName[] = request === 'auto' ? ['cuda', 'webgpu'] : [request];
  const failures: string[] = [];
  for (const name of order) {
    const why = await probe(name);
    if (!why) return { name, keepsStateOnDevice: name === 'webgpu' };
    failures.push(`${name}: ${why}`);
  }
  if (request === 'auto') return { name: 'cpu', keepsStateOnDevice: false };
  throw new Error(`device "${request}" is not available (${failures.join('; ')}). Choose device "cpu" or "auto".`);
}

/** Dawn's Vulkan backend on Linux wants a runtime directory; headless boxes may have none. */
function ensureRuntimeDir(): void {
  if (process.platform !== 'linux' || process.env.XDG_RUNTIME_DIR) return;
  const dir = path.join(os.tmpdir(), `autodidact-runtime-${process.getuid?.() ?? 'user'}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

const probes = new Map<DeviceName, Promise<string | null>>();

/** Try a one-node session on the device; null when it works, else the reason. */
function probe(name: DeviceName): Promise<string | null> {
  let p = probes.get(name);
  if (!p) {
    p = (async () => {
      if (name === 'cuda' && !cudaInstalled()) return 'the CUDA execution provider is not installed';
      if (name === 'webgpu' && !bundled('webgpu')) return 'this onnxruntime build has no WebGPU provider';
      if (name === 'webgpu') ensureRuntimeDir();
      try {
        const { probeModel } = await import('./probe-model.ts');
        const session = await ort.InferenceSession.create(probeModel(), sessionOptions({ name, keepsStateOnDevice: false }));
        await session.release();
        return null;
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      }
    })();
    probes.set(name, p);
  }
  return p;
}

export function sessionOptions(device: Device, extra: Partial<ort.InferenceSession.SessionOptions> = {}): ort.InferenceSession.SessionOptions {
  const threads = Number(process.env.AUTODIDACT_THREADS) || os.availableParallelism();
  return {
    executionProviders: [device.name],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...extra,
  };
}
