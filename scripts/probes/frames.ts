// The frame probe: `autodidact serve` (a real backend on a fresh data folder) sent fuzzed
// WebSocket messages in batches: random JSON, requests of every channel with wrong or mutated
// params, unknown channels, strings at and past the contract's limits, non-JSON text, odd ids,
// binary frames, floods, and (with `large`) a message over the socket's cap. Each must be
// answered in the contract's shape (contract/index.ts: a result, or an error with a known code
// and, for BAD_REQUEST, issues with paths; never INTERNAL), binary frames and the oversized
// message closing only their own socket; after each batch a fresh socket's app.info must answer,
// and the server's memory stay bounded. Then the refusals: no token, a wrong one, a foreign
// Origin, a rebinding Host, and path traversal URLs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { WebSocket } from 'ws';
import { MAX_MESSAGE_BYTES, MAX_TAG_LENGTH, MAX_UPLOAD_CHARS, REQUEST_CHANNELS, type ServerMessage } from '../../contract/index.ts';
import { CRASH_SIGNS, type ProbeOptions, type ProbeReport, Rng, type Served, badErrorShape, round, rssMb, startServe, tempDir } from './common.ts';

export interface FrameOptions extends ProbeOptions {
  /** Also send a 120 MiB upload and a frame over the 256 MiB cap (memory-heavy; on by default). */
  large: boolean;
}

const BATCH = 250;
/** Channels without parameters a page calls at start-up, asked once before memory is measured. */
const WARM_UP_CHANNELS = ['app.info', 'devices.list', 'models.list', 'datasets.list', 'runs.list', 'runs.methods', 'settings.get'];
/** More growth than this over the second half of the batches counts as memory not bounded. */
const MEMORY_GROWTH_MB = 100;

