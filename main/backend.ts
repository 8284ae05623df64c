// The composition root both shells use (the Electron window and `autodidact serve`): the data
// folder, the experiment database, the engine worker, the event hub, the run manager and the API
// service, started in order and closed in reverse. Nothing here knows about transports.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError, type ApiService } from '../contract/index.ts';
import type { ApiDeps } from './api/handlers/types.ts';
import type { SettingsStore } from './api/interfaces.ts';
import { type ExperimentDb, openDatabase } from './db/index.ts';
import { EngineHost, restartingEngine } from './engine/host.ts';
import type { WorkerCommands } from './worker-commands.ts';
import { databasePath } from './runs/home.ts';
import { resolveDataHome, resolveThreads } from './settings.ts';

export interface BackendOptions {
  mode: 'electron' | 'web';
  /** The data folder; default: AUTODIDACT_HOME, else the settings' data folder, else the per-user one. */
  home?: string;
  settings: SettingsStore;
  /** onnxruntime threads; default: AUTODIDACT_THREADS, else the settings' value, else every core. */
  threads?: number;
  /** The app's version (Electron knows it from app.getVersion()); default: package.json's. */
  version?: string;
  /** The desktop shell's folder dialog; web mode has none (a request never names a path there). */
  pickFolder?: ApiDeps['pickFolder'];
}

export interface Backend {
  api: ApiService;
  home: string;
  databaseFile: string;
  /** Settles when the engine worker is up (or failed to start: engine calls then fail with why). */
  engineReady: Promise<void>;
  /** Pauses running runs (so they can resume), stops the engine worker, closes the database. */
  close(): Promise<void>;
}

/** How long a closing engine may take to finish its current session run before it is terminated. */
const ENGINE_CLOSE_MS = 20_000;

/** The version in the package.json above this module (the sources, or the bundle in out/main/). */
export function packageVersion(from: string = fileURLToPath(import.meta.url)): string {
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'autodidact' && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) return '0.0.0';
  }
}

export async function startBackend(options: BackendOptions): Promise<Backend> {
  const { mode, settings } = options;
  const saved = settings.get();
  const home = path.resolve(options.home ?? resolveDataHome(saved));
  const databaseFile = databasePath(home);
  // Start-up is dominated by the engine worker loading onnxruntime (on its own thread) and this
  // thread loading the API's modules. The worker starts first; the API is built on a handle that
  // waits for it, so everything that does not need the engine (datasets, runs, reviews) answers
  // as soon as the database is open, and engine calls queue until the worker is up.
  const threads = options.threads ?? resolveThreads(saved);
  // A worker that exits (a failure inside the engine) is replaced at the next call: the run it
  // was training fails with the reason, and the app keeps a working engine.
  const engine = restartingEngine(
    () => EngineHost.start<WorkerCommands>({ threads }),
    (code) => process.stderr.write(`autodidact: the engine worker exited (code ${code}); starting a new one\n`),
  );
  const engineReady = engine.current().then(() => undefined);
  engineReady.catch((e: unknown) => process.stderr.write(`autodidact: the engine did not start: ${e instanceof Error ? e.message : String(e)}\n`));
  const stopEngine = () => engine.latest().then((host) => host.close(ENGINE_CLOSE_MS)).then(() => undefined, () => undefined);

  let db: ExperimentDb | null = null;
  let modules;
  try {
    db = openDatabase(databaseFile);
    modules = await Promise.all([import('./api/events.ts'), import('./api/run-manager.ts'), import('./api/service.ts')]);
  } catch (e) {
    db?.close();
    await stopEngine();
    throw e;
  }
  const [{ createEventHub }, { createRunManager }, { createApiService }] = modules;
  const events = createEventHub();
  const runs = createRunManager({ db, databaseFile, home, engine, events });
  const api = createApiService({ db, databaseFile, home, mode, version: options.version ?? packageVersion(), engine, runs, events, settings, pickFolder: options.pickFolder });

  let closing: Promise<void> | null = null;
  return {
    api,
    home,
    databaseFile,
    engineReady,
    close() {
      closing ??= (async () => {
        try {
          // Pausing saves a checkpoint at the next step boundary, so the run resumes later.
          await runs.shutdown();
        } finally {
          // Events still held back go out before the transports are gone.
          events.flush();
          events.close();
          await stopEngine();
          db?.close();
        }
      })();
      return closing;
    },
  };
}

/**
 * The API before the backend is up: requests wait for it, so the window (or the web page) opens
 * while the engine loads. If the backend fails to start, requests answer UNAVAILABLE with why.
 */
export function deferredApi(ready: Promise<Backend>): ApiService {
  return {
    async handle(channel, params) {
      let backend: Backend;
      try {
        backend = await ready;
      } catch (e) {
        throw new ApiError('UNAVAILABLE', `the app could not start: ${e instanceof Error ? e.message : String(e)}`);
      }
      return backend.api.handle(channel, params);
    },
    subscribe(listener) {
      let unsubscribe: (() => void) | null = null;
      let cancelled = false;
      void ready.then(
        (b) => {
          if (!cancelled) unsubscribe = b.api.subscribe(listener);
        },
        () => {},
      );
      return () => {
        cancelled = true;
        unsubscribe?.();
      };
    },
  };
}
