// The data folder: where the database, run checkpoints and imported models live. The command
// line and the desktop app must agree on it, or a run started in a terminal would not show in
// the app: so without AUTODIDACT_HOME it is the folder Electron's app.getPath('userData') gives
// for the app name "Autodidact", computed here without Electron.
import os from 'node:os';
import path from 'node:path';

export const APP_NAME = 'Autodidact';

export interface HomeEnvironment {
  env?: Record<string, string | undefined>;
  platform?: NodeJS.Platform;
  homedir?: string;
}

/** Electron's appData folder for a platform (the parent of userData). */
function appDataDir(env: Record<string, string | undefined>, platform: NodeJS.Platform, home: string): string {
  if (platform === 'win32') return env.APPDATA || path.win32.join(home, 'AppData', 'Roaming');
  if (platform === 'darwin') return path.posix.join(home, 'Library', 'Application Support');
  // Electron (via GLib) only honours an absolute XDG_CONFIG_HOME, per the XDG spec.
  const xdg = env.XDG_CONFIG_HOME;
  return xdg && path.posix.isAbsolute(xdg) ? xdg : path.posix.join(home, '.config');
}

/** The absolute data folder: AUTODIDACT_HOME when set (non-empty), else the app's userData folder. */
export function dataHome(e: HomeEnvironment = {}): string {
  const env = e.env ?? process.env;
  const platform = e.platform ?? process.platform;
  const override = env.AUTODIDACT_HOME;
  if (override) return path.resolve(override);
  const join = platform === 'win32' ? path.win32.join : path.posix.join;
  return join(appDataDir(env, platform, e.homedir ?? os.homedir()), APP_NAME);
}

/** The experiment database inside a data folder. */
export function databasePath(home: string): string {
  return path.join(home, 'autodidact.db');
}

/** Where a run's checkpoints go. */
export function runDir(home: string, runId: number): string {
  return path.join(home, 'runs', String(runId));
}

/** Where imported models are copied. */
export function modelsDir(home: string): string {
  return path.join(home, 'models');
}
