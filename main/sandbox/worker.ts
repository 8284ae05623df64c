// A sandbox worker: one interpreter (Python or JavaScript), one program at a time. The pool
// (pool.ts) starts it with worker `resourceLimits`, gives it a deadline per program and
// terminates it when a program outlives that; here the interpreter is loaded, the realm locked
// down (lockdown.ts), and each program run and answered.
import { parentPort, workerData } from 'node:worker_threads';
import { JavaScriptRunner } from './javascript.ts';
import { capWasmMemory, lockDownRealm } from './lockdown.ts';
import type { RunMessage, WorkerReply, WorkerSetup } from './protocol.ts';
import { PythonRunner } from './python.ts';

if (!parentPort) throw new Error('main/sandbox/worker.ts must run as a worker thread; start it with SandboxPool (main/sandbox/pool.ts)');
const port = parentPort;
const setup = workerData as WorkerSetup;

/** Past this the worker asks to be replaced after its program: WebAssembly memory never shrinks. */
const RECYCLE_FRACTION = 0.5;

interface Runner {
  run(code: string, timeoutMs: number): { result: import('./protocol.ts').SandboxResult; recycle: boolean };
  heapBytes(): number;
}

async function start(): Promise<Runner> {
  // Python's heap is capped by refusing WebAssembly memory growth; QuickJS's allocator has its
  // own limit, and its WebAssembly memory gets the same cap with room for QuickJS's own data.
  capWasmMemory(setup.language === 'python' ? setup.memoryBytes : setup.memoryBytes + 64 * 2 ** 20);
  if (setup.language === 'python') {
    const python = await PythonRunner.start(setup.interrupt);
    const cell = new Int32Array(setup.interrupt);
    return {
      run: (code) => {
        Atomics.store(cell, 0, 0);
        return python.run(code);
      },
      heapBytes: () => python.heapBytes(),
    };
  }
  const js = await JavaScriptRunner.start(setup.memoryBytes);
  return { run: (code, timeoutMs) => js.run(code, timeoutMs), heapBytes: () => 0 };
}

function reply(message: WorkerReply): void {
  port.postMessage(message);
}

try {
  const runner = await start();
  lockDownRealm();
  port.on('message', (message: RunMessage) => {
    const { result, recycle } = runner.run(message.code, message.timeoutMs);
    reply({ type: 'result', id: message.id, result, recycle: recycle || runner.heapBytes() > setup.memoryBytes * RECYCLE_FRACTION });
  });
  reply({ type: 'ready' });
} catch (e) {
  reply({ type: 'init-failed', error: e instanceof Error ? e.message : String(e) });
}
