// How a failed request is told to the page, the same on both transports (IPC and WebSocket).
import type { ApiErrorShape } from '../../contract/index.ts';

const CODES: readonly ApiErrorShape['code'][] = ['BAD_REQUEST', 'NOT_FOUND', 'CONFLICT', 'SETUP', 'UNAVAILABLE', 'INTERNAL'];

/** An ApiError (or anything shaped like one) as plain data; anything else is INTERNAL with its message. */
export function toErrorShape(err: unknown): ApiErrorShape {
  const e = err as Partial<ApiErrorShape> | null;
  if (e && typeof e === 'object' && CODES.includes(e.code as ApiErrorShape['code']) && typeof e.message === 'string') {
    return { code: e.code as ApiErrorShape['code'], message: e.message, ...(Array.isArray(e.issues) ? { issues: e.issues } : {}) };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}
