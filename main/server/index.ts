// Web mode's transport: the built renderer served over HTTP and the API over one WebSocket, on
// node:http + ws. The renderer cannot tell this from the desktop app's IPC (contract/index.ts).
//
// Anyone who can reach the port could otherwise drive the machine (start runs, read datasets,
// add model folders by path), so:
// - a random 256-bit token is made per start; the page (`/`) and the socket (`/api`) need it;
//   hashed build assets do not (they hold no data);
// - the socket refuses a foreign Origin (another site open in the same browser), and every
//   request must name one of this server's own hosts, which defeats DNS rebinding;
// - it binds to 127.0.0.1 unless told otherwise;
// - every response carries the app's Content-Security-Policy.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { type ApiService, type ClientMessage, MAX_MESSAGE_BYTES, type ServerMessage } from '../../contract/index.ts';
import { SECURITY_HEADERS, contentSecurityPolicy } from './csp.ts';
import { toErrorShape } from './errors.ts';
import { contentType, resolveStatic } from './static.ts';

/** Tried first when no port is given; a free port is taken when it is busy. */
export const DEFAULT_PORT = 7860;
export const DEFAULT_HOST = '127.0.0.1';
/** The largest message a client may send (the contract's limit); a larger one closes its socket with 1009. */
export { MAX_MESSAGE_BYTES };
/** The close code of a socket whose client sent a message over MAX_MESSAGE_BYTES (RFC 6455: Message Too Big). */
export const MESSAGE_TOO_BIG = 1009;
/** Sent (as a request id) with the error answering a message that was not a readable request. */
export const UNREADABLE_ID = -1;

export interface WebServerOptions {
  api: ApiService;
  /** undefined: DEFAULT_PORT, or a free port when that is busy; a number: exactly that (0 = any free). */
  port?: number;
  host?: string;
  /** The built renderer (out/renderer/, holding index.html). */
  staticDir: string;
  /** Fixed token (tests); default: a fresh random one. */
  token?: string;
  /** Where problems are reported (default: stderr). */
  log?: (line: string) => void;
}

export interface WebServer {
  /** The address to open, token included. */
  url: string;
  token: string;
  port: number;
  host: string;
  /** Whether the bound address can be reached from other machines. */
  exposed: boolean;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '::1'];
const WILDCARDS = ['0.0.0.0', '::', ''];

export function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.includes(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The host names a browser may use to reach a server bound to `host`. */
function reachableNames(host: string): Set<string> {
  const names = new Set<string>([host.toLowerCase()]);
  if (isLoopback(host) || WILDCARDS.includes(host)) LOOPBACK_NAMES.forEach((n) => names.add(n));
  if (WILDCARDS.includes(host)) {
    names.add(os.hostname().toLowerCase());
    for (const addrs of Object.values(os.networkInterfaces())) {
      for (const a of addrs ?? []) names.add(a.address.toLowerCase());
    }
  }
  return names;
}

/** `[::1]:7860` → { name: '::1', port: '7860' }. */
function splitHost(value: string): { name: string; port: string } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(value);
  if (!m) return null;
  return { name: (m[1] ?? m[2]).toLowerCase(), port: m[3] ?? '80' };
}

function urlHost(name: string): string {
  return name.includes(':') ? `[${name}]` : name;
}

/** Compare secrets in constant time (hashing first makes the lengths equal). */
function sameSecret(given: string | null, token: string): boolean {
  if (given === null) return false;
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(token).digest();
  return crypto.timingSafeEqual(a, b);
}

/** The request a message holds, or why it is not one. */
export function parseClientMessage(data: string): { ok: true; message: ClientMessage } | { ok: false; id: number; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { ok: false, id: UNREADABLE_ID, reason: 'the message is not JSON' };
  }
  const m = value as Partial<ClientMessage> | null;
  const id = m && typeof m === 'object' && Number.isSafeInteger(m.id) ? (m.id as number) : UNREADABLE_ID;
  if (!m || typeof m !== 'object' || Array.isArray(m)) return { ok: false, id, reason: 'the message is not an object' };
  if (m.type !== 'request') return { ok: false, id, reason: `unknown message type ${JSON.stringify(m.type)}` };
  if (id === UNREADABLE_ID) return { ok: false, id, reason: 'the request has no integer id' };
  if (typeof m.channel !== 'string') return { ok: false, id, reason: 'the request has no channel' };
  return { ok: true, message: { type: 'request', id, channel: m.channel, params: m.params ?? {} } };
}

