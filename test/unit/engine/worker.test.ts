// The engine host and its worker: the calling thread stays responsive while the engine computes,
// calls can be cancelled, engine errors reach the caller with their message and code, and the
// worker shuts down cleanly.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selftest } from '../../../main/engine/commands/system.ts';
import { EngineHost, restartingEngine } from '../../../main/engine/host.ts';
import { EngineError } from '../../../main/engine/protocol.ts';

/**
 * How many times a `periodMs` periodic timer fires while `work` runs, against how many it should.
 * The timer is scheduled on an absolute grid (t0 + k·period) rather than with setInterval, whose
 * ticks drift by each wake-up's latency: on a loaded machine that drift alone costs ~10% and
 * would hide what is measured here, a thread too blocked to run its timers. A slot the thread
 * sleeps through is skipped, not made up.
 */
async function timerRate(periodMs: number, work: () => Promise<unknown>): Promise<{ fired: number; expected: number; ms: number }> {
  let fired = 0;
  const t0 = performance.now();
  let next = t0 + periodMs;
  let timer: NodeJS.Timeout;
  const tick = () => {
    fired++;
    // This tick served slot `next` (timers may fire a little early); move past every slot gone by.
    const now = performance.now();
    next += periodMs;
    while (next <= now) next += periodMs;
    timer = setTimeout(tick, next - now);
  };
  timer = setTimeout(tick, periodMs);
  try {
    await work();
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  return { fired, expected: Math.floor(ms / periodMs), ms };
}

async function rejection(p: Promise<unknown>): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    return e as EngineError;
  }
  throw new Error('expected the call to fail');
}

describe('engine host', () => {
  let host: EngineHost;
  beforeAll(async () => {
    host = await EngineHost.start();
  });
  afterAll(async () => {
    await host?.close();
  });

  it('answers a ping from the worker thread', async () => {
    const r = await host.call('ping', { echo: 'hello' });
    expect(r.pong).toBe(true);
    expect(r.echo).toBe('hello');
    expect(r.threadId).toBeGreaterThan(0); // 0 is the main thread
  });

  it('lists the devices, with the CPU always available', async () => {
    const r = await host.call('devices', {});
    expect(r.devices.map((d) => d.name)).toEqual(['cpu', 'webgpu', 'cuda']);
    expect(r.devices[0].available).toBe(true);
    for (const d of r.devices) if (!d.available) expect(d.reason).toMatch(/\w/);
    expect(['cpu', 'webgpu', 'cuda']).toContain(r.auto);
  });

  it('keeps the calling thread responsive during a multi-second computation', async () => {
    let progressEvents = 0;
    // Each run blocks its thread for longer than the timer's period (see the control below).
    const rate = await timerRate(20, () =>
      host.call('selftest', { size: 512, depth: 64, seconds: 3 }, { onProgress: () => progressEvents++ }),
    );
    expect(rate.ms).toBeGreaterThan(2500);
    expect(progressEvents).toBeGreaterThan(0);
    expect(rate.fired).toBeGreaterThanOrEqual(0.9 * rate.expected);
  });

  it('(control) the same computation on the calling thread starves its timer', async () => {
    // Shows the responsiveness check can fail: session.run() blocks the thread that calls it.
    const signal = new AbortController().signal;
    const rate = await timerRate(20, () => selftest({ device: 'cpu', size: 512, depth: 64, seconds: 1.5 }, { signal, progress: () => {} }));
    expect(rate.fired).toBeLessThan(0.5 * rate.expected);
  });

  it('cancels a running call; the worker stays usable', async () => {
    const controller = new AbortController();
    let progress = 0;
    const t0 = performance.now();
    const call = host.call('selftest', { size: 256, seconds: 60 }, {
      signal: controller.signal,
      onProgress: () => {
        if (++progress === 3) controller.abort();
      },
    });
    const e = await rejection(call);
    expect(e).toBeInstanceOf(EngineError);
    expect(e.code).toBe('CANCELLED');
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(host.inFlight).toBe(0);
    expect((await host.call('ping', {})).pong).toBe(true);
  });

  it('rejects a call whose signal is already aborted without running it', async () => {
    const e = await rejection(host.call('selftest', { iterations: 1 }, { signal: AbortSignal.abort() }));
    expect(e.code).toBe('CANCELLED');
  });

  it('reports invalid parameters with the parameter name', async () => {
    const e = await rejection(host.call('selftest', { size: 3 }));
    expect(e.code).toBe('BAD_PARAMS');
    expect(e.message).toMatch(/^selftest: size must be /);
  });

  it('reports an unknown command', async () => {
    const e = await rejection(host.call('no-such-command' as 'ping', {}));
    expect(e.code).toBe('UNKNOWN_COMMAND');
    expect(e.message).toMatch(/no-such-command/);
  });

  it('passes an error thrown inside the engine to the caller with its code, message and the worker stack', async () => {
    const missing = '/nonexistent/autodidact-model';
    const e = await rejection(host.call('logprobs', { model: missing, inputs: ['hello'] }));
    expect(e).toBeInstanceOf(EngineError);
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toBe(`model folder not found: ${missing}`);
    expect(e.stack).toContain('in the engine worker');
    expect(e.stack).toContain('logprobs.ts');
  });

  it('reports an unavailable device as DEVICE_UNAVAILABLE', async () => {
    const { devices } = await host.call('devices', {});
    const missing = devices.find((d) => !d.available);
    if (!missing) return; // every device answers on this machine: nothing fails here
    const e = await rejection(host.call('selftest', { device: missing.name, iterations: 1 }));
    expect(e.code).toBe('DEVICE_UNAVAILABLE');
    expect(e.message).toContain(`"${missing.name}" is not available`);
  });
});

