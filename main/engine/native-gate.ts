// A gate between the engine worker's native onnxruntime calls and the worker's termination.
//
// Why: onnxruntime-node's `run()` and `create()` are synchronous native calls. If the worker is
// terminated (worker.terminate(), or the whole process exiting) while one is in progress, the
// native code returns into a dying JavaScript environment, throws a C++ Napi::Error that nothing
// catches, and the *whole process* aborts (SIGABRT, exit code 134). So the worker counts its native
// calls in flight in shared memory, and the host only lets it be terminated at a moment when that
// count is zero, after closing the gate so no new native call can start.
//
// One Int32 cell: the low bits count the native calls in flight; the CLOSED bit, once set, stops
// any new call from starting. The host sets the bit atomically and then waits for the count to
// reach zero; the worker enters with compare-exchange, so a call either started before the bit
// was set (and is waited for) or sees the bit and never starts.
// No onnxruntime import here: the host side must not load the runtime.
import { EngineError } from './protocol.ts';

const CLOSED = 1 << 30;

export function createGateBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

// ---------------------------------------------------------------------------------------------
// Worker side

/** Count one native call in; throws when the host has closed the gate. */
export function enterGate(cell: Int32Array): void {
  for (;;) {
    const n = Atomics.load(cell, 0);
    if (n & CLOSED) throw new EngineError('the engine is stopping', 'WORKER_EXITED');
    if (Atomics.compareExchange(cell, 0, n, n + 1) === n) return;
  }
}

export function leaveGate(cell: Int32Array): void {
  Atomics.sub(cell, 0, 1);
  Atomics.notify(cell, 0);
}

export async function gated<T>(cell: Int32Array, fn: () => Promise<T>): Promise<T> {
  enterGate(cell);
  try {
    return await fn();
  } finally {
    leaveGate(cell);
  }
}

// ---------------------------------------------------------------------------------------------
// Host side

/** Close the gate (no native call starts after this); true when none is in flight any more. */
export function tryCloseGate(buffer: SharedArrayBuffer): boolean {
  const cell = new Int32Array(buffer);
  return (Atomics.or(cell, 0, CLOSED) | CLOSED) === CLOSED;
}

/** Close the gate and wait (without blocking this thread) for the native call in flight, if any. */
export async function closeGate(buffer: SharedArrayBuffer): Promise<void> {
  const cell = new Int32Array(buffer);
  if (tryCloseGate(buffer)) return;
  while (Atomics.load(cell, 0) !== CLOSED) await new Promise((r) => setTimeout(r, 2));
}

/**
 * Close the gate and block this thread until the native call in flight returns. Only for the
 * process's 'exit' handler, where nothing asynchronous runs any more and waiting for the current
 * run is the only way not to abort.
 */
export function closeGateSync(buffer: SharedArrayBuffer): void {
  const cell = new Int32Array(buffer);
  if (tryCloseGate(buffer)) return;
  for (let n = Atomics.load(cell, 0); n !== CLOSED; n = Atomics.load(cell, 0)) Atomics.wait(cell, 0, n, 1000);
}
