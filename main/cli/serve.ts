// `autodidact serve`: web mode. The same backend as the desktop app, with the built renderer
// served to a browser over HTTP and the API over a WebSocket (main/server/). For a GPU box
// reached through an SSH tunnel, and for the browser tests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HOST, DEFAULT_PORT, type WebServer, startWebServer } from '../server/index.ts';
import { createConfSettings } from '../settings.ts';
import { UsageError, command, intFlag } from './args.ts';

/** The built renderer (vite's output), relative to this module in a checkout. */
export function rendererDir(): string {
  return process.env.AUTODIDACT_RENDERER_DIR
    ? path.resolve(process.env.AUTODIDACT_RENDERER_DIR)
    : fileURLToPath(new URL('../../out/renderer/', import.meta.url));
}

/**
 * How to build the renderer into `outDir` from this checkout (its sources and vite), or null
 * where there is no checkout to build from (an installed package ships the build instead).
 */
export function rendererBuild(outDir: string): { command: string; args: string[]; cwd: string } | null {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const config = path.join(root, 'renderer', 'vite.config.ts');
  if (!fs.existsSync(config)) return null;
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('vite');
  } catch {
    return null;
  }
  // vite's exports name neither its bin nor its package.json: walk up from its entry point.
  let dir = path.dirname(entry);
  while (path.basename(dir) !== 'vite' || !fs.existsSync(path.join(dir, 'package.json'))) {
    if (path.dirname(dir) === dir) return null;
    dir = path.dirname(dir);
  }
  const vite = path.join(dir, 'bin', 'vite.js');
  if (!fs.existsSync(vite)) return null;
  return { command: process.execPath, args: [vite, 'build', '--config', config, '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], cwd: root };
}

/**
 * The built renderer in `staticDir`, built now when it is missing and a checkout can build it
 * (a fresh checkout after `npm install`); its output goes to stderr, so stdout keeps only the
 * address. Resolves with why the app cannot be served, or null when it can.
 */
async function ensureRenderer(staticDir: string): Promise<string | null> {
  const index = path.join(staticDir, 'index.html');
  if (fs.existsSync(index)) return null;
  const build = rendererBuild(staticDir);
  if (!build) return `the app is not built (${index} is missing), and there are no renderer sources here to build it from.`;
  process.stderr.write(`The app is not built yet (${index} is missing): building it now (about half a minute, once)...\n`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(build.command, build.args, { cwd: build.cwd, stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', (e) => {
      process.stderr.write(`${e.message}\n`);
      resolve(null);
    });
    child.on('exit', (c) => resolve(c));
  });
  if (code !== 0 || !fs.existsSync(index)) return `building the app failed (vite exited with ${code}; its output is above). Run \`npm run build:renderer\` to retry.`;
  return null;
}

/** Open the system browser on `url`, quietly doing nothing where there is none (a headless box). */
function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // No opener: the URL is printed anyway.
  }
}

export const serveCommand = command({
  name: 'serve',
  summary: 'Web mode: serve the app to a browser on this machine (the same app as the desktop window).',
  synopsis: '[--port P] [--host H] [--no-open]',
  flags: {
    port: { type: 'string', value: 'P', description: `port to listen on (default: ${DEFAULT_PORT}, or a free one when that is busy; 0 = any free port)` },
    host: { type: 'string', value: 'H', default: DEFAULT_HOST, description: 'address to bind; anything but loopback lets other machines in' },
    'no-open': { type: 'boolean', description: 'do not open a browser, only print the address' },
  },
  details: `
The address printed holds a random token made at each start; the page and the API refuse
requests without it and requests from other sites. Keep it to yourself: whoever has it can
drive the app (start runs, read and import datasets). The page names no path on this machine:
add model folders with 'autodidact models add FOLDER'; the data folder is AUTODIDACT_HOME (or
the desktop app's setting).
To use a remote GPU box, keep the default host and tunnel the port: ssh -L P:127.0.0.1:P box.
Ctrl-C stops the server; a running run is paused at its next step and can be resumed.
The page is the built renderer (out/renderer/); in a checkout where it is missing, serve builds
it first (\`npm run build:renderer\` rebuilds it after you change the renderer).`,
  async run(values) {
    const port = values.port === undefined ? undefined : intFlag(values, 'port', DEFAULT_PORT, 0, 65535);
    const host = values.host ?? DEFAULT_HOST;
    if (host.trim() === '') throw new UsageError('--host must not be empty');
    const staticDir = rendererDir();
    const unbuilt = await ensureRenderer(staticDir);
    if (unbuilt) {
      process.stderr.write(`autodidact serve: ${unbuilt}\n`);
      return 1;
    }

    // Ctrl-C from the first moment on closes cleanly (an engine worker killed mid-start is fine,
    // but the database and a running run deserve their shutdown).
    const signal = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    // Loaded here, not at the top: the other commands need none of the API's modules.
    const { deferredApi, startBackend } = await import('../backend.ts');
    const ready = startBackend({ mode: 'web', settings: createConfSettings() });
    // Its failure is reported below, once the server is up; not an unhandled rejection meanwhile.
    ready.catch(() => {});
    // The page is served at once; its requests wait for the backend (engine, database), which
    // starts meanwhile.
    let server: WebServer;
    try {
      server = await startWebServer({ api: deferredApi(ready), port, host, staticDir });
    } catch (e) {
      await ready.then((b) => b.close()).catch(() => {});
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') throw new UsageError(`port ${port} is in use; choose another with --port, or --port 0 for any free one`);
      if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') throw new UsageError(`cannot bind to ${host}: no such address on this machine`);
      throw e;
    }
    // performance.now() counts from the start of the process: the whole start-up, modules included.
    const seconds = () => (performance.now() / 1000).toFixed(2);
    process.stdout.write(`Autodidact (web mode) is listening (${seconds()} s after start)\n`);
    process.stdout.write(`  open: ${server.url}\n`);
    if (server.exposed) {
      const other = host === '0.0.0.0' || host === '::' ? ` (from other machines: http://${os.hostname()}:${server.port}/?token=...)` : '';
      process.stderr.write(
        `warning: bound to ${host}, which other machines can reach${other}. Anyone who gets the token can drive the ` +
          'app: start runs, read every dataset, fill the disk with uploads. Prefer the default 127.0.0.1 and an SSH tunnel.\n',
      );
    }
    if (!values['no-open']) openBrowser(server.url);

    const first = await Promise.race([
      ready.then(
        (backend) => ({ backend }),
        (error: unknown) => ({ error }),
      ),
      signal.then((sig) => ({ sig })),
    ]);
    if ('error' in first) {
      await server.close();
      throw first.error;
    }
    if ('backend' in first) {
      process.stdout.write(`  ready: the API answers (${seconds()} s after start); data folder ${first.backend.home}\n`);
      process.stdout.write('Press Ctrl-C to stop.\n');
      first.backend.engineReady.then(
        () => process.stdout.write(`  engine worker up (${seconds()} s after start)\n`),
        () => {},
      );
    }
    const sig = 'sig' in first ? first.sig : await signal;
    process.stdout.write(`\n${sig === 'SIGINT' ? 'Interrupted' : 'Terminated'}: pausing runs and closing (Ctrl-C again forces it).\n`);
    // A second Ctrl-C while a step finishes: leave at once (the engine host's exit hook still
    // lets the current native call return, so the process does not abort).
    process.once('SIGINT', () => process.exit(130));
    await server.close();
    await ready.then((b) => b.close()).catch(() => {});
    process.stdout.write('Stopped.\n');
    return 0;
  },
});
