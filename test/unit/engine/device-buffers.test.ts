// The GPU memory the engine reports for its own buffers (runtime/device-buffers.ts): counted from
// each kept tensor's shape and type, and no longer once it is disposed.
import type * as ort from 'onnxruntime-node';
import { describe, expect, it, vi } from 'vitest';
import { Generator } from '../../../main/engine/generate/generator.ts';
import { deviceBufferUsage, disposeTensor, resetDeviceBufferPeak, tensorBytes, trackDeviceOutputs } from '../../../main/engine/runtime/device-buffers.ts';
import { ParameterStore } from '../../../main/engine/runtime/parameter-store.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { randomWeights, tinyConfig } from './generate-fixtures.ts';

const fake = (location: 'gpu-buffer' | 'cpu', dims: number[], type: ort.Tensor.Type = 'float32') =>
  ({ location, dims, type, dispose: vi.fn() }) as unknown as ort.Tensor & { dispose: ReturnType<typeof vi.fn> };

describe('the device buffer ledger', () => {
  it('counts kept gpu-buffer tensors by shape and type, once each, until disposed; CPU tensors are not its business', () => {
    const before = deviceBufferUsage();
    resetDeviceBufferPeak();
    const a = fake('gpu-buffer', [2, 3]);
    const b = fake('gpu-buffer', [4], 'float16');
    const host = fake('cpu', [1000]);
    trackDeviceOutputs({ a, b, host });
    trackDeviceOutputs({ again: a });
    expect(deviceBufferUsage().bytes - before.bytes).toBe(2 * 3 * 4 + 4 * 2);
    expect(deviceBufferUsage().tensors - before.tensors).toBe(2);
    disposeTensor(a);
    disposeTensor(host);
    expect(a.dispose).toHaveBeenCalledOnce();
    expect(host.dispose).not.toHaveBeenCalled();
    expect(deviceBufferUsage().bytes - before.bytes).toBe(8);
    expect(deviceBufferUsage().peakBytes - before.bytes).toBe(32);
    disposeTensor(b);
    expect(deviceBufferUsage().bytes).toBe(before.bytes);
    expect(tensorBytes({ dims: [3, 5], type: 'int64' })).toBe(120);
  });

  it(`counts a parameter store's weights and a generation's KV cache on the device, and frees them (${TEST_DEVICE_NAME})`, async () => {
    const device = await testDevice();
    const config = tinyConfig();
    const host = randomWeights(config);
    const start = deviceBufferUsage().bytes;
    const store = await ParameterStore.create({ config, weights: host.weights, device });
    const params = [...host.weights.values()].reduce((n, t) => n + t.data.length, 0);
    const withStore = deviceBufferUsage().bytes;
    // On the CPU nothing stays on a device; on WebGPU at least the flat parameters do.
    if (device.keepsStateOnDevice) expect(withStore - start).toBeGreaterThanOrEqual(params * 4);
    else expect(withStore).toBe(start);
    const gen = await Generator.create({ config, weights: store, device, maxLength: 32 });
    try {
      resetDeviceBufferPeak();
      const rows = 3 * 2;
      const { stats } = await gen.generate({ promptIds: [[1, 2], [3], [4, 5, 6]], samplesPerPrompt: 2, maxNewTokens: 6, eosTokenIds: [], seed: 1 });
      // Keys and values of every layer: [rows × KV heads, cache length, head size] in float32.
      const cache = 2 * config.numLayers * rows * config.numKvHeads * stats.cacheLength * config.headDim * 4;
      if (device.keepsStateOnDevice) expect(deviceBufferUsage().peakBytes - withStore).toBeGreaterThanOrEqual(cache);
      expect(deviceBufferUsage().bytes).toBe(withStore);
    } finally {
      await gen.release();
      await store.release();
    }
    expect(deviceBufferUsage().bytes).toBe(start);
  });
});
