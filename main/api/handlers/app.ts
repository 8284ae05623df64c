// The app itself: what it is and where its data lives, its settings, and the devices it can train on.
import fs from 'node:fs';
import path from 'node:path';
import { ApiError, type DevicesReport, type Settings } from '../../../contract/index.ts';
import { listRuns } from '../../db/index.ts';
import type { ApiDeps, HandlerTable } from './types.ts';

interface DeviceCache {
  report: DevicesReport | null;
  /** The probe in flight, shared by every caller that waits for it. */
  pending: Promise<DevicesReport> | null;
}

// Keyed by the engine, so a restarted engine (a new host) probes again.
const deviceCaches = new WeakMap<object, DeviceCache>();

function anyRunInEngine(deps: ApiDeps): boolean {
  return listRuns(deps.db, { status: ['running', 'queued'] }).some((r) => deps.runs.isActive(r.id));
}

async function probeDevices(deps: ApiDeps, cache: DeviceCache): Promise<DevicesReport> {
  if (!cache.pending) {
    cache.pending = deps.engine
      .call('devices', {})
      .then((r) => {
        const report: DevicesReport = {
          devices: r.devices.map((d) => ({
            name: d.name,
            available: d.available,
            ...(d.reason !== undefined && { reason: d.reason }),
            ...(d.adapter !== undefined && { adapter: d.adapter }),
          })),
          auto: r.auto,
          threads: r.threads,
          onnxruntime: r.onnxruntime,
        };
        cache.report = report;
        return report;
      })
      .finally(() => {
        cache.pending = null;
      });
  }
  return cache.pending;
}

/**
 * A picked data folder must be absolute (a relative one would depend on where the app is started
 * from) and a folder. (The dialog gives both; the check keeps a bad picker from storing junk.)
 */
function checkDataFolder(folder: string): void {
  if (!path.isAbsolute(folder)) throw new ApiError('SETUP', `the data folder "${folder}" is not an absolute path; choose the folder again`);
  if (!fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) throw new ApiError('SETUP', `the data folder "${folder}" is not a folder; choose the folder again`);
}

/** How web mode's data folder is chosen: by how `autodidact serve` is started. */
export function webDataFolderHint(deps: Pick<ApiDeps, 'home'>): string {
  return `web mode uses the data folder it was started with (now ${deps.home}); to use another, restart it as AUTODIDACT_HOME=FOLDER autodidact serve`;
}

export const appHandlers = {
  'app.info': (_p, deps) => ({
    version: deps.version,
    mode: deps.mode,
    dataHome: deps.home,
    databaseFile: deps.databaseFile,
    platform: `${process.platform}-${process.arch}`,
  }),

  'settings.get': (_p, deps) => deps.settings.get(),

  'settings.set': (p, deps) => {
    // Only the fields the request names change; an explicit null is a value (back to the default).
    const patch: Partial<Settings> = {};
    if (p.dataFolder !== undefined) patch.dataFolder = p.dataFolder;
    if (p.defaultDevice !== undefined) patch.defaultDevice = p.defaultDevice;
    if (p.threads !== undefined) patch.threads = p.threads;
    return deps.settings.set(patch);
  },

  'settings.chooseDataFolder': async (_p, deps) => {
    if (!deps.pickFolder) throw new ApiError('UNAVAILABLE', `The data folder cannot be chosen from the page: ${webDataFolderHint(deps)}.`);
    const folder = await deps.pickFolder('dataFolder');
    if (folder === null) return { chosen: false, settings: deps.settings.get() };
    checkDataFolder(folder);
    return { chosen: true, settings: deps.settings.set({ dataFolder: folder }) };
  },

  'devices.list': async (p, deps) => {
    let cache = deviceCaches.get(deps.engine);
    if (!cache) deviceCaches.set(deps.engine, (cache = { report: null, pending: null }));
    // The worker runs one command at a time: while a run trains, a probe would wait for the
    // whole run, so the last answer stands in (the devices rarely change under a running app).
    if (cache.report && (!p.refresh || anyRunInEngine(deps))) return cache.report;
    return probeDevices(deps, cache);
  },
} satisfies HandlerTable<'app.info' | 'settings.get' | 'settings.set' | 'settings.chooseDataFolder' | 'devices.list'>;
