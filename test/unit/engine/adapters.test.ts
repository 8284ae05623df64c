// The adapter names of the devices report, against a fake sysfs tree in a temporary folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LAVAPIPE,
  cpuAdapterName,
  describeRenderNode,
  nvidiaGpuName,
  parseNvidiaSmiNames,
  preferredRenderNode,
  readRenderNodes,
  summariseGpuNames,
  webgpuAdapterName,
} from '../../../main/engine/runtime/adapters.ts';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

/** A sysfs with the given render nodes: each a PCI device folder with vendor, device and a driver link. */
function fakeSysfs(nodes: Record<string, { vendor?: string; device?: string; driver?: string }>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-sysfs-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'class', 'drm'), { recursive: true });
  fs.mkdirSync(path.join(root, 'class', 'drm', 'card0'));
  for (const [node, info] of Object.entries(nodes)) {
    const pci = path.join(root, 'devices', 'pci0000:00', node);
    fs.mkdirSync(pci, { recursive: true });
    if (info.vendor) fs.writeFileSync(path.join(pci, 'vendor'), `${info.vendor}\n`);
    if (info.device) fs.writeFileSync(path.join(pci, 'device'), `${info.device}\n`);
    if (info.driver) {
      const drv = path.join(root, 'bus', 'pci', 'drivers', info.driver);
      fs.mkdirSync(drv, { recursive: true });
      fs.symlinkSync(drv, path.join(pci, 'driver'));
    }
    fs.mkdirSync(path.join(root, 'class', 'drm', node));
    fs.symlinkSync(pci, path.join(root, 'class', 'drm', node, 'device'));
  }
  return root;
}

describe('device adapter names', () => {
  it('names the processor with its core count', () => {
    expect(cpuAdapterName([{ model: 'AMD  Ryzen 9 7950X ' }, { model: 'x' }])).toBe('AMD Ryzen 9 7950X · 2 cores');
    expect(cpuAdapterName([{ model: 'Apple M2' }])).toBe('Apple M2 · 1 core');
    expect(cpuAdapterName([{ model: '' }, { model: '' }])).toBe('2 cores');
    expect(cpuAdapterName([])).toBeUndefined();
    expect(cpuAdapterName()).toMatch(/\d+ cores?$/);
  });

  it('reads the render nodes of a sysfs tree: vendor, device and driver', () => {
    const root = fakeSysfs({
      renderD129: { vendor: '0x10de', device: '0x2330', driver: 'nvidia' },
      renderD128: { vendor: '0x8086', device: '0x46a6', driver: 'i915' },
      renderD130: { driver: 'panfrost' },
    });
    const nodes = readRenderNodes(root);
    expect(nodes).toEqual([
      { node: 'renderD128', vendorId: 0x8086, deviceId: 0x46a6, driver: 'i915' },
      { node: 'renderD129', vendorId: 0x10de, deviceId: 0x2330, driver: 'nvidia' },
      { node: 'renderD130', vendorId: null, deviceId: null, driver: 'panfrost' },
    ]);
    expect(nodes.map(describeRenderNode)).toEqual(['Intel GPU 8086:46a6 (i915 driver)', 'NVIDIA GPU 10de:2330 (nvidia driver)', 'GPU (panfrost driver)']);
    // The discrete GPU is the one a high-performance request gets.
    expect(preferredRenderNode(nodes)?.node).toBe('renderD129');
    expect(preferredRenderNode(nodes.filter((n) => n.vendorId !== 0x10de))?.node).toBe('renderD128');
    expect(describeRenderNode({ node: 'renderD128', vendorId: 0xabcd, deviceId: 1, driver: null })).toBe('vendor abcd GPU abcd:0001');
  });

  it('reads nothing (and throws nothing) where there is no sysfs', () => {
    expect(readRenderNodes(path.join(os.tmpdir(), 'no-such-sysfs-here'))).toEqual([]);
    expect(readRenderNodes(fakeSysfs({}))).toEqual([]);
  });

  it('says what WebGPU runs on: the GPU, or lavapipe without one', () => {
    const amd = fakeSysfs({ renderD128: { vendor: '0x1002', device: '0x744c', driver: 'amdgpu' } });
    expect(webgpuAdapterName({ platform: 'linux', sysfs: amd, available: true })).toBe('AMD GPU 1002:744c (amdgpu driver)');
    const nv = fakeSysfs({ renderD128: { vendor: '0x10de', device: '0x2330', driver: 'nvidia' } });
    expect(webgpuAdapterName({ platform: 'linux', sysfs: nv, available: true, nvidiaName: 'NVIDIA H100 80GB HBM3' })).toBe('NVIDIA H100 80GB HBM3 (nvidia driver)');

    const none = fakeSysfs({});
    expect(webgpuAdapterName({ platform: 'linux', sysfs: none, available: true, nvidiaDevice: false })).toBe(LAVAPIPE);
    expect(webgpuAdapterName({ platform: 'linux', sysfs: none, available: false, nvidiaDevice: false })).toBeUndefined();
    // The proprietary NVIDIA driver without nvidia-drm: no render node, but /dev/nvidia0.
    expect(webgpuAdapterName({ platform: 'linux', sysfs: none, available: true, nvidiaDevice: true, nvidiaName: 'NVIDIA L4' })).toBe('NVIDIA L4');
    expect(webgpuAdapterName({ platform: 'darwin', sysfs: amd, available: true })).toBeUndefined();
  });

  it('parses nvidia-smi names and never fails without it', async () => {
    expect(parseNvidiaSmiNames('NVIDIA H100 80GB HBM3\n')).toEqual(['NVIDIA H100 80GB HBM3']);
    expect(parseNvidiaSmiNames('name\r\nNVIDIA A100-SXM4-40GB\r\nNVIDIA A100-SXM4-40GB\r\n')).toEqual(['NVIDIA A100-SXM4-40GB', 'NVIDIA A100-SXM4-40GB']);
    expect(parseNvidiaSmiNames('No devices were found\n')).toEqual([]);
    expect(summariseGpuNames(['NVIDIA A100', 'NVIDIA A100'])).toBe('2 × NVIDIA A100');
    expect(summariseGpuNames(['NVIDIA A100', 'NVIDIA L4'])).toBe('NVIDIA A100, NVIDIA L4');
    expect(summariseGpuNames([])).toBeUndefined();
    const name = await nvidiaGpuName(3000);
    expect(name === undefined || name.length > 0).toBe(true);
  });
});
