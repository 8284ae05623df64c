// The object the preload exposes as `window.autodidact`, built from ipcRenderer-like functions so
// it can be tested without Electron. It carries exactly two IPC channels (IPC_INVOKE and
// IPC_EVENT) and only the request and event names of the contract: the page cannot reach any
// other channel through it, whatever it passes.
import {
  ApiError,
  type ApiErrorShape,
  type AutodidactApi,
  EVENT_CHANNELS,
  type EventName,
  type Events,
  IPC_EVENT,
  IPC_INVOKE,
  REQUEST_CHANNELS,
} from '../contract/index.ts';

/** What the main process answers an IPC_INVOKE with. Errors travel as data: Electron reduces a thrown error to its message. */
export type IpcReply = { result: unknown } | { error: ApiErrorShape };

/** The part of Electron's ipcRenderer the bridge uses. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

const requestNames = new Set<string>(REQUEST_CHANNELS);
const eventNames = new Set<string>(EVENT_CHANNELS);

function isReply(value: unknown): value is IpcReply {
  return typeof value === 'object' && value !== null && ('result' in value || 'error' in value);
}

export function createBridge(ipc: IpcRendererLike): AutodidactApi {
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  // One IPC listener for all events, attached while anyone listens; the IpcRendererEvent (which
  // exposes the sender) never reaches the page.
  const onIpcEvent = (_event: unknown, name: unknown, payload: unknown) => {
    if (typeof name !== 'string') return;
    for (const listener of [...(listeners.get(name) ?? [])]) {
      try {
        listener(payload);
      } catch (e) {
        console.error(`autodidact: a listener of ${name} failed`, e);
      }
    }
  };
  let attached = false;
  const count = () => [...listeners.values()].reduce((n, s) => n + s.size, 0);

  return {
    async invoke(channel, params) {
      if (typeof channel !== 'string' || !requestNames.has(channel)) {
        throw new ApiError('BAD_REQUEST', `unknown request channel ${JSON.stringify(channel)}`);
      }
      const reply = await ipc.invoke(IPC_INVOKE, channel, params);
      if (!isReply(reply)) throw new ApiError('INTERNAL', `malformed reply to ${channel}`);
      if ('error' in reply) throw new ApiError(reply.error.code, reply.error.message, reply.error.issues);
      return reply.result as never;
    },
    on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
      if (typeof event !== 'string' || !eventNames.has(event)) throw new ApiError('BAD_REQUEST', `unknown event channel ${JSON.stringify(event)}`);
      if (typeof listener !== 'function') throw new ApiError('BAD_REQUEST', 'the listener must be a function');
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      // Wrap it, so adding the same function twice gives two independent subscriptions.
      const entry = (payload: unknown) => listener(payload as Events[E]);
      set.add(entry);
      if (!attached) {
        ipc.on(IPC_EVENT, onIpcEvent as (event: unknown, ...args: unknown[]) => void);
        attached = true;
      }
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        set.delete(entry);
        if (attached && count() === 0) {
          ipc.removeListener(IPC_EVENT, onIpcEvent as (event: unknown, ...args: unknown[]) => void);
          attached = false;
        }
      };
    },
  };
}

/**
 * The bridge as exposed across contextBridge: an Error loses every property but its message
 * there, so a failed request rejects with the plain ApiErrorShape (plus name 'ApiError'), which
 * survives the copy intact.
 */
export function exposedBridge(ipc: IpcRendererLike): AutodidactApi {
  const inner = createBridge(ipc);
  return {
    invoke: (channel, params) =>
      inner.invoke(channel, params).catch((e: unknown) => {
        const shape: ApiErrorShape = e instanceof ApiError ? e.toJSON() : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
        throw { name: 'ApiError', ...shape };
      }),
    on: (event, listener) => inner.on(event, listener),
  };
}
