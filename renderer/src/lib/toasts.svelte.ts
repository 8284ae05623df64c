// Dismissible notices: request errors (their messages name the file, line or setting) and
// confirmations. Each goes away by itself (toast-timers.ts), and stays while the pointer is on it.
import { RequestError } from './api.ts';
import { DismissTimers, toastLifetime } from './toast-timers.ts';

export interface Toast {
  id: number;
  kind: 'error' | 'warn' | 'info';
  message: string;
  detail?: string;
}

let nextId = 1;
export const toasts: Toast[] = $state([]);

/** At most this many notices at once; the oldest give way. */
const MAX_TOASTS = 4;

const timers = new DismissTimers((id) => dismiss(id));

export function dismiss(id: number): void {
  timers.clear(id);
  const i = toasts.findIndex((t) => t.id === id);
  if (i >= 0) toasts.splice(i, 1);
}

/** The pointer is on a notice: it stays until the pointer leaves. */
export const holdToast = (id: number) => timers.hold(id);
export const releaseToast = (id: number) => timers.release(id);

export function notify(message: string, kind: Toast['kind'] = 'info', detail?: string): void {
  const id = nextId++;
  toasts.push({ id, kind, message, ...(detail ? { detail } : {}) });
  while (toasts.length > MAX_TOASTS) dismiss(toasts[0].id);
  timers.start(id, toastLifetime(kind, message, detail));
}

/** Show a failed request's message (a refused request's names each bad field and what it takes). */
export function showError(err: unknown): void {
  notify(err instanceof Error ? err.message : String(err), 'error');
}

/**
 * `attempt` for a request about one thing (a run): null when it is not there (NOT_FOUND: the
 * page says so, in place of what it would show), without a toast.
 */
export async function attemptFound<T>(promise: Promise<T>): Promise<T | null | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof RequestError && err.code === 'NOT_FOUND') return null;
    showError(err);
    return undefined;
  }
}

/** Run a request; on failure show its error and return undefined. */
export async function attempt<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    showError(err);
    return undefined;
  }
}
