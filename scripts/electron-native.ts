// `tsx scripts/electron-native.ts [--force]` (run by `npm start` before `electron .`; `npm run
// rebuild:electron` passes --force): builds better-sqlite3 for the installed Electron into
// out/native/electron-<version>-<platform>-<arch>/better_sqlite3.node, next to the Node build in
// node_modules that the command line and the tests load. main/index.ts points the database at it
// (main/db/native-binding.ts). Nothing happens when the file is already there.
//
// The build happens in a copy of node_modules/better-sqlite3 in a temporary folder, so the Node
// build is never touched: first the prebuilt binary better-sqlite3 publishes for this Electron
// (prebuild-install, from better-sqlite3's own dependencies; downloads from GitHub), else a
// compile against Electron's headers (node-gyp; downloads the headers from electronjs.org and
// needs Python and a C++ compiler).
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { electronNativeFile } from '../main/db/native-binding.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HEADERS_URL = 'https://electronjs.org/headers';

export interface EnsureOptions {
  /** The checkout (default: this script's). */
  root?: string;
  /** Build again even when the file is there. */
  force?: boolean;
  /** Default: node_modules/electron/package.json's version. */
  electronVersion?: string;
  platform?: string;
  arch?: string;
  /** Electron's headers for node-gyp (tests point it at an unreachable address). */
  headersUrl?: string;
  /** The prebuilt tarball's URL (default: better-sqlite3's GitHub release for this Electron; tests point it elsewhere). */
  prebuiltUrl?: string;
  /** node-gyp's folder for downloaded headers (default: its own, in the user's cache). */
  nodeGypDevDir?: string;
  /** Limit for the download of the prebuilt binary, and for the compile, in ms. */
  prebuiltTimeoutMs?: number;
  compileTimeoutMs?: number;
  /** Skip a way of building (tests). */
  skipPrebuilt?: boolean;
  skipCompile?: boolean;
  log?: (line: string) => void;
}

export type EnsureResult = { file: string; how: 'present' | 'prebuilt' | 'compiled' };

export class NativeBuildError extends Error {
  override name = 'NativeBuildError';
}

/** The Electron version node_modules holds. */
export function installedElectronVersion(root: string = ROOT): string {
  const file = path.join(root, 'node_modules', 'electron', 'package.json');
  let version: unknown;
  try {
    version = (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version;
  } catch (e) {
    throw new NativeBuildError(`Electron is not installed (${file}: ${(e as Error).message}). Run \`npm install\`.`);
  }
  if (typeof version !== 'string' || !version) throw new NativeBuildError(`${file} has no version. Run \`npm install\` again.`);
  return version;
}

/** The last telling lines of a child's output (no stack frames), for an error message. */
function tail(res: SpawnSyncReturns<string>, lines = 10): string {
  const text = `${res.stdout ?? ''}\n${res.stderr ?? ''}`;
  return text
    .split('\n')
    .filter((l) => l.trim() && !/\bstack\s+at\b|^\s+at\s|gyp ERR! (System|command|cwd|node -v|node-gyp -v|\$npm_|not ok)/.test(l))
    .slice(-lines)
    .map((l) => `    ${l}`)
    .join('\n');
}

const NETWORK = /network connectivity|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|getaddrinfo|socket hang up|self[- ]signed|certificate/i;

/** Why a child failed, in words, from its exit and output. */
export function diagnose(res: SpawnSyncReturns<string>, timeoutMs: number, what: 'download' | 'compile'): string {
  const out = `${res.stdout ?? ''}\n${res.stderr ?? ''}`;
  if ((res.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT' || (res.signal && res.status === null)) {
    return `it did not finish within ${Math.round(timeoutMs / 1000)} s${what === 'download' ? ' (a slow or blocked network?)' : ''}`;
  }
  if (res.error) return res.error.message;
  if (what === 'download' && /No prebuilt binaries found|\b404\b/i.test(out)) return 'no prebuilt binary is published for this Electron, platform and architecture';
  if (NETWORK.test(out)) return what === 'download' ? 'the download failed (no network, or a proxy or firewall in the way)' : "downloading Electron's headers failed (no network, or a proxy or firewall in the way)";
  if (/Could not find any Python|Python is not set/i.test(out)) return 'Python 3 was not found (node-gyp needs it)';
  if (/make: (command )?not found|not found: make|spawn make ENOENT/i.test(out)) return 'make was not found';
  if (/(c\+\+|g\+\+|clang\+\+|cc1plus|\bcc): (command )?not found|could not find any Visual Studio|xcrun: error/i.test(out)) return 'no C++ compiler was found';
  return `it exited with ${res.status ?? res.signal}`;
}

/**
 * npm passes its configuration to scripts as npm_config_* variables, which prebuild-install and
 * node-gyp read: a `nodedir` (Node's headers: the build would be Node's, not Electron's) or
 * `build_from_source` in a user's .npmrc must not redirect this build. The flags set the rest.
 */
const IGNORED_NPM_CONFIG = new Set(['nodedir', 'build_from_source', 'update_binary', 'download', 'runtime', 'target', 'disturl', 'dist_url', 'arch', 'platform', 'devdir']);

export function childEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(([k]) => !/^npm_config_/i.test(k) || !IGNORED_NPM_CONFIG.has(k.slice('npm_config_'.length).toLowerCase().replace(/-/g, '_'))),
  );
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
    windowsHide: true,
    env: childEnv(),
  });
}

/** True when Node itself loads the file: then it was built for Node's ABI, not Electron's. */
function loadsInNode(file: string): boolean {
  const res = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8', timeout: 30_000, windowsHide: true });
  return res.status === 0;
}

