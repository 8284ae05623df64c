// What the robustness probes share: a seeded generator (a failure is replayed with the same
// --seed), the command line as a child process, and the shape of a probe's report.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { ServerMessage } from '../../contract/index.ts';
import { mulberry32Uniform } from '../../main/engine/runtime/rng.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(ROOT, 'bin/autodidact.js');

/** A probe's result: one JSON line on stdout. `failures` name what did not hold, with enough to replay it. */
export interface ProbeReport {
  probe: string;
  seed: number;
  passed: boolean;
  seconds: number;
  failures: string[];
  [figure: string]: unknown;
}

export interface ProbeOptions {
  count: number;
  seed: number;
  /** Where the probe's data folders go (removed afterwards unless `keep`). */
  workDir: string;
  keep: boolean;
  /** Progress for a person (stderr). */
  log: (line: string) => void;
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32Uniform(seed);
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export function tempDir(parent: string, prefix: string): string {
  fs.mkdirSync(parent, { recursive: true });
  return fs.mkdtempSync(path.join(parent, prefix));
}

export function defaultWorkDir(): string {
  return path.join(os.tmpdir(), 'autodidact-probes');
}

export interface Child {
  child: ChildProcess;
  output(): string;
  stderr(): string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `autodidact ...args` with `env` added; stdout and stderr collected. */
export function startCli(args: string[], env: Record<string, string>, cwd = ROOT): Child {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => stdout + stderr, stderr: () => stderr };
}

/** Resident memory of a live process in MB (Linux /proc), or null where it cannot be read. */
export function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Signs in a process's output that something escaped its handlers. */
export const CRASH_SIGNS = /UnhandledPromiseRejection|unhandledRejection|Uncaught|FATAL ERROR|Maximum call stack|ERR_STRING_TOO_LONG|heap out of memory|Segmentation fault|core dumped/;

export const round = (x: number, digits = 2) => Number(x.toFixed(digits));

export interface Served {
  url: string;
  token: string;
  port: number;
  pid: number;
  home: string;
  /** The static folder served (a stand-in page: the probes test the API, not the renderer). */
  staticDir: string;
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/**
 * `autodidact serve --port 0 --no-open` on the data folder `home`, serving a stand-in page
 * (AUTODIDACT_RENDERER_DIR) so no renderer build is needed; resolves once the API answers.
 */
export async function startServe(home: string, parent: string): Promise<Served> {
  const staticDir = tempDir(parent, 'static-');
  fs.mkdirSync(path.join(staticDir, 'assets'));
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>probe</title>');
  fs.writeFileSync(path.join(staticDir, 'assets', 'app-0000.js'), 'void 0;');
  const c = startCli(['serve', '--port', '0', '--no-open'], { AUTODIDACT_HOME: home, AUTODIDACT_RENDERER_DIR: staticDir, AUTODIDACT_THREADS: '1' });
  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setInterval(() => {
      const out = c.output();
      const m = /(http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_-]+))/.exec(out);
      if (m && /ready: the API answers/.test(out)) {
        clearInterval(timer);
        resolve(m);
      }
    }, 20);
    void c.done.then((r) => {
      clearInterval(timer);
      reject(new Error(`autodidact serve exited (${r.code ?? r.signal}) before it was ready:\n${r.stdout}${r.stderr}`));
    });
  });
  return {
    url: ready[1],
    port: Number(ready[2]),
    token: ready[3],
    pid: c.child.pid!,
    home,
    staticDir,
    output: c.output,
    exited: () => c.child.exitCode !== null || c.child.signalCode !== null,
    stop: async () => {
      if (c.child.exitCode === null && c.child.signalCode === null) {
        c.child.kill('SIGINT');
        const timer = setTimeout(() => c.child.kill('SIGKILL'), 20_000);
        await c.done;
        clearTimeout(timer);
      }
      fs.rmSync(staticDir, { recursive: true, force: true });
    },
  };
}

/** A WebSocket to the served API with request/reply by id. */
export class ApiSocket {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: ServerMessage) => void>();
  /** Replies no request of this client was waiting for (their ids: -1, or a fuzzed one). */
  readonly stray: ServerMessage[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let m: ServerMessage;
      try {
        m = JSON.parse(data.toString()) as ServerMessage;
      } catch {
        this.stray.push({ type: 'error', id: -2, error: { code: 'INTERNAL', message: `unparsable reply: ${data.toString().slice(0, 200)}` } });
        return;
      }
      if (m.type === 'event') return;
      const w = this.waiting.get(m.id);
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      } else this.stray.push(m);
    });
    ws.on('error', () => {});
  }

  static open(s: Served, headers: Record<string, string> = {}): Promise<ApiSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/api?token=${s.token}`, { headers, maxPayload: 0 });
      ws.once('open', () => resolve(new ApiSocket(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    });
  }

  /** Sends a request and resolves with its reply (or null after `timeoutMs`). */
  request(channel: string, params: unknown, timeoutMs = 60_000): Promise<ServerMessage | null> {
    const id = this.nextId++;
    return this.sendRaw(JSON.stringify({ type: 'request', id, channel, params }), id, timeoutMs);
  }

  /** Sends `text` as one message and waits for the reply with `id`. */
  sendRaw(text: string, id: number, timeoutMs = 60_000): Promise<ServerMessage | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.ws.send(text);
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

const ERROR_CODES = new Set(['BAD_REQUEST', 'NOT_FOUND', 'CONFLICT', 'SETUP', 'UNAVAILABLE', 'INTERNAL']);

/** Why `m` is not an error in the contract's shape (ApiErrorShape), or null when it is. */
export function badErrorShape(m: unknown): string | null {
  const e = (m as { error?: unknown }).error as Record<string, unknown> | undefined;
  if (!e || typeof e !== 'object') return 'no error object';
  if (!ERROR_CODES.has(e.code as string)) return `unknown code ${JSON.stringify(e.code)}`;
  if (typeof e.message !== 'string' || e.message.trim() === '') return 'no message';
  if (e.issues !== undefined) {
    if (!Array.isArray(e.issues) || e.issues.some((i) => typeof i?.path !== 'string' || typeof i?.message !== 'string')) return 'malformed issues';
  }
  const extra = Object.keys(e).filter((k) => !['code', 'message', 'issues'].includes(k));
  if (extra.length) return `extra keys ${extra.join(', ')}`;
  return null;
}
