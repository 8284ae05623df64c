// What the sandbox pool (pool.ts, the app's side) and a sandbox worker (worker.ts) say to each
// other, and what a caller gets back for one program.

export type SandboxLanguage = 'python' | 'javascript';

export const SANDBOX_LANGUAGES: readonly SandboxLanguage[] = ['python', 'javascript'];

/**
 * One program's outcome. `ok`: it ran to its end. `error`: it raised, ran out of memory, or its
 * worker died (the worker is then replaced). `timeout`: it ran past its wall-clock limit and was
 * interrupted (or its worker terminated and replaced).
 */
export interface SandboxResult {
  status: 'ok' | 'error' | 'timeout';
  /** What the program printed (stdout and stderr interleaved), at most `MAX_OUTPUT_CHARS`. */
  output: string;
  /** The last line of the error (`ZeroDivisionError: division by zero`), for `error` and `timeout`. */
  error?: string;
  /** Wall-clock milliseconds from the worker's start of the program to its result. */
  ms: number;
}

/** Output beyond this is cut (a program printing in a loop cannot fill the host's memory). */
export const MAX_OUTPUT_CHARS = 16_384;

export interface WorkerSetup {
  language: SandboxLanguage;
  /** The interpreter's memory: QuickJS's allocator limit, or the cap on Pyodide's WebAssembly memory. */
  memoryBytes: number;
  /** Int32 cell the pool writes 2 (SIGINT) into at a Python program's deadline (Pyodide's interrupt buffer). */
  interrupt: SharedArrayBuffer;
}

export interface RunMessage {
  id: number;
  code: string;
  timeoutMs: number;
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'init-failed'; error: string }
  | {
      type: 'result';
      id: number;
      result: SandboxResult;
      /** The worker asks to be replaced (its interpreter failed, or its memory grew past what it returns). */
      recycle: boolean;
    };
