// Adapter names for the devices report: the processor the CPU provider runs on, the GPU (or
// software rasteriser) WebGPU would get, and the GPU CUDA would use. Only for showing a person
// which hardware is behind each device: nothing here decides where anything runs, so every
// function is cheap and none throws (an unknown name is simply absent). GPU 0's memory, read
// the same way, sizes a run's batches (rl/memory.ts).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PCI vendor ids of the GPUs a workstation may hold. */
const PCI_VENDORS: Record<number, string> = {
  0x10de: 'NVIDIA',
  0x1002: 'AMD',
  0x1022: 'AMD',
  0x8086: 'Intel',
  0x1af4: 'virtio',
  0x15ad: 'VMware',
  0x1234: 'QEMU',
  0x5143: 'Qualcomm',
  0x13b5: 'Arm',
  0x1a03: 'ASPEED',
  0x102b: 'Matrox',
};

/** Vendors whose GPUs are discrete (or the only hardware 3D a machine has): preferred by Dawn's high-performance request. */
const DISCRETE = new Set([0x10de, 0x1002]);

/** The processor: its model name and core count, e.g. "Intel(R) Xeon(R) Gold 6338 · 32 cores". */
export function cpuAdapterName(cpus: Pick<os.CpuInfo, 'model'>[] = safeCpus()): string | undefined {
  if (!cpus.length) return undefined;
  const model = (cpus[0].model ?? '').replace(/\s+/g, ' ').trim();
  const cores = `${cpus.length} ${cpus.length === 1 ? 'core' : 'cores'}`;
  return model ? `${model} · ${cores}` : cores;
}

function safeCpus(): os.CpuInfo[] {
  try {
    return os.cpus();
  } catch {
    return [];
  }
}

/** A GPU the kernel exposes a render node for (`/sys/class/drm/renderD*`). */
export interface RenderNode {
  /** e.g. "renderD128". */
  node: string;
  /** PCI vendor and device ids; null for a platform (non-PCI) GPU. */
  vendorId: number | null;
  deviceId: number | null;
  /** The kernel driver bound to it (the `driver` symlink's name: "nvidia", "amdgpu", "i915", ...). */
  driver: string | null;
}

function readHex(file: string): number | null {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 16);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** The render nodes under `sysfs` (default `/sys`), in name order; empty where there are none or it cannot be read. */
export function readRenderNodes(sysfs = '/sys'): RenderNode[] {
  const drm = path.join(sysfs, 'class', 'drm');
  let names: string[];
  try {
    names = fs.readdirSync(drm).filter((f) => /^renderD\d+$/.test(f));
  } catch {
    return [];
  }
  names.sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)));
  return names.map((node) => {
    const device = path.join(drm, node, 'device');
    let driver: string | null = null;
    try {
      driver = path.basename(fs.readlinkSync(path.join(device, 'driver')));
    } catch {
      /* no driver bound, or not a link */
    }
    return { node, vendorId: readHex(path.join(device, 'vendor')), deviceId: readHex(path.join(device, 'device')), driver };
  });
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

/** e.g. "NVIDIA GPU 10de:2330 (nvidia driver)", "GPU (panfrost driver)". */
export function describeRenderNode(n: RenderNode): string {
  const vendor = n.vendorId === null ? null : (PCI_VENDORS[n.vendorId] ?? `vendor ${hex4(n.vendorId)}`);
  const ids = n.vendorId !== null && n.deviceId !== null ? ` ${hex4(n.vendorId)}:${hex4(n.deviceId)}` : '';
  const driver = n.driver ? ` (${n.driver} driver)` : '';
  return `${vendor ? `${vendor} ` : ''}GPU${ids}${driver}`;
}

/** The render node Dawn's high-performance request most likely gets: a discrete GPU first, else the first one. */
export function preferredRenderNode(nodes: RenderNode[]): RenderNode | undefined {
  return nodes.find((n) => n.vendorId !== null && DISCRETE.has(n.vendorId)) ?? nodes[0];
}

export const LAVAPIPE = 'Mesa lavapipe (software rendering on the CPU)';

export interface WebgpuAdapterOptions {
  platform?: NodeJS.Platform;
  sysfs?: string;
  /** Whether the WebGPU provider answered the probe here. */
  available: boolean;
  /** The NVIDIA GPU's name from nvidia-smi, for a proprietary driver without a render node. */
  nvidiaName?: string;
  /** Whether /dev/nvidia0 exists (default: looked up). */
  nvidiaDevice?: boolean;
}

/**
 * What Dawn will pick on Linux: the GPU behind a render node, or (with none) Mesa's lavapipe
 * where WebGPU answers anyway. Elsewhere (Metal, D3D12) the adapter is the system's GPU, whose
 * name Node cannot read: undefined.
 */
export function webgpuAdapterName(options: WebgpuAdapterOptions): string | undefined {
  if ((options.platform ?? process.platform) !== 'linux') return undefined;
  const node = preferredRenderNode(readRenderNodes(options.sysfs));
  if (node) {
    const described = describeRenderNode(node);
    return node.vendorId === 0x10de && options.nvidiaName ? `${options.nvidiaName} (${node.driver ?? 'nvidia'} driver)` : described;
  }
  const nvidiaDevice = options.nvidiaDevice ?? fs.existsSync('/dev/nvidia0');
  if (nvidiaDevice) return options.nvidiaName ?? 'NVIDIA GPU';
  return options.available ? LAVAPIPE : undefined;
}

/** The GPU names in `nvidia-smi --query-gpu=name --format=csv,noheader` output, one a line. */
export function parseNvidiaSmiNames(stdout: string): string[] {
  return stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^(name|no devices|nvidia-smi has failed)/i.test(l));
}

/** "NVIDIA H100 80GB HBM3", or "2 × NVIDIA A100" for several alike. */
export function summariseGpuNames(names: string[]): string | undefined {
  if (!names.length) return undefined;
  if (names.every((n) => n === names[0])) return names.length === 1 ? names[0] : `${names.length} × ${names[0]}`;
  return names.join(', ');
}

/** The NVIDIA GPUs' names from nvidia-smi (with a short timeout), or undefined where there is none or it fails. */
export function nvidiaGpuName(timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    try {
      execFile('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { timeout: timeoutMs, windowsHide: true }, (err, stdout) => {
        resolve(err ? undefined : summariseGpuNames(parseNvidiaSmiNames(String(stdout))));
      });
    } catch {
      resolve(undefined);
    }
  });
}

/** GPU 0's total and free memory in `nvidia-smi --query-gpu=memory.total,memory.free --format=csv,noheader,nounits` output (MiB). */
export function parseNvidiaSmiMemory(stdout: string): { totalBytes: number; freeBytes: number } | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/m.exec(stdout);
  if (!m) return undefined;
  const MIB = 1024 ** 2;
  return { totalBytes: Number(m[1]) * MIB, freeBytes: Number(m[2]) * MIB };
}

/** GPU 0's memory from nvidia-smi (with a short timeout), or undefined where there is none or it fails. */
export function nvidiaGpuMemory(timeoutMs = 3000): Promise<{ totalBytes: number; freeBytes: number } | undefined> {
  return new Promise((resolve) => {
    try {
      execFile('nvidia-smi', ['--query-gpu=memory.total,memory.free', '--format=csv,noheader,nounits', '--id=0'], { timeout: timeoutMs, windowsHide: true }, (err, stdout) => {
        resolve(err ? undefined : parseNvidiaSmiMemory(String(stdout)));
      });
    } catch {
      resolve(undefined);
    }
  });
}
