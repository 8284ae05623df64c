// `npm run test:webgpu`: the engine tests again on the WebGPU provider (AUTODIDACT_TEST_DEVICE=webgpu),
// when this machine has a WebGPU adapter. A fresh machine without a Vulkan driver (Linux) has
// none: every engine test would fail at its first session, so they are skipped with a notice
// instead, and the README's `npm test` passes. CI installs lavapipe and sets
// AUTODIDACT_REQUIRE_WEBGPU=1 (.ci/run), which turns a missing adapter into a failure, so the
// WebGPU tests can never be skipped there unnoticed. Extra arguments go to vitest.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type WebgpuTestPlan = { action: 'run' } | { action: 'skip' | 'fail'; message: string };

/** What to do, given why WebGPU cannot run here (null: it can) and whether it is required. */
export function planWebgpuTests(unavailable: string | null, required: boolean): WebgpuTestPlan {
  if (unavailable === null) return { action: 'run' };
  // onnxruntime prefixes its reason with the source line of a failed check; the reason is what follows.
  const why = `no WebGPU adapter on this machine (${unavailable.replace(/^\S+ .*? was false\. /, '')})`;
  if (required) {
    return { action: 'fail', message: `test:webgpu: ${why}, and AUTODIDACT_REQUIRE_WEBGPU=1 requires the WebGPU engine tests. Install a Vulkan driver (libvulkan1 and mesa-vulkan-drivers 25 or newer on Debian, as .ci/run does).` };
  }
  return {
    action: 'skip',
    message:
      `test:webgpu: SKIPPED the WebGPU engine tests: ${why}. ` +
      'They run on any machine with a Vulkan driver (libvulkan1 and mesa-vulkan-drivers 25 or newer on Debian, or your GPU vendor\'s); set AUTODIDACT_REQUIRE_WEBGPU=1 to make a missing adapter an error (CI does).',
  };
}

async function main(): Promise<number> {
  const { probeDevice } = await import('../main/engine/runtime/devices.ts');
  const plan = planWebgpuTests(await probeDevice('webgpu'), process.env.AUTODIDACT_REQUIRE_WEBGPU === '1');
  if (plan.action !== 'run') {
    console.error(plan.message);
    return plan.action === 'skip' ? 0 : 1;
  }
  const vitest = createRequire(import.meta.url).resolve('vitest/vitest.mjs');
  const r = spawnSync(process.execPath, [vitest, 'run', 'test/unit/engine', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, AUTODIDACT_TEST_DEVICE: 'webgpu' },
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  return r.status ?? 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
