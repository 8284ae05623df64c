// The sandbox pool: where the app runs untrusted programs (model-written code and tests).
//
// Each language has its own workers (worker.ts), started when first needed, at most `size`
// of them (default: the machine's cores, at most 2). A program waits for a free worker of its
// language, runs with a wall-clock limit, and its worker is
//   - interrupted at the deadline (Python: SIGINT through Pyodide's interrupt buffer; QuickJS:
//     its interrupt handler) and the program reported `timeout`;
//   - terminated and replaced when it has not answered `graceMs` after the deadline (a program
//     that swallows the interrupt, or a worker stuck outside the interpreter), the program
//     reported `timeout`;
//   - replaced when it dies (V8's heap limit from `resourceLimits`, a crash), the program
//     reported `error`, or when it asks to be (its interpreter failed, its memory grew).
// Nothing here runs the program's text in this process: no eval, no vm, no child process.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RunMessage, SandboxLanguage, SandboxResult, WorkerReply, WorkerSetup } from './protocol.ts';

export interface SandboxOptions {
  /** Workers per language (default: the machine's cores, at most 2). */
  size?: number;
  /** A program's default wall-clock limit (ms). */
  timeoutMs?: number;
  /** The interpreter's memory limit per worker (MiB). */
  memoryMb?: number;
  /** How long after the deadline a worker may take to answer before it is terminated (ms). */
  graceMs?: number;
  /** How long a worker may take to load its interpreter (ms; Pyodide takes seconds on a busy machine). */
  startTimeoutMs?: number;
}

export const SANDBOX_DEFAULTS = { timeoutMs: 2_000, memoryMb: 256, graceMs: 500, startTimeoutMs: 120_000 };

/** Counts since the pool started, for metrics and the bench. */
export interface SandboxStats {
  runs: number;
  ok: number;
  errors: number;
  timeouts: number;
  /** Workers terminated or lost and replaced. */
  replaced: number;
  started: number;
}

interface Job {
  code: string;
  timeoutMs: number;
  resolve(result: SandboxResult): void;
}

function workerEntry(): URL {
  const here = import.meta.url;
  // The built app: the bundler writes the sandbox worker next to the main bundle.
  if (!here.endsWith('.ts')) return new URL('./sandbox-worker.js', here);
  return new URL('./worker-tsx.js', here);
}

class SandboxWorker {
  readonly ready: Promise<void>;
  private worker: Worker;
  private readonly interrupt = new SharedArrayBuffer(4);
  private current: { id: number; job: Job; started: number; soft?: NodeJS.Timeout; hard?: NodeJS.Timeout } | null = null;
  private nextId = 1;
  dead = false;
  isReady = false;

  constructor(
    readonly language: SandboxLanguage,
    private readonly options: Required<SandboxOptions>,
    private readonly onFree: (w: SandboxWorker) => void,
    private readonly onGone: (w: SandboxWorker, replace: boolean) => void,
    private readonly count: (result: SandboxResult) => void,
  ) {
    const setup: WorkerSetup = { language, memoryBytes: options.memoryMb * 2 ** 20, interrupt: this.interrupt };
    this.worker = new Worker(workerEntry(), {
      workerData: setup,
      // The V8 heap: Pyodide's and QuickJS's own JavaScript is small; their WebAssembly memory
      // is not counted here and is capped inside the worker (lockdown.ts capWasmMemory).
      resourceLimits: { maxOldGenerationSizeMb: 192, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
      env: {},
      stdout: true,
      stderr: true,
    });
    // A sandboxed program's writes come back in its result; the worker's own streams are drained.
    // An idle pool does not keep the process alive (a run's end, the command line's exit); while
    // a program runs or a worker starts, its timers do.
    this.worker.unref();
    this.worker.stdout.resume();
    this.worker.stderr.resume();
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the ${language} sandbox did not start within ${options.startTimeoutMs} ms`));
        void this.kill(false);
      }, options.startTimeoutMs);
      this.worker.on('message', (message: WorkerReply) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          this.isReady = true;
          resolve();
        } else if (message.type === 'init-failed') {
          clearTimeout(timer);
          reject(new Error(`the ${language} sandbox failed to start: ${message.error}`));
          void this.kill(false);
        } else this.answered(message.id, message.result, message.recycle);
      });
      this.worker.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`the ${language} sandbox failed to start: ${e.message}`));
        this.lost(`the sandbox worker died: ${e.message}`);
      });
      this.worker.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the ${language} sandbox exited with code ${code} while starting`));
        this.lost(`the sandbox worker exited with code ${code}`);
      });
    });
    this.ready.catch(() => {});
  }

  get busy(): boolean {
    return this.current !== null;
  }

  run(job: Job): void {
    const id = this.nextId++;
    this.current = { id, job, started: performance.now() };
    const current = this.current;
    current.soft = setTimeout(() => {
      if (this.language === 'python') Atomics.store(new Int32Array(this.interrupt), 0, 2);
    }, job.timeoutMs);
    current.hard = setTimeout(() => {
      this.finish({ status: 'timeout', output: '', error: `the program ran past its ${job.timeoutMs} ms limit and was stopped`, ms: performance.now() - current.started });
      void this.kill(true);
    }, job.timeoutMs + this.options.graceMs);
    const message: RunMessage = { id, code: job.code, timeoutMs: job.timeoutMs };
    this.worker.postMessage(message);
  }

  private answered(id: number, result: SandboxResult, recycle: boolean): void {
    if (!this.current || this.current.id !== id) return;
    // The worker says `timeout` only for its interrupt (a program that failed for another reason
    // just as its time ran out keeps its own error).
    this.finish(
      result.status === 'timeout'
        ? { ...result, error: `the program ran past its ${this.current.job.timeoutMs} ms limit (${result.error ?? 'interrupted'})` }
        : result,
    );
    if (recycle) void this.kill(true);
    else this.onFree(this);
  }

  private finish(result: SandboxResult): void {
    const current = this.current;
    if (!current) return;
    clearTimeout(current.soft);
    clearTimeout(current.hard);
    this.current = null;
    this.count(result);
    current.job.resolve(result);
  }

  /** The worker died under a program (V8's heap limit, a crash): the program failed, the worker goes. */
  private lost(why: string): void {
    if (this.dead) return;
    if (this.current) this.finish({ status: 'error', output: '', error: why, ms: performance.now() - this.current.started });
    this.dead = true;
    this.onGone(this, true);
  }

  async kill(replace: boolean): Promise<void> {
    if (this.dead) return;
    this.dead = true;
    this.onGone(this, replace);
    await this.worker.terminate();
  }
}

