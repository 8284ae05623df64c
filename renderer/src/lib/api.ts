// The renderer's one door to the app: an `AutodidactApi` (contract/index.ts). In Electron the
// preload provides it as `window.autodidact`; in web mode (`autodidact serve`) this module speaks
// the contract's WebSocket wire format to `/api?token=…`. Nothing else in the renderer touches a
// transport.
import {
  type ApiErrorShape,
  type AutodidactApi,
  type ClientMessage,
  type EventName,
  type Events,
  MAX_MESSAGE_BYTES,
  type ParamsOf,
  type RequestName,
  type ResultOf,
  type ServerMessage,
} from '../../../contract/index.ts';

declare global {
  interface Window {
    autodidact?: AutodidactApi;
    /** Milliseconds the listeners of each dispatched event took (read by the browser tests). */
    __autodidactEventTimings?: number[];
  }
}

/** A request's failure: the code the UI can act on, the message for the person, and the bad fields. */
export class RequestError extends Error implements ApiErrorShape {
  override name = 'ApiError';
  readonly code: ApiErrorShape['code'];
  readonly issues?: ApiErrorShape['issues'];
  constructor(shape: ApiErrorShape) {
    super(shape.message);
    this.code = shape.code;
    if (shape.issues) this.issues = shape.issues;
  }
}

/**
 * 'expired': the server answers but refuses this page's token: it restarted (each start makes a
 * new token), so only the address it printed this time gets back in; reconnecting stops.
 */
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'expired';

type Listener = (payload: never) => void;

const MAX_TIMINGS = 5000;
const timings: number[] = (window.__autodidactEventTimings ??= []);

/** Call every listener of one event, timing the whole dispatch for the browser tests. */
function dispatch(listeners: Set<Listener> | undefined, payload: unknown): void {
  if (!listeners || listeners.size === 0) return;
  const start = performance.now();
  for (const listener of [...listeners]) {
    try {
      (listener as (p: unknown) => void)(payload);
    } catch (err) {
      console.error('event listener failed', err);
    }
  }
  timings.push(performance.now() - start);
  if (timings.length > MAX_TIMINGS) timings.splice(0, timings.length - MAX_TIMINGS);
}

/** The close code of a socket whose message was over MAX_MESSAGE_BYTES (RFC 6455: Message Too Big). */
const MESSAGE_TOO_BIG = 1009;
const mib = (bytes: number) => `${Math.ceil(bytes / (1024 * 1024))} MiB`;

/** A message's size on the wire (UTF-8), counted only when it could be near the limit. */
function wireBytes(text: string): number {
  return text.length * 3 <= MAX_MESSAGE_BYTES ? text.length : new TextEncoder().encode(text).length;
}