/** node-gyp's command-line script: this checkout's (a dependency of electron-builder), else npm's own. */
export function findNodeGyp(root: string = ROOT): string | null {
  const candidates: string[] = [];
  try {
    candidates.push(createRequire(path.join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not in node_modules
  }
  // npm ships node-gyp: next to npm-cli.js when run from an npm script, else next to node.
  if (process.env.npm_execpath) candidates.push(path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const nodeDir = path.dirname(process.execPath);
  candidates.push(
    path.join(nodeDir, '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(nodeDir, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  );
  return candidates.find((c) => fs.existsSync(c)) ?? null;
}

function whatToDo(version: string): string {
  const tools =
    process.platform === 'win32'
      ? 'Visual Studio Build Tools with "Desktop development with C++" and Python 3'
      : process.platform === 'darwin'
        ? 'the Xcode command line tools (`xcode-select --install`)'
        : 'Python 3, make and a C++ compiler (Debian/Ubuntu: `sudo apt install python3 make g++`)';
  return (
    `What to do: the prebuilt binary needs GitHub; the compile needs electronjs.org (Electron ${version}'s headers) and ${tools}. ` +
    'Fix either, then run `npm start` again (`npm run rebuild:electron` forces a rebuild). ' +
    'The command line and `npm run serve` (the app in a browser) do not need this build.'
  );
}

/** Builds better-sqlite3 for Electron into out/native/ unless it is there; see the file comment. */
export function ensureElectronSqlite(options: EnsureOptions = {}): EnsureResult {
  const root = options.root ?? ROOT;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const version = options.electronVersion ?? installedElectronVersion(root);
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const file = electronNativeFile(path.join(root, 'out'), version, platform, arch);
  if (!options.force && fs.existsSync(file)) return { file, how: 'present' };

  const source = path.join(root, 'node_modules', 'better-sqlite3');
  if (!fs.existsSync(path.join(source, 'package.json'))) throw new NativeBuildError(`better-sqlite3 is not installed (${source}). Run \`npm install\`.`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-sqlite-'));
  const work = path.join(tmp, 'better-sqlite3');
  const failures: string[] = [];
  try {
    // Everything but the Node build (and node-gyp's leftovers), so a result can only be Electron's.
    fs.cpSync(source, work, { recursive: true, filter: (src) => path.relative(source, src).split(path.sep)[0] !== 'build' });
    const built = path.join(work, 'build', 'Release', 'better_sqlite3.node');
    let how: EnsureResult['how'] | null = null;

    if (!options.skipPrebuilt) {
      const timeoutMs = options.prebuiltTimeoutMs ?? 120_000;
      let bin: string | null = null;
      try {
        bin = createRequire(path.join(source, 'package.json')).resolve('prebuild-install/bin.js');
      } catch {
        failures.push('the prebuilt binary: prebuild-install (a dependency of better-sqlite3) is not installed');
      }
      if (bin) {
        log(`better-sqlite3 for Electron ${version} (${platform}-${arch}): downloading the prebuilt binary…`);
        const args = [bin, '--runtime', 'electron', '--target', version, '--arch', arch, '--platform', platform, '--verbose'];
        if (options.prebuiltUrl) args.push('--download', options.prebuiltUrl);
        const res = run(process.execPath, args, work, timeoutMs);
        if (res.status === 0 && fs.existsSync(built) && !loadsInNode(built)) how = 'prebuilt';
        else if (res.status === 0 && fs.existsSync(built)) failures.push("the prebuilt binary: it was Node's build, not Electron's");
        else failures.push(`the prebuilt binary: ${diagnose(res, timeoutMs, 'download')}\n${tail(res)}`);
      }
    }

    if (!how && !options.skipCompile) {
      const timeoutMs = options.compileTimeoutMs ?? 20 * 60_000;
      const gyp = findNodeGyp(root);
      if (!gyp) failures.push('the compile: node-gyp was found neither in node_modules nor next to npm');
      else {
        log(`better-sqlite3 for Electron ${version}: compiling it against Electron's headers (a few minutes)…`);
        const args = [gyp, 'rebuild', '--release', '--runtime=electron', `--target=${version}`, `--arch=${arch}`, `--dist-url=${options.headersUrl ?? HEADERS_URL}`];
        if (options.nodeGypDevDir) args.push(`--devdir=${options.nodeGypDevDir}`);
        const res = run(process.execPath, args, work, timeoutMs);
        if (res.status === 0 && fs.existsSync(built) && !loadsInNode(built)) how = 'compiled';
        else if (res.status === 0 && fs.existsSync(built)) failures.push("the compile (node-gyp): it built for Node's headers, not Electron's (is `nodedir` set for node-gyp?)");
        else failures.push(`the compile (node-gyp): ${diagnose(res, timeoutMs, 'compile')}\n${tail(res)}`);
      }
    }

    if (!how) {
      throw new NativeBuildError(
        `Could not build better-sqlite3 (the database's native module) for Electron ${version} (${platform}-${arch}):\n` +
          failures.map((f) => `  - ${f}`).join('\n') +
          `\n${whatToDo(version)}`,
      );
    }
    // Into place in one rename, so an interrupted copy never leaves a half file that counts as built.
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const partial = `${file}.partial`;
    fs.copyFileSync(built, partial);
    fs.renameSync(partial, file);
    log(`better-sqlite3 for Electron ${version}: ${path.relative(root, file)} (${how})`);
    return { file, how };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    ensureElectronSqlite({ force: process.argv.includes('--force') });
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
