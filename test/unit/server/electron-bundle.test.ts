// The desktop app's bundles, as far as they can be checked without Electron's binary: the main
// bundle (scripts/build.ts) is started under Node with a stand-in `electron` module
// (fixtures/fake-electron.mjs), which drives the IPC handler, the window, the session hooks and
// quitting; the preload bundle must load as a CommonJS script that requires only electron.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMain, buildPreload } from '../../../scripts/build.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
// Inside the checkout, so the bundles' package imports resolve from its node_modules.
const outDir = path.join(root, 'out', `.bundle-test-${process.pid}`);
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-shell-'));
const loader = fileURLToPath(new URL('./fixtures/fake-electron-loader.mjs', import.meta.url));

interface Finding {
  what: string;
  [key: string]: unknown;
}

let findings: Finding[] = [];
let exitCode: number | null = null;
let output = '';

beforeAll(async () => {
  await buildMain(path.join(outDir, 'main'));
  await buildPreload(path.join(outDir, 'preload', 'index.cjs'));
  fs.mkdirSync(path.join(outDir, 'renderer'), { recursive: true });
  fs.writeFileSync(path.join(outDir, 'renderer', 'index.html'), '<!doctype html><title>Autodidact</title>');
  const child = spawn(process.execPath, ['--import', loader, path.join(outDir, 'main', 'index.js')], {
    env: { ...process.env, AUTODIDACT_HOME: home, FAKE_APPDATA: home, FAKE_ELECTRON_DRIVE: '1', AUTODIDACT_THREADS: '1', VITE_DEV_SERVER_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  exitCode = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  findings = output
    .split('\n')
    .filter((l) => l.startsWith('FAKE '))
    .map((l) => JSON.parse(l.slice(5)) as Finding);
}, 120_000);

afterAll(() => {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
});

function find(what: string): Finding {
  const f = findings.find((x) => x.what === what);
  if (!f) throw new Error(`no "${what}" from the app; its output:\n${output}`);
  return f;
}

describe('the Electron main bundle (under a stand-in electron)', () => {
  it('opens a sandboxed, isolated window on the built page with the bundled preload', () => {
    const win = find('window') as { webPreferences: Record<string, unknown>; loaded: string } & Finding;
    expect(win.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true });
    expect(win.webPreferences.preload).toBe(path.join(outDir, 'preload', 'index.cjs'));
    expect(win.loaded).toBe('app://autodidact/index.html');
  });

  it('serves the page from its own app:// scheme with the CSP on every response, and nothing outside the build', () => {
    const p = find('protocol') as Record<string, { status: number; csp: string | null; type: string; nosniff: string; body: string }> & Finding;
    expect(p.schemes).toEqual([{ scheme: 'app', privileges: expect.objectContaining({ standard: true, secure: true }) }]);
    expect(p.index).toMatchObject({ status: 200, type: 'text/html; charset=utf-8', nosniff: 'nosniff', body: '<!doctype html><title>Autodidact</title>' });
    expect(p.index.csp).toMatch(/^default-src 'self'; script-src 'self';.*connect-src 'self';/);
    expect(p.root.status).toBe(200);
    for (const refused of ['encodedTraversal', 'dotTraversal', 'otherHost']) {
      expect(p[refused], refused).toMatchObject({ status: 404, body: 'not found' });
      expect(p[refused].csp, refused).toMatch(/^default-src 'self'/);
    }
    expect(p.post.status).toBe(405);
  });

  it('answers IPC requests from the app page, errors as data, and nothing to other frames', () => {
    expect(find('ipc.info').reply).toEqual({ result: expect.objectContaining({ mode: 'electron', version: '9.9.9-fake', dataHome: home }) });
    expect(find('ipc.bad').reply).toMatchObject({ error: { code: 'BAD_REQUEST', issues: [{ path: 'id' }] } });
    expect(find('ipc.foreign').reply).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    expect(find('ipc.noframe').reply).toMatchObject({ error: { code: 'BAD_REQUEST' } });
  });

  it('forwards API events to the window on the event channel', () => {
    expect(find('events').sent).toContainEqual(['autodidact:event', 'datasets.changed']);
  });

  it('replaces any CSP with the app policy, and denies permissions', () => {
    const headers = find('headers').headers as Record<string, string[]>;
    expect(headers['content-security-policy']).toBeUndefined();
    expect(headers['Content-Security-Policy'][0]).toMatch(/^default-src 'self'; script-src 'self';/);
    expect(headers['X-Content-Type-Options']).toEqual(['nosniff']);
    expect(headers['X-Other']).toEqual(['1']);
    expect(find('permissions')).toMatchObject({ granted: false, check: false });
  });

  it('blocks navigation away and new windows, opening only http(s) links outside, each after asking', () => {
    const nav = find('navigation');
    expect(nav).toMatchObject({
      prevented: true,
      fileNavPrevented: true,
      inAppPrevented: false,
      denied: 'deny',
      deniedHttp: 'deny',
      // The third link was declined in its question; javascript: and file: were never asked about.
      opened: ['https://example.org/page', 'https://example.org/new'],
    });
    expect((nav.questions as { detail: string }[]).map((q) => q.detail)).toEqual(['https://example.org/page', 'https://example.org/new', 'https://example.org/declined']);
    expect(nav.questions).toContainEqual(expect.objectContaining({ message: 'Open this link in your browser?', buttons: ['Open in browser', 'Cancel'] }));
  });

  it('postpones quitting until the backend has closed, then exits cleanly', () => {
    const quits = findings.filter((f) => f.what === 'quit');
    expect(quits.map((q) => q.prevented)).toEqual([true, false]);
    expect(findings.some((f) => f.what === 'errorBox')).toBe(false);
    expect(exitCode).toBe(0);
    // The settings file is electron-store's, in the data home given by AUTODIDACT_HOME.
    expect(JSON.parse(fs.readFileSync(path.join(home, 'config.json'), 'utf8'))).toMatchObject({ defaultDevice: 'auto', window: { width: 1000, height: 700 } });
  });
});

describe('the preload bundle', () => {
  it('runs as a CommonJS script that requires only electron and exposes window.autodidact', () => {
    const code = fs.readFileSync(path.join(outDir, 'preload', 'index.cjs'), 'utf8');
    const required: string[] = [];
    const exposed: Record<string, unknown> = {};
    const fakeElectron = {
      contextBridge: { exposeInMainWorld: (key: string, value: unknown) => (exposed[key] = value) },
      ipcRenderer: { invoke: async () => ({ result: 1 }), on() {}, removeListener() {} },
    };
    const module = { exports: {} };
    const requireFn = (name: string) => {
      required.push(name);
      if (name !== 'electron') throw new Error(`a sandboxed preload cannot require ${name}`);
      return fakeElectron;
    };
    vm.runInNewContext(`(function (require, module, exports) {${code}\n})`, { console })(requireFn, module, module.exports);
    expect(required).toEqual(['electron']);
    expect(Object.keys(exposed)).toEqual(['autodidact']);
    expect(Object.keys(exposed.autodidact as object).sort()).toEqual(['invoke', 'on']);
  });
});