/** The web-mode transport: one WebSocket, request ids, a pending map, reconnection with backoff. */
class WebSocketApi implements AutodidactApi {
  private socket: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; message: string }>();
  /** Requests made while the socket is not open: sent as soon as it opens. */
  private readonly queued: string[] = [];
  private readonly listeners = new Map<EventName, Set<Listener>>();
  private readonly stateListeners = new Set<(state: ConnectionState, attempt: number) => void>();
  private attempt = 0;
  state: ConnectionState = 'connecting';

  constructor(private readonly url: string) {
    this.connect();
  }

  invoke<K extends RequestName>(channel: K, params: ParamsOf<K>): Promise<ResultOf<K>> {
    const id = this.nextId++;
    const message: ClientMessage = { type: 'request', id, channel, params };
    const text = JSON.stringify(message);
    // The server closes the socket of a larger message: refuse it here, where the person can
    // be told why, and keep the connection.
    const bytes = wireBytes(text);
    if (bytes > MAX_MESSAGE_BYTES) {
      return Promise.reject(
        new RequestError({ code: 'BAD_REQUEST', message: `This request is ${mib(bytes)}; web mode takes at most ${mib(MAX_MESSAGE_BYTES)} in one request. Split the file, or use the desktop app or \`autodidact datasets import\`.` }),
      );
    }
    return new Promise<ResultOf<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, message: text });
      if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(text);
      else this.queued.push(text);
    });
  }

  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }

  onState(listener: (state: ConnectionState, attempt: number) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.state, this.attempt);
    return () => this.stateListeners.delete(listener);
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state, this.attempt);
  }

  private connect(): void {
    this.setState('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.setState('open');
      for (const text of this.queued.splice(0)) socket.send(text);
    };
    socket.onmessage = (ev) => this.receive(ev.data);
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      // Requests in flight on a dropped connection cannot be answered any more: fail them
      // (they may have run; retrying could repeat an action such as a launch).
      const sent = new Set(this.queued);
      for (const [id, p] of this.pending) {
        if (sent.has(p.message)) continue;
        this.pending.delete(id);
        p.reject(
          new RequestError(
            ev.code === MESSAGE_TOO_BIG
              ? { code: 'BAD_REQUEST', message: `The server refused a request over ${mib(MAX_MESSAGE_BYTES)} and closed the connection; it reconnects now.` }
              : { code: 'UNAVAILABLE', message: 'The connection to Autodidact was lost before it answered.' },
          ),
        );
      }
      this.attempt++;
      this.setState('closed');
      const delay = Math.min(10_000, 250 * 2 ** Math.min(this.attempt, 6)) * (0.75 + Math.random() * 0.5);
      const retry = () => setTimeout(() => this.connect(), delay);
      // A browser does not tell why a socket was refused. When it never opened, ask the page's
      // own address: 401 means the server is up but no longer takes this token (it restarted).
      if (opened) retry();
      else void this.tokenRefused().then((refused) => (refused ? this.expire() : retry()));
    };
  }

  private async tokenRefused(): Promise<boolean> {
    try {
      const res = await fetch(location.pathname + location.search, { method: 'HEAD', cache: 'no-store' });
      return res.status === 401;
    } catch {
      return false; // not answering at all: down, or still starting
    }
  }

  private expire(): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new RequestError({ code: 'UNAVAILABLE', message: 'Autodidact restarted; open the address `autodidact serve` printed when it started again.' }));
    }
    this.queued.length = 0;
    this.setState('expired');
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let message: ServerMessage;
    try {
      message = JSON.parse(data) as ServerMessage;
    } catch {
      console.error('unreadable message from the server');
      return;
    }
    if (message.type === 'event') {
      dispatch(this.listeners.get(message.event), message.payload);
      return;
    }
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.type === 'result') pending.resolve(message.result);
    else pending.reject(new RequestError(message.error));
  }
}

/** Wraps the preload's object so errors carry `code` and every event dispatch is timed. */
class PreloadApi implements AutodidactApi {
  private readonly listeners = new Map<EventName, Set<Listener>>();
  private readonly unsubscribe = new Map<EventName, () => void>();
  constructor(private readonly inner: AutodidactApi) {}

  async invoke<K extends RequestName>(channel: K, params: ParamsOf<K>): Promise<ResultOf<K>> {
    try {
      return await this.inner.invoke(channel, params);
    } catch (err) {
      throw toRequestError(err);
    }
  }

  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      const created = new Set<Listener>();
      this.listeners.set(event, created);
      set = created;
      this.unsubscribe.set(
        event,
        this.inner.on(event, (payload) => dispatch(created, payload)),
      );
    }
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }
}

function toRequestError(err: unknown): RequestError {
  if (err instanceof RequestError) return err;
  const e = err as Partial<ApiErrorShape> & { message?: string };
  const code = typeof e?.code === 'string' ? (e.code as ApiErrorShape['code']) : 'INTERNAL';
  // Electron prefixes rejected invoke messages with "Error invoking remote method '…': ".
  const message = String(e?.message ?? err).replace(/^Error invoking remote method '[^']*': (\w*Error: )?/, '');
  return new RequestError({ code, message, ...(e?.issues ? { issues: e.issues } : {}) });
}

function webSocketUrl(): string {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/api?token=${encodeURIComponent(token)}`;
}

const socketApi = window.autodidact ? null : new WebSocketApi(webSocketUrl());

/** The API the whole renderer uses. */
export const api: AutodidactApi = window.autodidact ? new PreloadApi(window.autodidact) : socketApi!;

/** Follow the connection (web mode); in Electron it is always open. */
export function onConnectionState(listener: (state: ConnectionState, attempt: number) => void): () => void {
  if (!socketApi) {
    listener('open', 0);
    return () => {};
  }
  return socketApi.onState(listener);
}

/** Shorthand: `call('runs.get', { id })`. */
export function call<K extends RequestName>(channel: K, params: ParamsOf<K>): Promise<ResultOf<K>> {
  return api.invoke(channel, params);
}
