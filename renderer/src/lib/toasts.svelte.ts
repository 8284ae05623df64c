// Dismissible notices: request errors (their messages name the file, line or setting) and
// confirmations.
import { RequestError } from './api.ts';

export interface Toast {
  id: number;
  kind: 'error' | 'warn' | 'info';
  message: string;
  detail?: string;
}

let nextId = 1;
export const toasts: Toast[] = $state([]);

export function dismiss(id: number): void {
  const i = toasts.findIndex((t) => t.id === id);
  if (i >= 0) toasts.splice(i, 1);
}

export function notify(message: string, kind: Toast['kind'] = 'info', detail?: string): void {
  const id = nextId++;
  toasts.push({ id, kind, message, ...(detail ? { detail } : {}) });
  if (toasts.length > 5) toasts.splice(0, toasts.length - 5);
  if (kind === 'info') setTimeout(() => dismiss(id), 4000);
}

/** Show a failed request's message (and each bad field). */
export function showError(err: unknown): void {
  if (err instanceof RequestError) {
    const detail = err.issues?.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n');
    notify(err.message, 'error', detail || undefined);
  } else {
    notify(err instanceof Error ? err.message : String(err), 'error');
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
