// `npm run build`: the desktop app's bundles, then the renderer.
//   main/index.ts        → out/main/index.js    (ESM, Node; package.json "main")
//   main/worker.ts        → out/main/worker.js   (next to it: engine/host.ts starts ./worker.js)
//   main/sandbox/worker.ts → out/main/sandbox-worker.js (next to it: sandbox/pool.ts starts it)
//   main/cli/index.ts    → out/main/cli.js      (the command line, bundled: `npm run serve` starts
//                                                 in about half the time tsx needs for the sources)
//   preload/index.ts     → out/preload/index.cjs (CommonJS, everything inlined but electron:
//                                                 a sandboxed preload can neither load ES modules
//                                                 nor require packages)
//   renderer/            → out/renderer/         (vite)
// Packages stay external in the main-process bundles: native modules (onnxruntime-node,
// better-sqlite3) cannot be bundled, and electron-builder ships the production dependencies.
// The build then checks that every package the bundles import is a production dependency, so a
// packaged app cannot miss one.
//
// Flags: --skip-renderer (only the main-process bundles), --dev (no minification of the preload).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { type BuildOptions, type Metafile, build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = path.join(root, 'out');

/** Electron 41 ships Node 24; the bundles need nothing newer than the engines field's Node 20. */
const NODE_TARGET = 'node20';

const shared: BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: NODE_TARGET,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
};

function packageName(specifier: string): string | null {
  if (specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0])) return null;
  if (specifier.startsWith('.') || path.isAbsolute(specifier)) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/** Every external package a bundle imports must be a production dependency (or Electron itself). */
function checkExternals(metafile: Metafile, what: string): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), 'electron']);
  const used = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imp of output.imports) {
      if (!imp.external) continue;
      const name = packageName(imp.path);
      if (name) used.add(name);
    }
  }
  const missing = [...used].filter((n) => !allowed.has(n));
  if (missing.length) throw new Error(`${what} imports ${missing.join(', ')}, which package.json does not list under "dependencies": the packaged app would not find them`);
  return [...used].sort();
}

/** Bundle the Electron entry, the engine worker and the CLI into `dir` (default out/main); returns the packages they import. */
export async function buildMain(dir = path.join(out, 'main')): Promise<string[]> {
  const result = await build({
    ...shared,
    entryPoints: { index: 'main/index.ts', worker: 'main/worker.ts', 'sandbox-worker': 'main/sandbox/worker.ts', cli: 'main/cli/index.ts' },
    outdir: dir,
    format: 'esm',
    // Bare imports (packages) stay imports; the app's own TypeScript is bundled.
    packages: 'external',
    outExtension: { '.js': '.js' },
  });
  return checkExternals(result.metafile!, 'the main-process bundle');
}

/** Bundle the preload to CommonJS at `file` (default out/preload/index.cjs) and check it loads as a script. */
export async function buildPreload(file = path.join(out, 'preload', 'index.cjs'), minify = true): Promise<void> {
  const result = await build({
    ...shared,
    entryPoints: ['preload/index.ts'],
    outfile: file,
    format: 'cjs',
    external: ['electron'],
    minify,
  });
  const externals = checkExternals(result.metafile!, 'the preload bundle');
  if (externals.join() !== 'electron') throw new Error(`the preload must inline everything but electron; it imports ${externals.join(', ')}`);
  // A sandboxed preload is run as a classic script with `require` for electron only: make sure
  // it compiles as one (no top-level import/export, no import.meta).
  const code = fs.readFileSync(file, 'utf8');
  new vm.Script(code, { filename: file });
  if (/\bimport\.meta\b/.test(code)) throw new Error(`${file} uses import.meta, which a CommonJS preload does not have`);
}

function buildRenderer(): void {
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const res = spawnSync(process.execPath, [vite, 'build', '--config', 'renderer/vite.config.ts'], { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) throw new Error(`the renderer build failed (vite exited with ${res.status ?? res.signal})`);
}

async function main(args: Set<string>): Promise<void> {
  const started = performance.now();
  fs.rmSync(path.join(out, 'main'), { recursive: true, force: true });
  fs.rmSync(path.join(out, 'preload'), { recursive: true, force: true });
  const [externals] = await Promise.all([buildMain(), buildPreload(undefined, !args.has('--dev'))]);
  process.stdout.write(`out/main/{index,worker,sandbox-worker,cli}.js (external: ${externals.join(', ')}), out/preload/index.cjs\n`);
  if (!args.has('--skip-renderer')) buildRenderer();
  process.stdout.write(`built in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

// Run when executed (`tsx scripts/build.ts`); the bundle smoke test imports the functions.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(new Set(process.argv.slice(2))).catch((e: unknown) => {
    process.stderr.write(`build failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