/** A socket whose replies are read in order: one message out, the next reply in. */
class Wire {
  private readonly queue: ServerMessage[] = [];
  private waiter: ((m: ServerMessage | null) => void) | null = null;
  closed: number | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as ServerMessage;
      if (m.type === 'event') return;
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(m);
      } else this.queue.push(m);
    });
    ws.on('close', (code) => {
      this.closed = code;
      this.waiter?.(null);
      this.waiter = null;
    });
    ws.on('error', () => {});
  }
  static open(s: Served): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/api?token=${s.token}`, { maxPayload: 0 });
      ws.once('open', () => resolve(new Wire(ws)));
      ws.once('error', reject);
    });
  }
  /** The next reply, or null when the socket closes or `ms` pass. */
  next(ms = 60_000): Promise<ServerMessage | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed !== null) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, ms);
      this.waiter = (x) => {
        clearTimeout(timer);
        resolve(x);
      };
    });
  }
  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }
  close(): void {
    this.ws.terminate();
  }
}

function randomString(rng: Rng, max = 40): string {
  const pools = ['abc', '0123456789', ' \t\n', '"\\/{}[]:,', 'éü✓日本', '\u0000\u001b\u007f', '\ud800\udc00', '\ud800'];
  let s = '';
  const n = rng.int(0, max);
  for (let i = 0; i < n; i++) s += rng.pick([...rng.pick(pools)]);
  return s;
}

function randomJson(rng: Rng, depth = 0): unknown {
  const kind = rng.int(0, depth > 3 ? 4 : 6);
  if (kind === 0) return null;
  if (kind === 1) return rng.chance(0.5);
  if (kind === 2) return rng.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, -0, 4294967296, rng.int(-1000, 1000)]);
  if (kind === 3 || kind === 4) return randomString(rng);
  if (kind === 5) return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, depth + 1));
  return Object.fromEntries(Array.from({ length: rng.int(0, 4) }, () => [rng.pick(['id', 'name', 'config', 'data', 'fileName', randomString(rng, 8)]), randomJson(rng, depth + 1)]));
}

/**
 * A well-formed request of each channel that changes nothing that matters (ids that do not
 * exist, a model that is not there, `start: false`), the base that mutations break one field of.
 */
const BASES: Record<string, Record<string, unknown>> = {
  'datasets.list': { includeArchived: true },
  'datasets.preview': { fileName: 'a.jsonl', text: '{"prompt":"x"}\n' },
  'datasets.import': { fileName: 'a.jsonl', data: Buffer.from('{"prompt":"x"}\n').toString('base64'), name: 'fuzz' },
  'datasets.items': { datasetId: 999, offset: 0, limit: 10, search: 'x', split: 'train' },
  'datasets.delete': { id: 999 },
  'runs.create': { model: 'no-such-model', dataset: 'no-such-dataset', start: false, config: { steps: 1 } },
  'runs.previewPrompt': { model: 'no-such-model', prompt: 'hello' },
  'runs.tag': { id: 999, add: ['t'], remove: [] },
  'runs.metrics': { id: 999, keys: ['a'], afterStep: 0 },
  'runs.export': { id: 999, kind: 'metrics', layout: 'wide' },
  'steps.groups': { runId: 999, step: 1, filter: 'all' },
  'reviews.set': { rolloutId: 999, verdict: 'override', label: 'x' },
  'runs.checkConfig': { config: { steps: 3 } },
};

function base(channel: string): Record<string, unknown> {
  return structuredClone(BASES[channel] ?? { id: 999 });
}

type Expect = 'reply' | 'close-1003' | 'close-1009';
interface Message {
  kind: string;
  data: string | Buffer;
  binary?: boolean;
  expect: Expect;
}

function request(id: unknown, channel: unknown, params: unknown): string {
  return JSON.stringify({ type: 'request', id, channel, params });
}

/** Message `i`: one of the fuzz kinds, drawn from the seeded generator. */
function makeMessage(rng: Rng, i: number): Message {
  const channel = rng.pick(REQUEST_CHANNELS as readonly string[]);
  switch (rng.int(0, 9)) {
    case 0:
      return { kind: 'random-json', data: JSON.stringify(randomJson(rng)), expect: 'reply' };
    case 1:
      return { kind: 'random-params', data: request(i, channel, randomJson(rng)), expect: 'reply' };
    case 2: {
      // A well-formed request with one field given a wrong type or value.
      const params = base(channel);
      const keys = Object.keys(params);
      const key = keys.length && rng.chance(0.8) ? rng.pick(keys) : randomString(rng, 12) || 'extra';
      params[key] = randomJson(rng);
      return { kind: 'mutated-params', data: request(i, channel, params), expect: 'reply' };
    }
    case 3:
      return { kind: 'unknown-channel', data: request(i, rng.pick(['', 'runs', 'runs.', '__proto__', 'constructor', 'toString', 'runs.create ', 'RUNS.LIST', randomString(rng, 20)]), {}), expect: 'reply' };
    case 4: {
      // A string at or one past a limit the contract sets.
      const over = rng.chance(0.5) ? 1 : 0;
      const [ch, params] = rng.pick([
        ['datasets.import', { fileName: 'x'.repeat(1024 + over) + '.jsonl', text: '{"prompt":"x"}\n', name: 'n'.repeat(200 + over) }],
        ['runs.tag', { id: 999, add: ['t'.repeat(MAX_TAG_LENGTH + over)] }],
        ['datasets.items', { datasetId: 999, search: 's'.repeat(500 + over) }],
        ['reviews.set', { rolloutId: 999, verdict: 'override', label: 'l'.repeat(1000 + over) }],
        ['runs.previewPrompt', { model: 'm'.repeat(4096 + over), prompt: 'p'.repeat(1_000_000 + over) }],
        ['runs.metrics', { id: 999, keys: Array.from({ length: 200 + over }, (_, j) => `k${j}`) }],
      ] as [string, unknown][]);
      return { kind: 'at-limits', data: request(i, ch, params), expect: 'reply' };
    }
    case 5:
      return { kind: 'not-json', data: rng.pick(['', ' ', '{', '{"type":"request","id":1', 'undefined', 'NaN', '[', randomString(rng, 200)]), expect: 'reply' };
    case 6:
      return { kind: 'odd-id', data: request(rng.pick([1.5, -1, 2 ** 60, '7', null, [], {}, true, Number.MAX_SAFE_INTEGER]), 'app.info', {}), expect: 'reply' };
    case 7:
      return { kind: 'wrong-type', data: JSON.stringify({ type: rng.pick(['result', 'event', 'error', 'REQUEST', 1, null]), id: i, channel: 'app.info', params: {} }), expect: 'reply' };
    case 8:
      return { kind: 'binary', data: crypto.randomBytes(rng.int(1, 64)), binary: true, expect: 'close-1003' };
    default:
      return { kind: 'params-shape', data: request(i, channel, rng.pick([null, [], 'text', 42, { __proto__: { id: 1 } }, JSON.parse('{"__proto__": {"polluted": true}}')])), expect: 'reply' };
  }
}

/** Opens the socket by hand and sends a frame header announcing `length` bytes; resolves with the close code the server sends. */
function oversizedFrame(s: Served, length: bigint): Promise<number | null> {
  return new Promise((resolve) => {
    const sock = net.connect(s.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const done = (code: number | null) => {
      sock.destroy();
      resolve(code);
    };
    const timer = setTimeout(() => done(null), 30_000);
    sock.on('error', () => done(null));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(null);
    });
    sock.write(
      `GET /api?token=${s.token} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, end).toString().startsWith('HTTP/1.1 101')) return done(null);
        upgraded = true;
        buf = buf.subarray(end + 4);
        const header = Buffer.alloc(14);
        header[0] = 0x81; // FIN, text
        header[1] = 0x80 | 127; // masked, 64-bit length
        header.writeBigUInt64BE(length, 2);
        crypto.randomBytes(4).copy(header, 10);
        sock.write(header);
      }
      // A close frame from the server (unmasked): 0x88, length, then the code.
      if (buf.length >= 4 && buf[0] === 0x88) {
        clearTimeout(timer);
        done(buf.readUInt16BE(2));
      }
    });
  });
}

