// Engine commands about the engine itself: liveness, the devices it can run on, and a self-test
// that keeps a device busy with real matrix products (a throughput figure for `autodidact
// devices --measure`, and a long computation the host's tests can watch and cancel).
import os from 'node:os';
import { threadId } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { Graph } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import { EngineError, type CommandContext } from '../protocol.ts';
import { cpuAdapterName, nvidiaGpuName, webgpuAdapterName } from '../runtime/adapters.ts';
import { type DeviceName, type DeviceRequest, probeDevice, resolveDevice, type Device } from '../runtime/devices.ts';
import { CompiledGraph, cpuTensor } from '../runtime/session.ts';

export const deviceRequest = z.enum(['cpu', 'webgpu', 'cuda', 'auto']);

const started = Date.now();

export const pingParams = z.object({ echo: z.string().optional() });

export async function ping(params: z.output<typeof pingParams>) {
  return { pong: true as const, echo: params.echo, threadId, uptimeMs: Date.now() - started };
}

export interface DeviceReport {
  name: DeviceName;
  available: boolean;
  /** Why the device cannot run here (absent when it can). */
  reason?: string;
  /** The processor or GPU behind it, where known (for a person to read; nothing depends on it). */
  adapter?: string;
}

/** Which devices answer here (with the hardware behind each), and what `auto` picks. */
export async function listDevices() {
  const names: DeviceName[] = ['cpu', 'webgpu', 'cuda'];
  // nvidia-smi runs while the devices are probed; it has a short timeout and never fails the list.
  const nvidia = nvidiaGpuName();
  const devices: DeviceReport[] = [];
  for (const name of names) {
    const reason = await probeDevice(name);
    devices.push(reason ? { name, available: false, reason } : { name, available: true });
  }
  const nvidiaName = await nvidia;
  const adapters: Record<DeviceName, string | undefined> = {
    cpu: cpuAdapterName(),
    webgpu: webgpuAdapterName({ available: devices[1].available, nvidiaName }),
    cuda: nvidiaName,
  };
  for (const d of devices) {
    const adapter = adapters[d.name];
    if (adapter) d.adapter = adapter;
  }
  const auto = await resolveDevice('auto');
  return {
    devices,
    auto: auto.name,
    threads: Number(process.env.AUTODIDACT_THREADS) || os.availableParallelism(),
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Resolve a device request, turning "not available" into a DEVICE_UNAVAILABLE engine error. */
export async function engineDevice(request: DeviceRequest): Promise<Device> {
  try {
    return await resolveDevice(request);
  } catch (e) {
    throw new EngineError((e as Error).message, 'DEVICE_UNAVAILABLE', { device: request });
  }
}

export const selftestParams = z
  .object({
    device: deviceRequest.default('cpu'),
    /** Side of the square matrices. */
    size: z.number().int().min(8).max(8192).default(512),
    /** Matrix products per run. */
    depth: z.number().int().min(1).max(64).default(8),
    /** Stop after this many runs ... */
    iterations: z.number().int().positive().optional(),
    /** ... or after this many seconds (the default when neither is given: 1 s). */
    seconds: z.number().positive().optional(),
  })
  .refine((p) => !(p.iterations && p.seconds), { message: 'give iterations or seconds, not both' });

export interface SelftestProgress {
  iteration: number;
  elapsedMs: number;
}

/**
 * Run a chain of `depth` matrix products (with tanh between them, so values stay bounded) over and
 * over on one device, and report the achieved GFLOP/s. Cancellation is checked between runs.
 */
export async function selftest(params: z.output<typeof selftestParams>, ctx: CommandContext<SelftestProgress>) {
  const device = await engineDevice(params.device);
  const n = params.size;
  const g = new Graph('selftest');
  const x = g.input('x', [n, n]);
  let y = x;
  g.untaped(() => {
    for (let i = 0; i < params.depth; i++) y = op.tanh(op.mul(op.matmul(y, x), 1 / Math.sqrt(n)));
    g.output('y', op.sum(y));
  });
  const compiled = await CompiledGraph.create(g, device);
  try {
    const data = new Float32Array(n * n);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
    const feeds = { x: cpuTensor(data, [n, n]) };
    const limitMs = params.iterations ? Infinity : (params.seconds ?? 1) * 1000;
    const limitRuns = params.iterations ?? Infinity;
    const t0 = performance.now();
    let runs = 0;
    let checksum = 0;
    while (runs < limitRuns && performance.now() - t0 < limitMs) {
      ctx.signal.throwIfAborted();
      checksum = Number((await compiled.run(feeds)).y.data[0]);
      runs++;
      ctx.progress({ iteration: runs, elapsedMs: performance.now() - t0 });
    }
    const ms = performance.now() - t0;
    const flops = 2 * n * n * n * params.depth * runs;
    return { device: device.name, size: n, depth: params.depth, iterations: runs, ms, gflops: flops / (ms * 1e6), checksum };
  } finally {
    await compiled.release();
  }
}