describe('engine host lifecycle', () => {
  it('closes cleanly, cancelling a running call, and refuses calls afterwards', async () => {
    const host = await EngineHost.start();
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const call = host.call('selftest', { size: 256, seconds: 60 }, { onProgress: () => started() });
    await running;
    const outcome = rejection(call);
    const code = await host.close();
    expect(code).toBe(0);
    expect(host.alive).toBe(false);
    const e = await outcome;
    expect(e.code).toBe('WORKER_EXITED');
    const after = await rejection(host.call('ping', {}));
    expect(after.code).toBe('WORKER_EXITED');
  });

  it('terminates a worker inside a session run without aborting the process, and fails its pending calls', async () => {
    const host = await EngineHost.start();
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    // Long runs, so terminate() is called while the next one is in progress: terminating the
    // thread there would abort this whole process (see native-gate.ts).
    const call = host.call('selftest', { size: 512, depth: 64, seconds: 60 }, { onProgress: () => started() });
    await running;
    const outcome = rejection(call);
    await host.terminate();
    expect(host.alive).toBe(false);
    const e = await outcome;
    expect(e.code).toBe('WORKER_EXITED');
    expect(e.message).toMatch(/before "selftest" finished/);
  });

  it('lets the process exit while the worker is inside a session run', async () => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../fixtures/exit-during-run.ts', import.meta.url))], {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(child.signal, child.stderr).toBeNull();
    expect(child.status, child.stderr).toBe(3);
  });

  it('replaces a worker that exited at the next call, after failing the call it was running', async () => {
    const restarts: (number | null)[] = [];
    const engine = restartingEngine(() => EngineHost.start(), (code) => restarts.push(code));
    const first = await engine.current();
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const call = engine.call('selftest', { size: 256, seconds: 60 }, { onProgress: () => started() });
    await running;
    const outcome = rejection(call);
    await first.terminate();
    expect((await outcome).code).toBe('WORKER_EXITED');
    // Two calls at once after the exit: one new worker answers both.
    const [a, b] = await Promise.all([engine.call('ping', { echo: 'a' }), engine.call('ping', { echo: 'b' })]);
    expect([a.echo, b.echo]).toEqual(['a', 'b']);
    expect(a.threadId).toBe(b.threadId);
    expect(restarts).toEqual([first.exitedWith]);
    const second = await engine.current();
    expect(second).not.toBe(first);
    expect(await second.close()).toBe(0);
  });
});
