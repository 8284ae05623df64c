// The seams between the API handlers (main/api/handlers/), the run manager (which drives runs in
// the engine worker) and the event hub (which batches live data for the transports). Each side
// is written against these interfaces only.
import type { Events, EventName, LogLine, RunProgress, Settings } from '../../contract/index.ts';

/** Fans events out to every transport, coalescing live run data to at most ten updates a second per run. */
export interface EventHub {
  emit<E extends EventName>(event: E, payload: Events[E]): void;
  subscribe(listener: <E extends EventName>(event: E, payload: Events[E]) => void): () => void;
  /** Send everything still held back (tests, shutdown). */
  flush(): void;
  close(): void;
}

export interface StartOptions {
  /** Continue from the run's last checkpoint (a paused, stopped or failed run). */
  resume: boolean;
}

/**
 * Runs recorded runs in the engine worker, one at a time (one onnxruntime session at a time);
 * runs started while another trains wait in a queue (status 'queued').
 */
export interface RunManager {
  start(runId: number, options: StartOptions): void;
  /** Stops at the next step boundary after saving a checkpoint; the run becomes 'paused' and can resume. */
  pause(runId: number): Promise<void>;
  /** Stops at the next step boundary; the run becomes 'stopped'. A queued run is dropped from the queue. */
  stop(runId: number): Promise<void>;
  /** Live progress of a run in the engine (or queued), else null. */
  progress(runId: number): RunProgress | null;
  isActive(runId: number): boolean;
  /** The run's log (the manager's and the engine's lines), newest last. */
  log(runId: number, tail: number): LogLine[];
  /** Stops every run (pausing them, so they can resume) and waits for the engine to be idle. */
  shutdown(): Promise<void>;
}

/** The app's settings (not experiments): electron-store in the desktop app, the same file format through `conf` in web mode. */
export interface SettingsStore {
  get(): Settings;
  set(patch: Partial<Settings>): Settings;
}
