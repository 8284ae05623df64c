// Which better-sqlite3 native module to load. A checkout keeps two builds side by side:
// node_modules/better-sqlite3/build/Release/better_sqlite3.node, built for Node by `npm install`
// (the command line, the tests, web mode), and a copy built for Electron's ABI under
// out/native/electron-<version>-<platform>-<arch>/ (scripts/electron-native.ts, run by
// `npm start`). The Electron shell (main/index.ts) names the second in AUTODIDACT_NATIVE_SQLITE
// when it runs from a checkout; the packaged app needs neither, because electron-builder rebuilds
// node_modules' copy for Electron when packaging. Nothing here imports electron: the engine
// worker opens the database too and learns of the file through the environment it inherits.
import path from 'node:path';

/** The environment variable naming the better-sqlite3 `.node` file to load under Electron. */
export const NATIVE_SQLITE_ENV = 'AUTODIDACT_NATIVE_SQLITE';

/** The folder, under a checkout's out/, of the better-sqlite3 build for one Electron. */
export function electronNativeDir(outDir: string, electronVersion: string, platform: string = process.platform, arch: string = process.arch): string {
  return path.join(outDir, 'native', `electron-${electronVersion.replace(/^v/, '')}-${platform}-${arch}`);
}

/** The better-sqlite3 `.node` file built for one Electron (see electronNativeDir). */
export function electronNativeFile(outDir: string, electronVersion: string, platform: string = process.platform, arch: string = process.arch): string {
  return path.join(electronNativeDir(outDir, electronVersion, platform, arch), 'better_sqlite3.node');
}

/**
 * The `.node` file openDatabase passes to better-sqlite3 as `nativeBinding`, or undefined for
 * the package's own build. An explicit option wins; the environment variable counts only inside
 * Electron, so a Node process that inherits it (a terminal started from the app) still loads
 * the Node build.
 */
export function chooseNativeBinding(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  versions: NodeJS.ProcessVersions = process.versions,
): string | undefined {
  if (explicit) return explicit;
  const fromEnv = env[NATIVE_SQLITE_ENV];
  return versions.electron && fromEnv ? fromEnv : undefined;
}
