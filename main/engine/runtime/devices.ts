// Execution devices: which onnxruntime execution provider runs a session, and with what options.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Precision } from './precision.ts';

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

/**
 * The CUDA EP needs its provider library, which onnxruntime-node's install script downloads
 * on a machine that can reach it. onnxruntime lists the backend either way, so look for it.
 */
function cudaInstalled(): boolean {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return fs.existsSync(path.join(path.dirname(pkg), 'bin', 'napi-v6', `${process.platform}`, `${process.arch}`, lib));
}

/**
 * Whether a hardware GPU is present. On Linux a WebGPU adapter may be Mesa's software
 * rasteriser (lavapipe), which is slower than the CPU provider, so `auto` only picks WebGPU
 * where the kernel exposes a GPU render node. Elsewhere a WebGPU adapter is a real GPU.
 */
function hardwareGpuPresent(): boolean {
  if (process.platform !== 'linux') return true;
  try {
    return fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD')) || fs.existsSync('/dev/nvidia0');
  } catch {
    return fs.existsSync('/dev/nvidia0');
  }
}

/** Why `name` cannot run here, or null when it can. */
export function probeDevice(name: DeviceName): Promise<string | null> {
  return name === 'cpu' ? Promise.resolve(null) : probe(name);
}

/**
 * Resolve a device request. `auto` prefers a GPU: CUDA where its provider is installed and
 * answers, else WebGPU where a hardware GPU answers, else the CPU.
 */
export async function resolveDevice(request: DeviceRequest): Promise<Device> {
  if (request === 'cpu') return { name: 'cpu', keepsStateOnDevice: false };
  if (request === 'auto') {
    if (!(await probe('cuda'))) return { name: 'cuda', keepsStateOnDevice: false };
    if (hardwareGpuPresent() && !(await probe('webgpu'))) return { name: 'webgpu', keepsStateOnDevice: true };
    return { name: 'cpu', keepsStateOnDevice: false };
  }
  const why = await probe(request);
  if (!why) return { name: request, keepsStateOnDevice: request === 'webgpu' };
  throw new Error(`device "${request}" is not available (${request}: ${why}). Choose device "cpu" or "auto".`);
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

/**
 * On WebGPU a node the provider has no kernel for would silently run on the CPU provider, with
 * its tensors copied to the host and back on every run; sessions refuse that instead, so a new
 * op without a WebGPU kernel fails where it is compiled (and the test suite, which compiles every
 * graph on WebGPU) until it gets a lowering. AUTODIDACT_ALLOW_CPU_FALLBACK=1 lets such a graph
 * run anyway, e.g. to profile which nodes fall back. Not applied to CUDA: its provider assigns
 * shape computations to the CPU on purpose, and it cannot be verified here.
 */
function refuseCpuFallback(device: Device): boolean {
  return device.name === 'webgpu' && process.env.AUTODIDACT_ALLOW_CPU_FALLBACK !== '1';
}

/**
 * AUTODIDACT_WEBGPU_OPTIONS='{"validationMode":"disabled"}' passes options to onnxruntime's
 * WebGPU provider (validationMode, storageBufferCacheMode, ...) for measuring them. They set up
 * the process's one WebGPU context, so the first session created decides.
 */
function webgpuProviderOptions(): Record<string, string> {
  const raw = process.env.AUTODIDACT_WEBGPU_OPTIONS;
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
  } catch {
    // reported below
  }
  throw new Error(`AUTODIDACT_WEBGPU_OPTIONS must be a JSON object of WebGPU provider options, got ${raw}`);
}

