// The device the engine tests run on: AUTODIDACT_TEST_DEVICE=webgpu runs the same suite on the
// WebGPU provider (lavapipe in CI). CPU tests compute in float64 where an op allows, so their
// checks can be tight; WebGPU has no float64 and is checked in float32.
import { type Device, resolveDevice } from '../../main/engine/runtime/devices.ts';
import type { DType } from '../../main/engine/graph/dtype.ts';

export const TEST_DEVICE_NAME = (process.env.AUTODIDACT_TEST_DEVICE ?? 'cpu') as 'cpu' | 'webgpu';

let device: Promise<Device> | null = null;
export function testDevice(): Promise<Device> {
  device ??= resolveDevice(TEST_DEVICE_NAME);
  return device;
}

/** The float type gradient checks compute in on the test device. */
export const CHECK_DTYPE: DType = TEST_DEVICE_NAME === 'cpu' ? 'float64' : 'float32';
