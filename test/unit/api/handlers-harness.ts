// The API service over a real temporary database, with a run manager and event hub that record
// what the handlers asked of them (the handlers are the unit under test, not the engine), and an
// engine stand-in that answers only the devices probe.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApiErrorShape, Events, EventName, LogLine, ParamsOf, RequestName, ResultOf, RunProgress, Settings } from '../../../contract/index.ts';
import type { EventHub, RunManager, SettingsStore, StartOptions } from '../../../main/api/interfaces.ts';
import { type ApiDeps, createApiService } from '../../../main/api/service.ts';
import type { FolderPurpose } from '../../../main/api/handlers/types.ts';
import { type ExperimentDb, openDatabase, updateRunStatus } from '../../../main/db/index.ts';
import { databasePath } from '../../../main/runs/home.ts';

export class FakeRuns implements RunManager {
  readonly calls: { op: string; runId: number; options?: StartOptions }[] = [];
  readonly active = new Set<number>();
  readonly progressOf = new Map<number, RunProgress>();
  readonly logs = new Map<number, LogLine[]>();
  constructor(private readonly db: () => ExperimentDb) {}
  start(runId: number, options: StartOptions): void {
    this.calls.push({ op: 'start', runId, options });
    this.active.add(runId);
  }
  // Like the real manager: the run ends up paused / stopped in the database.
  async pause(runId: number): Promise<void> {
    this.calls.push({ op: 'pause', runId });
    this.active.delete(runId);
    updateRunStatus(this.db(), runId, 'paused');
  }
  async stop(runId: number): Promise<void> {
    this.calls.push({ op: 'stop', runId });
    this.active.delete(runId);
    updateRunStatus(this.db(), runId, 'stopped');
  }
  progress(runId: number): RunProgress | null {
    return this.progressOf.get(runId) ?? null;
  }
  isActive(runId: number): boolean {
    return this.active.has(runId);
  }
  log(runId: number, tail: number): LogLine[] {
    return (this.logs.get(runId) ?? []).slice(-tail);
  }
  async shutdown(): Promise<void> {}
}

export class FakeEvents implements EventHub {
  readonly emitted: { event: EventName; payload: unknown }[] = [];
  private readonly listeners = new Set<<E extends EventName>(event: E, payload: Events[E]) => void>();
  emit<E extends EventName>(event: E, payload: Events[E]): void {
    this.emitted.push({ event, payload });
    for (const l of this.listeners) l(event, payload);
  }
  subscribe(listener: <E extends EventName>(event: E, payload: Events[E]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  flush(): void {}
  close(): void {}
  of(event: EventName): unknown[] {
    return this.emitted.filter((e) => e.event === event).map((e) => e.payload);
  }
}

export class MemorySettings implements SettingsStore {
  value: Settings = { dataFolder: null, defaultDevice: 'cpu', threads: null };
  get(): Settings {
    return { ...this.value };
  }
  set(patch: Partial<Settings>): Settings {
    this.value = { ...this.value, ...patch };
    return this.get();
  }
}

export const DEVICES_RESULT = {
  devices: [
    { name: 'cpu' as const, available: true, adapter: 'Test CPU · 4 cores' },
    { name: 'webgpu' as const, available: false, reason: 'no GPU adapter' },
    { name: 'cuda' as const, available: false, reason: 'the CUDA provider is not installed' },
  ],
  auto: 'cpu',
  threads: 4,
  onnxruntime: '1.22.0',
  platform: 'linux-x64',
};

export interface Harness {
  home: string;
  db: ExperimentDb;
  deps: ApiDeps;
  runs: FakeRuns;
  events: FakeEvents;
  settings: MemorySettings;
  engineCalls: string[];
  /** What the devices probe does (replace to make it fail). */
  probe: { fn: () => Promise<unknown> };
  call<K extends RequestName>(channel: K, params: ParamsOf<K>): Promise<ResultOf<K>>;
  /** The ApiError a request is refused with (fails the test if it succeeds). */
  refused(channel: string, params: unknown): Promise<ApiErrorShape>;
  close(): void;
}

/** A stand-in for the desktop shell's folder dialog: answers what `answers` holds, in turn, and records what it was asked for. */
export class FakePicker {
  readonly asked: FolderPurpose[] = [];
  constructor(readonly answers: (string | null)[] = []) {}
  readonly pick = async (purpose: FolderPurpose): Promise<string | null> => {
    this.asked.push(purpose);
    if (this.answers.length === 0) throw new Error(`the test picker was asked for a ${purpose} folder it has no answer for`);
    return this.answers.shift()!;
  };
}

/**
 * The service on a fresh temporary data folder, or on `sharedHome` (another process's too; left
 * in place at close). In web mode, unless a `picker` makes it the desktop app's.
 */
export function createHarness(sharedHome?: string, options: { picker?: FakePicker } = {}): Harness {
  const home = sharedHome ?? fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-api-'));
  const databaseFile = databasePath(home);
  const db = openDatabase(databaseFile);
  const runs = new FakeRuns(() => db);
  const events = new FakeEvents();
  const settings = new MemorySettings();
  const engineCalls: string[] = [];
  const probe = { fn: async (): Promise<unknown> => DEVICES_RESULT };
  const engine = {
    call: async (command: string) => {
      engineCalls.push(command);
      if (command !== 'devices') throw new Error(`the test engine only answers "devices", not "${command}"`);
      return probe.fn();
    },
  } as unknown as ApiDeps['engine'];
  const deps: ApiDeps = {
    db,
    databaseFile,
    home,
    mode: options.picker ? 'electron' : 'web',
    version: '9.9.9',
    engine,
    runs,
    events,
    settings,
    ...(options.picker && { pickFolder: options.picker.pick }),
  };
  const api = createApiService(deps);
  return {
    home,
    db,
    deps,
    runs,
    events,
    settings,
    engineCalls,
    probe,
    call: (channel, params) => api.handle(channel, params) as never,
    async refused(channel, params) {
      try {
        await api.handle(channel, params);
      } catch (e) {
        return (e as { toJSON(): ApiErrorShape }).toJSON();
      }
      throw new Error(`request ${channel} ${JSON.stringify(params)} was not refused`);
    },
    close() {
      db.close();
      if (sharedHome === undefined) fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Every row of the tables an import writes, to show a refused one changed nothing. */
export function datasetTables(db: ExperimentDb): unknown {
  return {
    datasets: db.sql.prepare('SELECT * FROM datasets ORDER BY id').all(),
    items: db.sql.prepare('SELECT * FROM dataset_items ORDER BY dataset_id, idx').all(),
  };
}