export function sessionOptions(device: Device, extra: Partial<ort.InferenceSession.SessionOptions> = {}): ort.InferenceSession.SessionOptions {
  const threads = Number(process.env.AUTODIDACT_THREADS) || os.availableParallelism();
  return {
    executionProviders: [device.name === 'webgpu' ? { name: 'webgpu', ...webgpuProviderOptions() } : device.name],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    // Flush denormals to zero. A causal mask's large negative scores send MLAS's exp through
    // denormal intermediates (the results are exact zeros), which made each attention softmax
    // about 9x slower: 5.3 of a step's 330 ms on bench-256, 0.6 with this. onnxruntime applies
    // it to its pool threads and, once per process, to the thread that creates the first
    // session (the engine worker in the app), where JavaScript's doubles flush as well. Only
    // values below 1.2e-38 (float32) or 2.2e-308 (double) become zero, far under anything a
    // step depends on (Adam's eps is 1e-8).
    extra: { session: { set_denormal_as_zero: '1', ...(refuseCpuFallback(device) ? { disable_cpu_ep_fallback: '1' } : {}) } },
    // No memory pattern: with one, onnxruntime allocates a run's planned intermediates as one
    // block every run and frees it after, so each training step faults in and zeroes fresh
    // pages. Without it the arena keeps its memory between runs: in perf profiles of
    // bench-256-32k steps the kernel's page clearing fell from 25% to 8% of CPU samples, peak
    // RSS from 3.05 to 2.3 GB, and neither training nor generation got slower anywhere measured.
    enableMemPattern: false,
    // AUTODIDACT_PROFILE=DIR/prefix writes onnxruntime's per-node timings (a Chrome trace JSON
    // per session) for finding where a step spends its time; AUTODIDACT_OPTIMIZED_MODEL=FILE.onnx
    // writes the graph as onnxruntime runs it, after its fusions (the last session created wins).
    ...(process.env.AUTODIDACT_PROFILE ? { enableProfiling: true, profileFilePrefix: process.env.AUTODIDACT_PROFILE } : {}),
    ...(process.env.AUTODIDACT_OPTIMIZED_MODEL ? { optimizedModelFilePath: process.env.AUTODIDACT_OPTIMIZED_MODEL } : {}),
    ...extra,
  };
}

const halfProbes = new Map<DeviceName, Promise<string | null>>();

/**
 * Why `device` cannot run float16 graphs (precision "mixed"), or null when it can. The probe is
 * run, not only compiled, so a provider that registers the kernels but cannot execute them (a
 * WebGPU adapter without shader-f16) is found here rather than in the first training step.
 */
export function halfPrecisionSupport(device: Device): Promise<string | null> {
  let p = halfProbes.get(device.name);
  if (!p) {
    p = (async () => {
      // onnxruntime's CPU provider has float16 kernels for few ops (none for MatMul on x86): it
      // converts every other float16 node to float32 and back, so a mixed-precision graph would
      // run in float32 with extra conversions, silently slower than fp32.
      if (device.name === 'cpu') return "onnxruntime's CPU provider has no float16 matrix kernels and would run every float16 node in float32, with conversions around it";
      try {
        const { halfProbeModel } = await import('./probe-model.ts');
        const session = await ort.InferenceSession.create(halfProbeModel(), sessionOptions(device));
        try {
          const out = await session.run({ a: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [2, 2]) });
          const y = out.y.data as Float32Array;
          if (y[0] !== 5 || y[3] !== 25) return `its float16 product gave [${Array.from(y).join(', ')}] instead of [5, 11, 11, 25]`;
        } finally {
          await session.release();
        }
        return null;
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      }
    })();
    halfProbes.set(device.name, p);
  }
  return p;
}

/** Refuses `precision` on a device that cannot run it, naming the setting and the devices that can. */
export async function checkPrecision(device: Device, precision: Precision): Promise<void> {
  if (precision === 'fp32') return;
  const why = await halfPrecisionSupport(device);
  if (why) {
    const others = (['webgpu', 'cuda'] as const).filter((d) => d !== device.name).join(' or ');
    throw new Error(`precision "mixed" needs float16 kernels, which device ${device.name} does not have (${why}). Set precision to "fp32", or run on device ${others} where its GPU supports float16.`);
  }
}
