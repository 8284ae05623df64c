// `autodidact serve` from a fresh checkout, where the renderer was never built: it builds it
// (vite, from the checkout's sources) and serves it, instead of stopping with "run
// `npm run build:renderer` first".
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/cli.ts';

let child: ChildProcess | null = null;
const temps: string[] = [];

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGINT');
    const timer = setTimeout(() => child?.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
  child = null;
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('autodidact serve', () => {
  it('builds the app when it is missing and serves it', async () => {
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-serve-build-'));
    temps.push(temp);
    const rendererDir = path.join(temp, 'renderer-out');
    child = spawn(process.execPath, [path.join(ROOT, 'bin/autodidact.js'), 'serve', '--port', '0', '--no-open'], {
      cwd: ROOT,
      env: { ...process.env, AUTODIDACT_HOME: path.join(temp, 'home'), AUTODIDACT_RENDERER_DIR: rendererDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /open: (http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)/.exec(stdout);
        if (m) resolve(m[1]);
      });
      child!.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child!.once('exit', (code) => reject(new Error(`serve exited with ${code} before printing its address:\n${stdout}\n${stderr}`)));
    });
    expect(stderr).toContain('building it now');
    expect(fs.existsSync(path.join(rendererDir, 'index.html'))).toBe(true);
    const page = await get(url);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<script[^>]+src="\.\/assets\/[^"]+\.js"/);
    // Built once: its assets are served too.
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(page.body)![1];
    expect((await get(new URL(asset, url).href)).status).toBe(200);
  }, 180_000);
});