export class SandboxPool {
  private readonly options: Required<SandboxOptions>;
  private readonly workers = new Map<SandboxLanguage, SandboxWorker[]>();
  private readonly queues = new Map<SandboxLanguage, Job[]>();
  private closed = false;
  private readonly counts: SandboxStats = { runs: 0, ok: 0, errors: 0, timeouts: 0, replaced: 0, started: 0 };

  constructor(options: SandboxOptions = {}) {
    const size = options.size ?? Math.max(1, Math.min(2, os.availableParallelism()));
    this.options = { ...SANDBOX_DEFAULTS, ...options, size };
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`sandbox size must be a whole number of at least 1 (got ${size})`);
  }

  stats(): SandboxStats {
    return { ...this.counts };
  }

  /** Run one program; never rejects for anything the program does (that is the result's status). */
  run(language: SandboxLanguage, code: string, options: { timeoutMs?: number } = {}): Promise<SandboxResult> {
    if (this.closed) return Promise.reject(new Error('the sandbox pool is closed'));
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    return new Promise<SandboxResult>((resolve) => {
      this.queue(language).push({ code, timeoutMs, resolve });
      this.dispatch(language);
    });
  }

  /** Start the workers of a language now (each loads its interpreter: seconds for Python). */
  async warm(language: SandboxLanguage): Promise<void> {
    const list = this.list(language);
    while (list.length < this.options.size) this.spawn(language);
    await Promise.all(list.map((w) => w.ready));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const [, jobs] of this.queues) {
      for (const job of jobs.splice(0)) job.resolve({ status: 'error', output: '', error: 'the sandbox pool closed', ms: 0 });
    }
    const all = [...this.workers.values()].flat();
    this.workers.clear();
    await Promise.all(all.map((w) => w.kill(false)));
  }

  private queue(language: SandboxLanguage): Job[] {
    let q = this.queues.get(language);
    if (!q) this.queues.set(language, (q = []));
    return q;
  }

  private list(language: SandboxLanguage): SandboxWorker[] {
    let l = this.workers.get(language);
    if (!l) this.workers.set(language, (l = []));
    return l;
  }

  private spawn(language: SandboxLanguage): SandboxWorker {
    this.counts.started++;
    const worker = new SandboxWorker(
      language,
      this.options,
      (w) => this.dispatch(w.language),
      (w, replace) => this.gone(w, replace),
      (result) => this.count(result),
    );
    this.list(language).push(worker);
    worker.ready.then(
      () => this.dispatch(language),
      (e: Error) => {
        // A worker that cannot start fails what waits, rather than retrying for ever.
        for (const job of this.queue(language).splice(0)) job.resolve({ status: 'error', output: '', error: e.message, ms: 0 });
      },
    );
    return worker;
  }

  private gone(worker: SandboxWorker, replace: boolean): void {
    const list = this.list(worker.language);
    const at = list.indexOf(worker);
    if (at >= 0) list.splice(at, 1);
    if (replace && !this.closed) {
      this.counts.replaced++;
      this.dispatch(worker.language);
    }
  }

  private count(result: SandboxResult): void {
    this.counts.runs++;
    if (result.status === 'ok') this.counts.ok++;
    else if (result.status === 'timeout') this.counts.timeouts++;
    else this.counts.errors++;
  }

  private dispatch(language: SandboxLanguage): void {
    if (this.closed) return;
    const queue = this.queue(language);
    const list = this.list(language);
    while (queue.length > 0) {
      const free = list.find((w) => !w.dead && !w.busy && w.isReady);
      if (!free) break;
      free.run(queue.shift()!);
    }
    // Start workers for what still waits, up to the pool's size.
    let starting = list.filter((w) => !w.isReady).length;
    while (queue.length > starting && list.length < this.options.size) {
      this.spawn(language);
      starting++;
    }
  }
}
