// `npm run test:webgpu` on a machine without a WebGPU adapter: the engine tests are skipped with
// a notice (exit 0), unless AUTODIDACT_REQUIRE_WEBGPU=1 (CI) makes that a failure. The adapter is
// taken away by pointing the Vulkan loader at no driver, as on a machine without one.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { planWebgpuTests } from '../../scripts/test-webgpu.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function testWebgpu(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/test-webgpu.ts')], {
      cwd: ROOT,
      env: { ...process.env, AUTODIDACT_TEST_DEVICE: '', AUTODIDACT_REQUIRE_WEBGPU: '', ...env },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

// No Vulkan driver: the loader reads these (older and newer names) and finds no ICD.
const NO_DRIVER = { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };

describe('npm run test:webgpu without a WebGPU adapter', () => {
  it('plans: run with an adapter; skip with a notice without one; fail when required', () => {
    expect(planWebgpuTests(null, false)).toEqual({ action: 'run' });
    expect(planWebgpuTests(null, true)).toEqual({ action: 'run' });
    const skip = planWebgpuTests('No supported adapters', false);
    expect(skip.action).toBe('skip');
    expect(skip.action !== 'run' && skip.message).toMatch(/SKIPPED the WebGPU engine tests: no WebGPU adapter on this machine \(No supported adapters\)/);
    const fail = planWebgpuTests('No supported adapters', true);
    expect(fail.action).toBe('fail');
    expect(fail.action !== 'run' && fail.message).toMatch(/AUTODIDACT_REQUIRE_WEBGPU=1 requires the WebGPU engine tests/);
  });

  it('skips the engine tests with a notice and exits 0', async () => {
    const r = await testWebgpu(NO_DRIVER);
    expect(r.output).toMatch(/SKIPPED the WebGPU engine tests: no WebGPU adapter/);
    expect(r.output).not.toMatch(/Test Files/); // vitest never started
    expect(r.code, r.output).toBe(0);
  });

  it('fails when AUTODIDACT_REQUIRE_WEBGPU=1 (CI)', async () => {
    const r = await testWebgpu({ ...NO_DRIVER, AUTODIDACT_REQUIRE_WEBGPU: '1' });
    expect(r.output).toMatch(/AUTODIDACT_REQUIRE_WEBGPU=1 requires the WebGPU engine tests/);
    expect(r.code, r.output).toBe(1);
  });
});
