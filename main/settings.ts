// The app's settings (not experiments): the data folder, the default device, the onnxruntime
// threads, and the desktop window's bounds. The desktop app keeps them with electron-store, web
// mode and the command line with `conf` (the library electron-store is built on): same file name,
// same format, same folder, so a setting changed in one shows in the other.
//
// Values are validated when read, not by conf's JSON schema: a hand-edited or half-written file
// must never stop the app from starting, so an invalid value simply reads as its default.
import path from 'node:path';
import Conf from 'conf';
import { z } from 'zod';
import { DEVICE_REQUESTS, type Settings } from '../contract/index.ts';
import type { SettingsStore } from './api/interfaces.ts';
import { dataHome } from './runs/home.ts';

export const DEFAULT_SETTINGS: Settings = { dataFolder: null, defaultDevice: 'auto', threads: null };

/** The desktop window's last size and position (x/y absent: let the system place it). */
export interface WindowBounds {
  width: number;
  height: number;
  x?: number;
  y?: number;
  maximized?: boolean;
}

export interface DesktopSettingsStore extends SettingsStore {
  windowBounds(): WindowBounds | null;
  setWindowBounds(bounds: WindowBounds): void;
}

/** The settings file's name (without `.json`), as electron-store names it by default. */
export const SETTINGS_NAME = 'config';

const fields = {
  dataFolder: z.string().min(1).nullable(),
  defaultDevice: z.enum(DEVICE_REQUESTS),
  threads: z.number().int().min(1).max(1024).nullable(),
};

const boundsSchema = z.object({
  width: z.number().int().min(200).max(100_000),
  height: z.number().int().min(150).max(100_000),
  x: z.number().int().optional(),
  y: z.number().int().optional(),
  maximized: z.boolean().optional(),
});

/** The part of conf / electron-store this module uses. */
interface KeyValueStore {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

function read(store: KeyValueStore): Settings {
  const out = { ...DEFAULT_SETTINGS } as Record<keyof Settings, unknown>;
  for (const key of Object.keys(fields) as (keyof Settings)[]) {
    const parsed = fields[key].safeParse(store.get(key));
    if (parsed.success) out[key] = parsed.data;
  }
  return out as Settings;
}

/** A SettingsStore (with the window bounds) over any conf-like key-value store. */
export function settingsOver(store: KeyValueStore): DesktopSettingsStore {
  return {
    get: () => read(store),
    set(patch) {
      // The API validated the patch already; validate again so a direct caller cannot store junk.
      const checked = z.object(fields).partial().strict().parse(patch);
      for (const [key, value] of Object.entries(checked)) {
        if (value !== undefined) store.set(key, value);
      }
      return read(store);
    },
    windowBounds() {
      const parsed = boundsSchema.safeParse(store.get('window'));
      return parsed.success ? parsed.data : null;
    },
    setWindowBounds(bounds) {
      store.set('window', boundsSchema.parse(bounds));
    },
  };
}

/**
 * The folder the settings file lives in: AUTODIDACT_HOME when set (an isolated home, e.g. for
 * tests, keeps its own settings), else Electron's userData folder for "Autodidact".
 */
export function settingsFolder(env: Record<string, string | undefined> = process.env): string {
  return dataHome({ env });
}

/** Settings through `conf`: web mode and the command line. `cwd` picks the folder (tests). */
export function createConfSettings(options: { cwd?: string } = {}): DesktopSettingsStore {
  const conf = new Conf<Record<string, unknown>>({
    cwd: path.resolve(options.cwd ?? settingsFolder()),
    configName: SETTINGS_NAME,
    // A corrupt file (a crash mid-write on an old version, a bad hand edit) starts over rather
    // than refusing to start: it holds three preferences and a window size, nothing of value.
    clearInvalidConfig: true,
    defaults: { ...DEFAULT_SETTINGS },
  });
  return settingsOver(conf);
}

/** The data folder to use: AUTODIDACT_HOME, else the settings' data folder, else the default. */
export function resolveDataHome(settings: Settings, env: Record<string, string | undefined> = process.env): string {
  if (env.AUTODIDACT_HOME) return dataHome({ env });
  if (settings.dataFolder) return path.resolve(settings.dataFolder);
  return dataHome({ env });
}

/**
 * The onnxruntime threads for the engine: AUTODIDACT_THREADS (as for the data folder, the
 * environment wins), else the settings' value, else undefined (every core).
 */
export function resolveThreads(settings: Settings, env: Record<string, string | undefined> = process.env): number | undefined {
  const fromEnv = Number(env.AUTODIDACT_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  return settings.threads ?? undefined;
}
