// The engine host: the calling side of the engine worker. It starts the worker, sends typed
// calls, routes progress events and results back to their callers, forwards cancellation, and
// turns a worker that dies into errors for every call still waiting on it.
//
// Nothing here loads onnxruntime: the command types come from the command table as types only.
// The worker serves the app's table (main/worker-commands.ts: the engine's commands and the app's
// `run`); a host is typed by the table its caller uses, the engine's own by default, so the
// engine never imports the layers above it.
import { Worker } from 'node:worker_threads';
import type { EngineCommands } from './commands/index.ts';
import { closeGate, closeGateSync, createGateBuffer } from './native-gate.ts';
import {
  EngineError,
  type HostMessage,
  type ParamsOf,
  type CommandTable,
  type ProgressOf,
  type ResultOf,
  type WorkerMessage,
  deserializeError,
} from './protocol.ts';


export interface CallOptions<P> {
  onProgress?: (data: P) => void;
  /** Aborting cancels the call: the worker stops at its next check and the call rejects with CANCELLED. */
  signal?: AbortSignal;
}

export interface EngineHostOptions {
  /** onnxruntime intra-op threads in the worker (default: every core, or AUTODIDACT_THREADS). */
  threads?: number;
  /** Extra environment for the worker (it otherwise sees this process's environment). */
  env?: Record<string, string>;
  /** Where the worker's console output goes; default this process's stderr, so stdout stays clean for results. */
  log?: NodeJS.WritableStream;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  onProgress?: (data: unknown) => void;
  detach(): void;
}

/**
 * The worker's entry, main/worker.ts: from the sources through a bootstrap that registers tsx in
 * the worker; built, the bundle beside this one (scripts/build.ts puts both in out/main/).
 */
function workerEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../worker-tsx.js', here) : new URL('./worker.js', here);
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export class EngineHost<C extends CommandTable = EngineCommands> {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exitCode: number | null = null;
  private lastError: Error | null = null;
  /** Set by terminate(): errors the worker reports from then on are superseded by the exit. */
  private terminating = false;
  private readonly exited: Promise<number>;
  /**
   * If this process exits while the worker is inside a native call, the process aborts (see
   * native-gate.ts); so on exit, block until the current run returns, with the gate closed.
   */
  private readonly onProcessExit = () => closeGateSync(this.gate);

  private constructor(
    private readonly worker: Worker,
    private readonly gate: SharedArrayBuffer,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.on('message', (m: WorkerMessage) => this.receive(m));
    worker.on('error', (e) => {
      this.lastError = e;
    });
    worker.once('exit', (code) => this.onExit(code));
    process.on('exit', this.onProcessExit);
  }

  /** Start a worker and wait until it has loaded its modules. */
  static async start<C extends CommandTable = EngineCommands>(options: EngineHostOptions = {}): Promise<EngineHost<C>> {
    const env: Record<string, string | undefined> = { ...process.env, ...options.env };
    if (options.threads) env.AUTODIDACT_THREADS = String(options.threads);
    const gate = createGateBuffer();
    const worker = new Worker(workerEntry(), { env: definedOnly(env), stdout: true, stderr: true, workerData: { gate } });
    const log = options.log ?? process.stderr;
    worker.stdout.pipe(log, { end: false });
    worker.stderr.pipe(log, { end: false });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: WorkerMessage) => {
        if (m.type !== 'ready') return;
        cleanup();
        resolve();
      };
      const onError = (e: Error) => {
        cleanup();
        reject(new EngineError(`the engine worker failed to start: ${e.message}`, 'WORKER_EXITED'));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new EngineError(`the engine worker exited with code ${code} while starting`, 'WORKER_EXITED'));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
    return new EngineHost<C>(worker, gate);
  }

  /** Whether the worker is still running. */
  get alive(): boolean {
    return this.exitCode === null;
  }

  /** The worker's exit code, or null while it runs. */
  get exitedWith(): number | null {
    return this.exitCode;
  }

  /** Calls sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Run one engine command in the worker. */
  call<K extends keyof C & string>(command: K, params: ParamsOf<C, K>, options: CallOptions<ProgressOf<C, K>> = {}): Promise<ResultOf<C, K>> {
    const { signal, onProgress } = options;
    if (!this.alive) return Promise.reject(new EngineError(`the engine worker has exited (code ${this.exitCode})`, 'WORKER_EXITED'));
    if (signal?.aborted) return Promise.reject(new EngineError('the call was cancelled', 'CANCELLED'));
    const id = this.nextId++;
    return new Promise<ResultOf<C, K>>((resolve, reject) => {
      const onAbort = () => this.send({ type: 'cancel', id });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        command,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: onProgress as ((d: unknown) => void) | undefined,
        detach: () => signal?.removeEventListener('abort', onAbort),
      });
      this.send({ type: 'call', id, command, params });
    });
  }

  /**
   * Stop the worker gracefully: running calls are cancelled, sessions released, then the thread
   * exits. Falls back to terminate() after `timeoutMs` (a single session run cannot be interrupted).
   */
  async close(timeoutMs = 30_000): Promise<number> {
    if (!this.alive) return this.exitCode ?? 0;
    this.send({ type: 'shutdown' });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') return this.terminate();
    return outcome;
  }

  /**
   * Stop the worker without its cooperation: as soon as the session run in progress (if any)
   * returns, before it can start another. Running calls reject with WORKER_EXITED.
   */
  async terminate(): Promise<number> {
    if (!this.alive) return this.exitCode ?? 1;
    this.terminating = true;
    await closeGate(this.gate);
    await this.worker.terminate();
    return this.exited;
  }

  private send(message: HostMessage): void {
    if (this.alive) this.worker.postMessage(message);
  }

  private receive(m: WorkerMessage): void {
    if (m.type === 'ready') return;
    const p = this.pending.get(m.id);
    if (!p) return; // an answer to a call whose worker-side work outlived its caller
    if (m.type === 'progress') {
      try {
        p.onProgress?.(m.data);
      } catch (e) {
        // A throwing progress handler must not leave the call hanging; report it as the outcome.
        this.settle(m.id);
        p.reject(e as Error);
        this.send({ type: 'cancel', id: m.id });
      }
      return;
    }
    // Once terminate() has closed the gate, a call may fail inside the worker with "the engine
    // is stopping"; leave it to onExit, so every pending call fails the same documented way.
    if (m.type === 'error' && this.terminating) return;
    this.settle(m.id);
    if (m.type === 'result') p.resolve(m.result);
    else p.reject(deserializeError(m.error));
  }

  private settle(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.detach();
  }

  private onExit(code: number): void {
    this.exitCode = code;
    process.off('exit', this.onProcessExit);
    const why = this.lastError ? `: ${this.lastError.message}` : '';
    for (const [id, p] of [...this.pending]) {
      this.settle(id);
      p.reject(new EngineError(`the engine worker exited (code ${code}) before "${p.command}" finished${why}`, 'WORKER_EXITED'));
    }
  }
}

/** An engine whose worker is replaced when it has exited; see restartingEngine. */
export interface RestartingEngine<C extends CommandTable = EngineCommands> {
  call: EngineHost<C>['call'];
  /** The worker now (starting one if the last has exited). */
  current(): Promise<EngineHost<C>>;
  /** The latest worker, as it is (for closing it: never starts one). */
  latest(): Promise<EngineHost<C>>;
}

/**
 * An engine that outlives its worker: a worker that exited (an uncaught error inside the engine,
 * a native failure the thread did not survive, a terminate()) is replaced by a fresh one at the
 * next call. The calls it was running failed with WORKER_EXITED, so a run in it ends 'failed'
 * with that reason, and the app goes on with a working engine instead of one that refuses every
 * call until it is restarted.
 */
export function restartingEngine<C extends CommandTable = EngineCommands>(
  start: () => Promise<EngineHost<C>>,
  onRestart: (exitCode: number | null) => void = () => {},
): RestartingEngine<C> {
  let host = start();
  // A worker that never started is not retried: its error is the answer (e.g. no onnxruntime).
  const current = (): Promise<EngineHost<C>> => {
    const seen = host;
    return seen.then((h) => {
      if (h.alive) return h;
      // Concurrent calls that found the same dead worker start one new worker between them.
      if (seen === host) {
        onRestart(h.exitedWith);
        host = start();
      }
      return host;
    });
  };
  return {
    call: ((command, params, options) => current().then((h) => h.call(command, params, options))) as EngineHost<C>['call'],
    current,
    latest: () => host,
  };
}
