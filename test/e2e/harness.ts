// The browser suite's harness: web mode started as a user starts it (`autodidact serve` in a
// child process with its own data folder), and Debian's chromium driven headless through
// playwright-core. Screenshots of every view go to out/e2e-screenshots/.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { ROOT } from '../helpers/cli.ts';

export const SCREENSHOTS = path.join(ROOT, 'out', 'e2e-screenshots');

export interface WebMode {
  url: string;
  home: string;
  /** Milliseconds from spawning the process to the URL being printed. */
  startupMs: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `autodidact serve --port 0 --no-open` with a fresh data folder (or `home`, on `port`,
 * with `env` added); resolves with the URL it prints.
 */
export async function startWebMode(options: { home?: string; port?: number; env?: Record<string, string> } = {}): Promise<WebMode> {
  const home = options.home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-e2e-'));
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'bin/autodidact.js'), 'serve', '--port', String(options.port ?? 0), '--no-open'], {
    cwd: ROOT,
    env: { ...process.env, AUTODIDACT_HOME: home, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`web mode printed no URL within 60 s:\n${output}`)), 60_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`web mode exited with ${code} before printing its URL:\n${output}`));
    });
  });
  const startupMs = performance.now() - t0;
  return {
    url,
    home,
    startupMs,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export function chromiumPath(): string {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p && fs.existsSync(p)) return p;
  }
  throw new Error('no chromium found: install Debian\'s chromium (apt-get install chromium) or set CHROMIUM_PATH');
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

export interface OpenedApp {
  web: WebMode;
  browser: Browser;
  page: Page;
}

/**
 * What every browser test starts with: web mode (startWebMode's options), chromium, and one page
 * of `viewport` (default 1280×900) whose uncaught errors go to `pageErrors`; the screenshots
 * folder made.
 */
export async function openApp(
  o: { home?: string; env?: Record<string, string>; viewport?: { width: number; height: number }; acceptDownloads?: boolean; pageErrors?: string[] } = {},
): Promise<OpenedApp> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const web = await startWebMode({ home: o.home, env: o.env });
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: o.viewport ?? { width: 1280, height: 900 }, ...(o.acceptDownloads ? { acceptDownloads: true } : {}) });
  const errors = o.pageErrors;
  if (errors) page.on('pageerror', (e) => errors.push(e.message));
  return { web, browser, page };
}

/** Closes what openApp opened (either may be missing when beforeAll failed half-way). */
export async function closeApp(app: { browser?: Browser; web?: WebMode }): Promise<void> {
  await app.browser?.close();
  await app.web?.stop();
}
