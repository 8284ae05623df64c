// The app itself: what it is and where its data lives, its settings, and the devices it can train on.
import fs from 'node:fs';
import path from 'node:path';
import { ApiError, type DevicesReport, type Settings } from '../../../preload/contract.ts';
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
 * A data folder must be absolute (a relative one would depend on where the app is started from)
 * and must not be a file. It need not exist yet: it is created at the next start.
 */
function checkDataFolder(folder: string): void {
  const refuse = (message: string) => {
    throw new ApiError('BAD_REQUEST', `dataFolder: ${message}`, [{ path: 'dataFolder', message }]);
  };
  if (!path.isAbsolute(folder)) refuse(`"${folder}" is not an absolute path; give the full path of the folder`);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(folder);
  } catch {
    return; // created at the next start
  }
  if (!stat.isDirectory()) refuse(`"${folder}" is a file, not a folder`);
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
    if (p.dataFolder !== undefined && p.dataFolder !== null) checkDataFolder(p.dataFolder);
    if (p.dataFolder !== undefined) patch.dataFolder = p.dataFolder;
    if (p.defaultDevice !== undefined) patch.defaultDevice = p.defaultDevice;
    if (p.threads !== undefined) patch.threads = p.threads;
    return deps.settings.set(patch);
  },

  'devices.list': async (p, deps) => {
    let cache = deviceCaches.get(deps.engine);
    if (!cache) deviceCaches.set(deps.engine, (cache = { report: null, pending: null }));
    // The worker runs one command at a time: while a run trains, a probe would wait for the
    // whole run, so the last answer stands in (the devices rarely change under a running app).
    if (cache.report && (!p.refresh || anyRunInEngine(deps))) return cache.report;
    return probeDevices(deps, cache);
  },
} satisfies HandlerTable<'app.info' | 'settings.get' | 'settings.set' | 'devices.list'>;
