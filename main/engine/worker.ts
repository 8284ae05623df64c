// The engine worker: a worker_threads thread that owns every onnxruntime session.
//
// `session.run()` blocks the thread that calls it, so model work never runs on the thread that
// serves the window or the command line. Calls may overlap (a `ping` is answered between two
// runs of a long training step); the session queue in runtime/session.ts still lets only one
// session compute at a time. Cancellation is cooperative: a cancel message aborts the call's
// AbortSignal, which commands check between runs.
//
// This module serves a command table; it does not choose one. The worker's entry (main/worker.ts)
// composes the engine's commands with the app's (the `run` command, main/runs/run-command.ts), so
// the engine never imports the layers above it.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { PHRASED } from '../issues.ts';
import { closeGate, gated } from './native-gate.ts';
import { type CommandTable, EngineError, type HostMessage, type WorkerMessage, serializeError } from './protocol.ts';

/**
 * Serves `table` on this worker thread until the host asks it to shut down; `dispose` releases
 * what the commands hold between calls (cached models and sessions) before the thread exits.
 */
export function serveCommands(table: CommandTable, dispose: () => Promise<void>): void {
  if (!parentPort || !(workerData?.gate instanceof SharedArrayBuffer)) {
    throw new Error('main/worker.ts must run as a worker thread; start it with EngineHost (main/engine/host.ts)');
  }
  const port = parentPort;
  const gate: SharedArrayBuffer = workerData.gate;

  /**
   * Route every onnxruntime session creation, run and release in this thread through the native
   * gate (see native-gate.ts: terminating the thread inside one of them aborts the process).
   * Patching the shared class covers every caller: compiled graphs, the trainer, the generator.
   */
  function installNativeGate(): void {
    const cell = new Int32Array(gate);
    // The public typings describe a factory; at run time it is a class with a prototype.
    const S = ort.InferenceSession as unknown as { prototype: ort.InferenceSession; create: ort.InferenceSessionFactory['create'] };
    const { run, release } = S.prototype;
    const create = S.create;
    S.prototype.run = function (this: ort.InferenceSession, ...args: unknown[]) {
      return gated(cell, () => (run as (...a: unknown[]) => Promise<ort.InferenceSession.ReturnType>).apply(this, args));
    } as typeof run;
    S.prototype.release = function (this: ort.InferenceSession) {
      return gated(cell, () => release.call(this));
    };
    S.create = function (...args: unknown[]) {
      return gated(cell, () => (create as (...a: unknown[]) => Promise<ort.InferenceSession>).apply(S, args));
    } as typeof create;
  }
  installNativeGate();

  const running = new Map<number, AbortController>();
  let shuttingDown = false;

  function post(message: WorkerMessage): void {
    port.postMessage(message);
  }

  async function call(id: number, command: string, rawParams: unknown): Promise<void> {
    const controller = new AbortController();
    running.set(id, controller);
    try {
      if (shuttingDown) throw new EngineError('the engine is shutting down', 'WORKER_EXITED');
      const spec = Object.hasOwn(table, command) ? table[command] : undefined;
      if (!spec) throw new EngineError(`unknown engine command "${command}"; known: ${Object.keys(table).join(', ')}`, 'UNKNOWN_COMMAND');
      const parsed = spec.params.safeParse(rawParams ?? {}, PHRASED);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new EngineError(`${command}: ${issue.message}`, 'BAD_PARAMS', { path: issue.path.map(String) });
      }
      const result = await spec.run(parsed.data, {
        signal: controller.signal,
        progress: (data: unknown) => {
          if (!controller.signal.aborted) post({ type: 'progress', id, data });
        },
      });
      // A command that finished its last run just as the cancel arrived still counts as cancelled:
      // the caller has been told the call is being cancelled and expects no result.
      controller.signal.throwIfAborted();
      post({ type: 'result', id, result });
    } catch (e) {
      post({ type: 'error', id, error: serializeError(e, controller.signal.aborted) });
    } finally {
      running.delete(id);
    }
  }

  async function shutdown(): Promise<void> {
    shuttingDown = true;
    for (const c of running.values()) c.abort(new EngineError('the engine is shutting down', 'WORKER_EXITED'));
    // Let aborted calls reach their next check and answer before the sessions go away.
    while (running.size > 0) await new Promise((r) => setTimeout(r, 5));
    try {
      await dispose();
    } catch (e) {
      // Still exit: the host is waiting, and the thread's memory goes with it anyway.
      console.error(`engine worker: releasing sessions failed: ${(e as Error).message}`);
    }
    await closeGate(gate);
    port.close();
    // Native handles (onnxruntime thread pools) may keep the loop alive; end this thread now.
    process.exit(0);
  }

  port.on('message', (m: HostMessage) => {
    switch (m.type) {
      case 'call':
        void call(m.id, m.command, m.params);
        break;
      case 'cancel':
        running.get(m.id)?.abort(new EngineError('the call was cancelled', 'CANCELLED'));
        break;
      case 'shutdown':
        void shutdown();
        break;
    }
  });

  post({ type: 'ready' });
}