function get(s: Served, target: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: s.port, path: target, method: 'GET', headers: { host: `127.0.0.1:${s.port}`, ...headers } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}

function upgradeStatus(s: Served, query: string, headers: Record<string, string> = {}, pathname = '/api'): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}${pathname}${query}`, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => resolve(0));
  });
}

const SECRET = 'PROBE-SECRET-5f3c';

/** Targets that try to leave the static folder for `secret.txt` beside it, or the system's files. */
function traversals(staticDir: string): string[] {
  const up = path.basename(staticDir);
  return [
    '/../secret.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/%2e%2e%2fsecret.txt', '/%252e%252e/secret.txt',
    '/assets/../../secret.txt', '/assets/..%2f..%2fsecret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/..\\secret.txt', '/..%5csecret.txt',
    '/assets/..%5c..%5csecret.txt', `/../${up}/../secret.txt`, '//secret.txt', '///../secret.txt', '/./../secret.txt',
    '/assets/./../../secret.txt', '/%00/../secret.txt', '/secret.txt%00.js', '/..;/secret.txt', '/.%2e/secret.txt',
    '/%c0%ae%c0%ae/secret.txt', '/%e0%80%ae%e0%80%ae/secret.txt', '/..%c0%afsecret.txt', '/../../../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/etc/passwd', 'http://127.0.0.1/../secret.txt', '/assets/../index.html',
  ];
}

export async function probeFrames(o: FrameOptions): Promise<ProbeReport> {
  const t0 = performance.now();
  const rng = new Rng(o.seed);
  const work = tempDir(o.workDir, 'frames-');
  const failures: string[] = [];
  const byKind: Record<string, number> = {};
  const codes: Record<string, number> = {};
  let served: Served | null = null;
  let sent = 0;
  let batches = 0;
  const rss: { at: string; mb: number }[] = [];
  let floodReplies = 0;
  try {
    served = await startServe(path.join(work, 'home'), work);
    fs.writeFileSync(path.join(work, 'secret.txt'), SECRET);
    const s = served;
    const sample = (at: string) => {
      const mb = rssMb(s.pid);
      if (mb !== null) rss.push({ at, mb: round(mb, 1) });
    };
    const alive = async (when: string) => {
      const w = await Wire.open(s).catch(() => null);
      if (!w) return failures.push(`${when}: a fresh socket was refused`);
      w.send(request(1, 'app.info', {}));
      const r = await w.next(30_000);
      w.close();
      if (r?.type !== 'result') failures.push(`${when}: app.info was not answered: ${JSON.stringify(r)?.slice(0, 200)}`);
    };
    let wire = await Wire.open(s);
    // Lazy one-time loads are not growth: the first devices.list loads onnxruntime's native
    // library (about +105 MB resident), which counted as unbounded memory when it fell in the
    // second half of the batches. Every list the app reads at start-up is asked once first.
    for (const [j, ch] of WARM_UP_CHANNELS.entries()) {
      wire.send(request(900_000 + j, ch, {}));
      const r = await wire.next(60_000);
      if (r?.type !== 'result') failures.push(`warm-up ${ch}: not answered with a result: ${JSON.stringify(r)?.slice(0, 200)}`);
    }
    sample('start');
    for (let i = 0; i < o.count; i++) {
      const m = makeMessage(rng, i);
      byKind[m.kind] = (byKind[m.kind] ?? 0) + 1;
      sent++;
      wire.send(m.data, m.binary);
      const where = `message ${i} (${m.kind}: ${(typeof m.data === 'string' ? m.data : m.data.toString('hex')).slice(0, 120)})`;
      const reply = await wire.next();
      if (m.expect === 'close-1003') {
        if (reply !== null || wire.closed !== 1003) failures.push(`${where}: expected the socket closed with 1003, got ${JSON.stringify(reply)?.slice(0, 200)} / close ${wire.closed}`);
        wire = await Wire.open(s);
      } else if (reply === null) {
        failures.push(`${where}: no reply (socket ${wire.closed === null ? 'open' : `closed ${wire.closed}`})`);
        wire.close();
        wire = await Wire.open(s);
      } else if (reply.type === 'error') {
        codes[reply.error.code] = (codes[reply.error.code] ?? 0) + 1;
        const bad = badErrorShape(reply);
        if (bad) failures.push(`${where}: error not in the contract's shape (${bad}): ${JSON.stringify(reply).slice(0, 200)}`);
        else if (reply.error.code === 'INTERNAL') failures.push(`${where}: INTERNAL: ${reply.error.message.slice(0, 200)}`);
      } else if (reply.type === 'result') codes.result = (codes.result ?? 0) + 1;
      else failures.push(`${where}: unexpected reply ${JSON.stringify(reply).slice(0, 200)}`);

      if ((i + 1) % BATCH === 0 || i === o.count - 1) {
        batches++;
        // A flood: as many requests at once as the batch had messages, every one answered.
        const flood = Math.min(BATCH, o.count);
        for (let j = 0; j < flood; j++) wire.send(request(100_000 + j, rng.pick(['app.info', 'runs.list', 'datasets.list', 'no.such']), {}));
        let got = 0;
        for (let j = 0; j < flood; j++) if (await wire.next(60_000)) got++;
        floodReplies += got;
        if (got !== flood) failures.push(`batch ${batches}: a flood of ${flood} requests got ${got} replies`);
        await alive(`after batch ${batches}`);
        sample(`batch ${batches}`);
        if (s.exited()) throw new Error(`autodidact serve died in batch ${batches}:\n${s.output().slice(-2000)}`);
      }
    }
    wire.close();
    // Bounded: over the second half of the batches the server's memory must level off.
    const perBatch = rss.filter((r) => r.at.startsWith('batch '));
    if (perBatch.length >= 4) {
      const mid = perBatch[Math.floor(perBatch.length / 2) - 1];
      const last = perBatch[perBatch.length - 1];
      if (last.mb - mid.mb > MEMORY_GROWTH_MB) failures.push(`the server's memory grew from ${mid.mb} MB (${mid.at}) to ${last.mb} MB (${last.at})`);
    }
    let large: Record<string, unknown> = {};
    if (o.large) {
      // Just past the upload limit: refused as a bad request, the server going on.
      const w = await Wire.open(s);
      w.send(request(1, 'datasets.import', { fileName: 'big.jsonl', text: 'x'.repeat(MAX_UPLOAD_CHARS + 1) }));
      const r = await w.next(120_000);
      w.close();
      const bigOk = r?.type === 'error' && r.error.code === 'BAD_REQUEST';
      if (!bigOk) failures.push(`an upload of MAX_UPLOAD_CHARS + 1 characters: expected BAD_REQUEST, got ${JSON.stringify(r)?.slice(0, 200)}`);
      sample('upload over the limit');
      const code = await oversizedFrame(s, BigInt(MAX_MESSAGE_BYTES + 1));
      if (code !== 1009) failures.push(`a frame announcing MAX_MESSAGE_BYTES + 1 bytes: expected close 1009, got ${code}`);
      const huge = await oversizedFrame(s, 2n ** 40n);
      if (huge !== 1009) failures.push(`a frame announcing 1 TiB: expected close 1009, got ${huge}`);
      await alive('after the oversized messages');
      sample('frames over the cap');
      large = { upload_over_limit: bigOk ? 'BAD_REQUEST' : 'failed', frame_over_cap: code, frame_1tib: huge };
    }

    // Refused: the socket without its token, with a wrong one, from another site, under another host.
    const refusals: [string, Promise<number>, number][] = [
      ['no token', upgradeStatus(s, ''), 401],
      ['wrong token', upgradeStatus(s, `?token=${'A'.repeat(43)}`), 401],
      ['foreign Origin', upgradeStatus(s, `?token=${s.token}`, { Origin: 'http://evil.example' }), 403],
      ['rebinding Host', upgradeStatus(s, `?token=${s.token}`, { Host: `evil.example:${s.port}` }), 421],
      ['other path', upgradeStatus(s, `?token=${s.token}`, {}, '/api/../api2'), 404],
    ];
    const refused: Record<string, number> = {};
    for (const [what, p, want] of refusals) {
      const got = await p;
      refused[what] = got;
      if (got !== want) failures.push(`socket with ${what}: expected ${want}, got ${got}`);
    }
    const page = await get(s, '/?token=wrong');
    if (page.status !== 401) failures.push(`the page with a wrong token: expected 401, got ${page.status}`);
    const rebound = await get(s, `/?token=${s.token}`, { host: 'evil.example' });
    if (rebound.status !== 421) failures.push(`the page under a rebinding Host: expected 421, got ${rebound.status}`);
    let traversalRefused = 0;
    const targets = traversals(s.staticDir);
    for (const t of targets) {
      const r = await get(s, t);
      if (r.body.includes(SECRET) || r.body.includes('root:') || (r.status === 200 && /<title>probe/.test(r.body))) failures.push(`GET ${t} reached a file: ${r.status} ${r.body.slice(0, 80)}`);
      else if (r.status >= 400) traversalRefused++;
      else failures.push(`GET ${t}: ${r.status}`);
    }
    await alive('after the refusals');
    sample('end');
    if (CRASH_SIGNS.test(s.output())) failures.push(`the server's output shows a crash: ${CRASH_SIGNS.exec(s.output())![0]}`);
    const internal = s.output().match(/web mode: \S+ failed/g) ?? [];
    if (internal.length) failures.push(`the server logged ${internal.length} internal failures, e.g. ${internal[0]}`);
    return {
      probe: 'frames',
      seed: o.seed,
      passed: failures.length === 0,
      seconds: round((performance.now() - t0) / 1000, 1),
      failures,
      messages: sent,
      batches,
      flood_replies: floodReplies,
      by_kind: byKind,
      answers: codes,
      ...large,
      refused,
      traversal_variants: targets.length,
      traversal_refused: traversalRefused,
      // The server's resident memory at each point: flat over the batches is what bounded means.
      rss_mb: Object.fromEntries(rss.map((r) => [r.at, r.mb])),
    };
  } catch (e) {
    failures.push((e as Error).message);
    return { probe: 'frames', seed: o.seed, passed: false, seconds: round((performance.now() - t0) / 1000, 1), failures };
  } finally {
    await served?.stop();
    if (!o.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}
