// The engine host protocol: the messages that pass between the thread that asks for engine work
// (the Electron main process, `autodidact serve`, the command line) and the engine worker, which
// owns every onnxruntime session.
//
// A call is `{ id, command, params }`; the worker answers with any number of progress events for
// that id and then exactly one result or one error. A cancel message names the id of a running
// call; the worker aborts that call's AbortSignal and the call ends with a CANCELLED error.
//
// This module is imported by both sides and by code that must not load onnxruntime (the
// renderer's contract), so it holds types and plain functions only.
import type { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Commands

/** What a command's implementation receives besides its parameters. */
export interface CommandContext<Progress> {
  /** Aborted when the caller cancels; check it between session runs (a run cannot be interrupted). */
  signal: AbortSignal;
  /** Send a progress event to the caller (structured-cloned; keep it small). */
  progress(data: Progress): void;
}

/**
 * One entry of the worker's command table: a zod schema for the parameters (the worker validates
 * every call at its boundary) and the implementation. The phantom `progress` field only carries
 * the progress type to the host side.
 */
export interface CommandSpec<Schema extends z.ZodType, Result, Progress> {
  params: Schema;
  run(params: z.output<Schema>, ctx: CommandContext<Progress>): Promise<Result>;
  readonly progress?: Progress;
}

/** Declare a command; `Progress` is inferred from the type the implementation gives its context. */
export function defineCommand<Schema extends z.ZodType, Result, Progress = never>(spec: {
  params: Schema;
  run(params: z.output<Schema>, ctx: CommandContext<Progress>): Promise<Result>;
}): CommandSpec<Schema, Result, Progress> {
  return spec;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a table of specs of any types
export type CommandTable = Record<string, CommandSpec<any, any, any>>;

/** The parameters a caller passes (the schema's input type: fields with defaults are optional). */
export type ParamsOf<T extends CommandTable, K extends keyof T> = z.input<T[K]['params']>;
export type ResultOf<T extends CommandTable, K extends keyof T> = Awaited<ReturnType<T[K]['run']>>;
export type ProgressOf<T extends CommandTable, K extends keyof T> = NonNullable<T[K]['progress']>;

// ---------------------------------------------------------------------------------------------
// Messages

/** Host → worker. */
export type HostMessage =
  | { type: 'call'; id: number; command: string; params: unknown }
  | { type: 'cancel'; id: number }
  /** Cancel everything, release every session, then exit. */
  | { type: 'shutdown' };

/** Worker → host. */
export type WorkerMessage =
  /** The worker has loaded its modules and accepts calls. */
  | { type: 'ready' }
  | { type: 'progress'; id: number; data: unknown }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: SerializedError };

// ---------------------------------------------------------------------------------------------
// Errors

export type EngineErrorCode =
  /** The caller cancelled the call. */
  | 'CANCELLED'
  /** The worker has no command of that name. */
  | 'UNKNOWN_COMMAND'
  /** The parameters did not match the command's schema. */
  | 'BAD_PARAMS'
  /** A file or folder the call names does not exist or cannot be read. */
  | 'NOT_FOUND'
  /** The requested device cannot run here. */
  | 'DEVICE_UNAVAILABLE'
  /** An input is longer than the model accepts. */
  | 'TOO_LONG'
  /** The worker stopped (closed, crashed or terminated) before the call finished. */
  | 'WORKER_EXITED'
  /** Anything else that went wrong inside the engine. */
  | 'ENGINE_ERROR';

export interface SerializedError {
  message: string;
  code: EngineErrorCode;
  /** Structured facts a caller may use to build its own message (e.g. which input failed). */
  details?: Record<string, unknown>;
  /** The worker-side stack, for logs. */
  stack?: string;
}

/** An error from the engine, with a code a caller can branch on. */
export class EngineError extends Error {
  override name = 'EngineError';

  constructor(
    message: string,
    readonly code: EngineErrorCode = 'ENGINE_ERROR',
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function isCancellation(e: unknown): boolean {
  return e instanceof EngineError && e.code === 'CANCELLED';
}

/** Turn anything thrown inside the worker into a message-safe error. */
export function serializeError(e: unknown, aborted = false): SerializedError {
  if (e instanceof EngineError) return { message: e.message, code: e.code, details: e.details, stack: e.stack };
  const err = e instanceof Error ? e : new Error(String(e));
  // AbortSignal.throwIfAborted() throws the abort reason, or a DOMException named AbortError.
  if (aborted || err.name === 'AbortError') return { message: 'the call was cancelled', code: 'CANCELLED', stack: err.stack };
  const sys = (err as NodeJS.ErrnoException).code;
  const code: EngineErrorCode = sys === 'ENOENT' || sys === 'EACCES' || sys === 'ENOTDIR' ? 'NOT_FOUND' : 'ENGINE_ERROR';
  return { message: err.message, code, stack: err.stack };
}

export function deserializeError(s: SerializedError): EngineError {
  const e = new EngineError(s.message, s.code, s.details);
  // Keep the worker's stack (where the error happened) under the host's first line.
  if (s.stack) e.stack = `EngineError: ${s.message}\n    --- in the engine worker ---\n${s.stack.split('\n').slice(1).join('\n')}`;
  return e;
}
