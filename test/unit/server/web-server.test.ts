// Web mode's transport, against a small fake ApiService: the token, the Origin and Host checks,
// static files, the WebSocket protocol and event broadcast.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { constants as bufferConstants } from 'node:buffer';
import { ApiError, type ApiService, type EventName, type Events, MAX_MESSAGE_BYTES, MAX_UPLOAD_CHARS, type ServerMessage } from '../../../contract/index.ts';
import { MESSAGE_TOO_BIG, UNREADABLE_ID, type WebServer, startWebServer } from '../../../main/server/index.ts';

type Listener = <E extends EventName>(event: E, payload: Events[E]) => void;

function fakeApi() {
  const listeners = new Set<Listener>();
  const api: ApiService = {
    handle(channel, params) {
      // Synchronous, as a handler written without async might be: the server must not crash.
      if (channel === 'sync-throw') throw new ApiError('CONFLICT', 'thrown synchronously');
      return answer(channel, params);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  async function answer(channel: string, params: unknown): Promise<unknown> {
    if (channel === 'app.info') return { version: 'test', mode: 'web', params };
    if (channel === 'runs.get') throw new ApiError('NOT_FOUND', 'run 9 does not exist');
    if (channel === 'boom') throw new Error('internal failure');
    throw new ApiError('BAD_REQUEST', `unknown channel ${channel}`);
  }
  const emit: Listener = (event, payload) => listeners.forEach((l) => l(event, payload));
  return { api, emit, listeners };
}

let staticDir: string;
let server: WebServer;
let fake: ReturnType<typeof fakeApi>;
const sockets: WebSocket[] = [];

beforeAll(() => {
  staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-web-'));
  fs.mkdirSync(path.join(staticDir, 'assets'));
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Autodidact</title><script type="module" src="/assets/app-1234.js"></script>');
  fs.writeFileSync(path.join(staticDir, 'assets', 'app-1234.js'), 'console.log("app")');
  fs.writeFileSync(path.join(staticDir, 'assets', 'app-1234.css'), 'body{}');
});
afterAll(() => fs.rmSync(staticDir, { recursive: true, force: true }));

async function start(): Promise<WebServer> {
  fake = fakeApi();
  server = await startWebServer({ api: fake.api, port: 0, staticDir, log: () => {} });
  return server;
}

afterEach(async () => {
  sockets.splice(0).forEach((s) => s.terminate());
  await server?.close();
});

/** A raw GET, so the path is sent exactly as written (fetch would normalise `..`). */
function get(p: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: p, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Open the API socket; resolves with the socket, or rejects with the HTTP status of the refusal. */
function connect(query: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api${query}`, { headers });
    sockets.push(ws);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<ServerMessage> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()) as ServerMessage)));
}

describe('web mode server', () => {
  it('makes a fresh 256-bit token per start and prints it in the URL', async () => {
    const first = await start();
    expect(Buffer.from(first.token, 'base64url').length).toBe(32);
    expect(first.url).toBe(`http://127.0.0.1:${first.port}/?token=${first.token}`);
    expect(first.exposed).toBe(false);
    const firstToken = first.token;
    await first.close();
    const second = await start();
    expect(second.token).not.toBe(firstToken);
  });

  it('answers refused upgrades and requests Node cannot parse (400, 431) with the CSP and security headers', async () => {
    await start();
    /** The raw answer to `request` written on a fresh connection. */
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const c = net.connect(server.port, '127.0.0.1', () => c.end(request));
        let out = '';
        c.setEncoding('latin1');
        c.on('data', (d) => (out += d));
        c.on('close', () => resolve(out));
        c.on('error', reject);
      });
    const upgrade = (query: string) => `GET /api${query} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    const answers = {
      401: await raw(upgrade('')),
      400: await raw('NOT HTTP AT ALL\r\n\r\n'),
      431: await raw(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    };
    for (const [status, answer] of Object.entries(answers)) {
      expect(answer).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(answer).toMatch(/\r\nContent-Security-Policy: default-src 'self'[^\r]*\r\n/);
      expect(answer).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/);
    }
  });

  it('refuses the socket without a token, with a wrong one, or from a foreign origin', async () => {
    await start();
    await expect(connect('')).rejects.toThrow('HTTP 401');
    await expect(connect(`?token=${server.token.slice(0, -1)}x`)).rejects.toThrow('HTTP 401');
    await expect(connect(`?token=${server.token}`, { Origin: 'http://evil.example' })).rejects.toThrow('HTTP 403');
    // Another local port is another origin too.
    await expect(connect(`?token=${server.token}`, { Origin: `http://127.0.0.1:${server.port + 1}` })).rejects.toThrow('HTTP 403');
    // A DNS-rebound name reaches the right address under the wrong Host.
    await expect(connect(`?token=${server.token}`, { Host: `evil.example:${server.port}`, Origin: `http://evil.example:${server.port}` })).rejects.toThrow('HTTP 421');
    const ok = await connect(`?token=${server.token}`, { Origin: `http://127.0.0.1:${server.port}` });
    expect(ok.readyState).toBe(WebSocket.OPEN);
  });

  it('answers requests with results and errors, keyed by id', async () => {
    await start();
    const ws = await connect(`?token=${server.token}`);
    ws.send(JSON.stringify({ type: 'request', id: 7, channel: 'app.info', params: {} }));
    expect(await nextMessage(ws)).toEqual({ type: 'result', id: 7, result: { version: 'test', mode: 'web', params: {} } });
    ws.send(JSON.stringify({ type: 'request', id: 8, channel: 'runs.get', params: { id: 9 } }));
    expect(await nextMessage(ws)).toEqual({ type: 'error', id: 8, error: { code: 'NOT_FOUND', message: 'run 9 does not exist' } });
    ws.send(JSON.stringify({ type: 'request', id: 9, channel: 'boom', params: {} }));
    expect(await nextMessage(ws)).toEqual({ type: 'error', id: 9, error: { code: 'INTERNAL', message: 'internal failure' } });
    ws.send(JSON.stringify({ type: 'request', id: 10, channel: 'sync-throw', params: {} }));
    expect(await nextMessage(ws)).toEqual({ type: 'error', id: 10, error: { code: 'CONFLICT', message: 'thrown synchronously' } });
  });

  it('answers malformed messages with an error and keeps the socket usable', async () => {
    await start();
    const ws = await connect(`?token=${server.token}`);
    ws.send('{not json');
    expect(await nextMessage(ws)).toMatchObject({ type: 'error', id: UNREADABLE_ID, error: { code: 'BAD_REQUEST', message: 'the message is not JSON' } });
    ws.send(JSON.stringify({ type: 'request', id: 3 }));
    expect(await nextMessage(ws)).toMatchObject({ type: 'error', id: 3, error: { code: 'BAD_REQUEST' } });
    ws.send(JSON.stringify({ type: 'subscribe', id: 4, channel: 'x' }));
    expect(await nextMessage(ws)).toMatchObject({ type: 'error', id: 4, error: { message: 'unknown message type "subscribe"' } });
    ws.send('null');
    expect(await nextMessage(ws)).toMatchObject({ type: 'error', id: UNREADABLE_ID });
    ws.send(JSON.stringify({ type: 'request', id: 5, channel: 'app.info', params: {} }));
    expect(await nextMessage(ws)).toMatchObject({ type: 'result', id: 5 });
  });

  it('caps a message well below the longest string it is decoded into, and above the largest upload the contract admits', () => {
    // Decoding a message past V8's longest string threw ERR_STRING_TOO_LONG, uncaught.
    expect(MAX_MESSAGE_BYTES).toBeLessThan(0.6 * bufferConstants.MAX_STRING_LENGTH);
    // An upload's JSON: quotes, and escapes such as \n of two bytes for one character.
    expect(2 * MAX_UPLOAD_CHARS + 1024 * 1024).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });

  it('closes the socket of a message over the cap with 1009 and goes on serving the others', async () => {
    await start();
    const logged: string[] = [];
    await server.close();
    server = await startWebServer({ api: fake.api, port: 0, staticDir, log: (l) => logged.push(l) });
    const other = await connect(`?token=${server.token}`);
    const big = await connect(`?token=${server.token}`);
    // Writing the rest of the frame fails once the server has hung up: expected here.
    big.on('error', () => {});
    const closed = new Promise<number>((resolve) => big.once('close', (code) => resolve(code)));
    // A text frame one byte over the cap (the server refuses it from its header, unbuffered).
    big.send(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20), { binary: false });
    expect(await closed).toBe(MESSAGE_TOO_BIG);
    expect(logged.join('\n')).toContain(`over ${MAX_MESSAGE_BYTES} bytes; socket closed with 1009`);
    other.send(JSON.stringify({ type: 'request', id: 1, channel: 'app.info', params: {} }));
    expect(await nextMessage(other)).toMatchObject({ type: 'result', id: 1 });
    const next = await connect(`?token=${server.token}`);
    next.send(JSON.stringify({ type: 'request', id: 2, channel: 'app.info', params: {} }));
    expect(await nextMessage(next)).toMatchObject({ type: 'result', id: 2 });
  });

  it('sends every event to every connected client', async () => {
    await start();
    const a = await connect(`?token=${server.token}`);
    const b = await connect(`?token=${server.token}`);
    const got = Promise.all([nextMessage(a), nextMessage(b)]);
    fake.emit('run.progress', { runId: 1, progress: { step: 2, steps: 10, phase: 'rollout', etaSeconds: 30 } });
    for (const m of await got) {
      expect(m).toEqual({ type: 'event', event: 'run.progress', payload: { runId: 1, progress: { step: 2, steps: 10, phase: 'rollout', etaSeconds: 30 } } });
    }
  });

  it('serves the page only with the token, with the CSP and security headers', async () => {
    await start();
    const refused = await get('/');
    expect(refused.status).toBe(401);
    expect(refused.body).toContain('token');
    expect((await get('/?token=wrong')).status).toBe(401);
    expect((await get('/index.html')).status).toBe(401);
    // index.html under another spelling must not dodge the token.
    expect((await get('//index.html')).status).toBe(404);
    expect((await get('/assets//../index.html')).status).toBe(404);
    expect((await get('/assets/../index.html')).status).toBe(401);
    const page = await get(`/?token=${server.token}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>Autodidact</title>');
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(
      `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws://127.0.0.1:${server.port}; ` +
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    );
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['cache-control']).toBe('no-store');
  });

  it('serves hashed assets without the token, with their content types', async () => {
    await start();
    const js = await get('/assets/app-1234.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['content-security-policy']).toContain("script-src 'self'");
    expect((await get('/assets/app-1234.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await get('/assets/missing.js')).status).toBe(404);
  });

  it('cannot be walked out of its folder', async () => {
    await start();
    fs.writeFileSync(path.join(path.dirname(staticDir), 'autodidact-secret.txt'), 'secret');
    try {
      const secret = `/assets/../../${path.basename(path.dirname(staticDir))}/autodidact-secret.txt`;
      for (const p of ['/assets/../../package.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json', '/assets/..\\..\\package.json', secret, '/%2e%2e/autodidact-secret.txt', '/assets']) {
        const res = await get(p);
        expect(res.status, p).toBe(404);
        expect(res.body, p).not.toContain('secret');
      }
    } finally {
      fs.rmSync(path.join(path.dirname(staticDir), 'autodidact-secret.txt'));
    }
  });

  it('refuses requests under a foreign Host and methods other than GET', async () => {
    await start();
    expect((await get(`/?token=${server.token}`, { Host: `attacker.example:${server.port}` })).status).toBe(421);
    expect((await get(`/?token=${server.token}`, { Host: `localhost:${server.port}` })).status).toBe(200);
    const post = await new Promise<number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, path: '/', method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.end();
    });
    expect(post).toBe(405);
  });

  it('stops sending events and drops clients when closed', async () => {
    await start();
    const ws = await connect(`?token=${server.token}`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await server.close();
    expect(await closed).toBe(1001);
    expect(fake.listeners.size).toBe(0);
  });

  it('keeps an asked-for port that is busy an error, and moves only the default one', async () => {
    await start();
    await expect(startWebServer({ api: fake.api, port: server.port, staticDir, log: () => {} })).rejects.toThrow(/EADDRINUSE/);
    const a = await startWebServer({ api: fake.api, staticDir, log: () => {} });
    const b = await startWebServer({ api: fake.api, staticDir, log: () => {} });
    try {
      expect(a.port).not.toBe(b.port);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