/** The request target as a URL; a target like `//x` stays a path (not a host, as `new URL` would read it). */
function requestUrl(req: http.IncomingMessage): URL {
  const target = req.url ?? '/';
  return new URL(target.startsWith('/') ? `http://local${target}` : 'http://local/');
}

/**
 * An answer written on the raw socket (a refused WebSocket upgrade, a request Node's parser
 * rejected), with the same CSP and security headers as every other response.
 */
function refuseRaw(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  const headers = { ...SECURITY_HEADERS, 'Content-Security-Policy': contentSecurityPolicy(), 'Cache-Control': 'no-store' };
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

async function listen(server: http.Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const { api, staticDir } = options;
  const host = options.host ?? DEFAULT_HOST;
  const token = options.token ?? crypto.randomBytes(32).toString('base64url');
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const names = reachableNames(host);
  const indexFile = path.join(staticDir, 'index.html');
  let port = 0;

  /** The request's Host header when it names this server, else null. */
  const ownHost = (req: http.IncomingMessage): string | null => {
    const h = req.headers.host ? splitHost(req.headers.host) : null;
    return h && names.has(h.name) && h.port === String(port) ? `${urlHost(h.name)}:${h.port}` : null;
  };

  const send = (res: http.ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer, head: boolean, hostHeader: string | null) => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Security-Policy': contentSecurityPolicy({ connect: hostHeader ? [`ws://${hostHeader}`] : [] }),
      'Content-Length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(head ? undefined : body);
  };
  const text = (res: http.ServerResponse, status: number, message: string, head: boolean, hostHeader: string | null) =>
    send(res, status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }, `${message}\n`, head, hostHeader);

  const server = http.createServer((req, res) => {
    const head = req.method === 'HEAD';
    const hostHeader = ownHost(req);
    if (!hostHeader) return text(res, 421, 'This server answers only under its own address (the one it printed at start).', head, null);
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      return text(res, 405, 'Only GET and HEAD are served here; the app talks over its WebSocket.', head, hostHeader);
    }
    const url = requestUrl(req);
    if (url.pathname === '/' || url.pathname === '/index.html') {
      if (!sameSecret(url.searchParams.get('token'), token)) {
        return text(
          res,
          401,
          'Autodidact needs the token from the address `autodidact serve` printed when it started (http://HOST:PORT/?token=...). Open that address.',
          head,
          hostHeader,
        );
      }
      let html: Buffer;
      try {
        html = fs.readFileSync(indexFile);
      } catch {
        return text(res, 500, `The app is not built (${indexFile} is missing): run \`npm run build:renderer\`.`, head, hostHeader);
      }
      // The page is the only response that carries the token in its URL: never cache it.
      return send(res, 200, { 'Content-Type': contentType(indexFile), 'Cache-Control': 'no-store' }, html, head, hostHeader);
    }
    const file = resolveStatic(staticDir, url.pathname);
    // index.html under another name (`//index.html`, `/./index.html`) must not dodge the token.
    if (!file || path.basename(file) === 'index.html') return text(res, 404, 'Not found.', head, hostHeader);
    // Vite names assets by content hash, so they never change under the same name.
    const cache = url.pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    send(res, 200, { 'Content-Type': contentType(file), 'Cache-Control': cache }, fs.readFileSync(file), head, hostHeader);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
  const clients = new Set<WebSocket>();

  // Node answers a request it cannot parse (400) or whose headers are too large (431) itself,
  // without our headers, unless a listener answers instead.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || err.code === 'ECONNRESET') return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    refuseRaw(socket, status, status === 431 ? 'The request headers are too large.' : status === 408 ? 'The request took too long.' : 'The request is malformed.');
  });

  server.on('upgrade', (req, socket, headBytes) => {
    socket.on('error', () => socket.destroy());
    const url = requestUrl(req);
    const hostHeader = ownHost(req);
    if (url.pathname !== '/api') return refuseRaw(socket, 404, 'The API socket is at /api.');
    if (!hostHeader) return refuseRaw(socket, 421, 'Wrong host.');
    if (!sameSecret(url.searchParams.get('token'), token)) return refuseRaw(socket, 401, 'A valid token is needed.');
    // Browsers always send Origin; a page from another site must not reach the API. Clients that
    // are not browsers send none and are held to the token alone.
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${hostHeader}`) return refuseRaw(socket, 403, 'Foreign origin.');
    wss.handleUpgrade(req, socket, headBytes, (ws) => wss.emit('connection', ws, req));
  });

  const reply = (ws: WebSocket, message: ServerMessage) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    let data: string;
    try {
      data = JSON.stringify(message);
    } catch (e) {
      if (message.type === 'event') return log(`web mode: event ${message.event} could not be sent: ${(e as Error).message}`);
      data = JSON.stringify({ type: 'error', id: message.id, error: { code: 'INTERNAL', message: `the result could not be sent: ${(e as Error).message}` } });
    }
    ws.send(data);
  };

  wss.on('connection', (ws: WebSocket) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
    // A message over maxPayload is refused by `ws` as its header arrives, before any of it is
    // buffered: the socket is closed with 1009 and this reports it; the server and the other
    // sockets go on.
    ws.on('error', (e) => log(`web mode: socket error: ${e.message}${(e as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? ` (over ${MAX_MESSAGE_BYTES} bytes; socket closed with ${MESSAGE_TOO_BIG})` : ''}`));
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        // The protocol is JSON text; binary frames mean a client that speaks something else.
        ws.close(1003, 'text messages only');
        return;
      }
      const parsed = parseClientMessage(data.toString());
      if (!parsed.ok) {
        reply(ws, { type: 'error', id: parsed.id, error: { code: 'BAD_REQUEST', message: parsed.reason } });
        return;
      }
      const { id, channel, params } = parsed.message;
      // Through a promise, so even a handler that throws synchronously becomes an error reply.
      Promise.resolve()
        .then(() => api.handle(channel, params))
        .then(
          (result) => reply(ws, { type: 'result', id, result: result === undefined ? null : result }),
          (err: unknown) => {
            const error = toErrorShape(err);
            if (error.code === 'INTERNAL') log(`web mode: ${channel} failed: ${err instanceof Error && err.stack ? err.stack : error.message}`);
            reply(ws, { type: 'error', id, error });
          },
        );
    });
  });

  const unsubscribe = api.subscribe((event, payload) => {
    if (clients.size === 0) return;
    let data: string;
    try {
      data = JSON.stringify({ type: 'event', event, payload } satisfies ServerMessage);
    } catch (e) {
      return log(`web mode: event ${event} could not be sent: ${(e as Error).message}`);
    }
    for (const ws of clients) if (ws.readyState === WebSocket.OPEN) ws.send(data);
  });

  try {
    try {
      await listen(server, options.port ?? DEFAULT_PORT, host);
    } catch (e) {
      // Only the default port may move: a port the person asked for is theirs to free.
      if (options.port !== undefined || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      await listen(server, 0, host);
    }
  } catch (e) {
    unsubscribe();
    wss.close();
    throw e;
  }
  port = (server.address() as AddressInfo).port;
  const shownHost = WILDCARDS.includes(host) ? '127.0.0.1' : host;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${urlHost(shownHost)}:${port}/?token=${token}`,
    token,
    port,
    host,
    exposed: !isLoopback(host),
    close() {
      closing ??= (async () => {
        unsubscribe();
        for (const ws of clients) ws.close(1001, 'server shutting down');
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        for (const ws of clients) ws.terminate();
      })();
      return closing;
    },
  };
}
