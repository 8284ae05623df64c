// Runs: one training run each, with the full configuration it was started with (enough to
// resume it), its status and error, and the progress the step writer keeps up to date.
import { DatabaseError, type ExperimentDb } from './database.ts';

export const RUN_STATUSES = ['queued', 'running', 'paused', 'completed', 'failed', 'stopped'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
const FINISHED: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'stopped']);

export interface NewRun {
  name: string;
  method: string;
  model: string;
  dataset: string;
  datasetId?: number | null;
  config: unknown;
}

export interface RunInfo {
  id: number;
  name: string;
  method: string;
  model: string;
  dataset: string;
  datasetId: number | null;
  config: unknown;
  status: RunStatus;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The last step recorded, or null before the first. */
  currentStep: number | null;
  bestMetric: number | null;
  bestStep: number | null;
}

interface RunRow {
  id: number;
  name: string;
  method: string;
  model: string;
  dataset: string;
  dataset_id: number | null;
  config: string;
  status: RunStatus;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  current_step: number | null;
  best_metric: number | null;
  best_step: number | null;
}

const toRun = (r: RunRow): RunInfo => ({
  id: r.id,
  name: r.name,
  method: r.method,
  model: r.model,
  dataset: r.dataset,
  datasetId: r.dataset_id,
  config: JSON.parse(r.config),
  status: r.status,
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  currentStep: r.current_step,
  bestMetric: r.best_metric,
  bestStep: r.best_step,
});

export function createRun(db: ExperimentDb, run: NewRun): RunInfo {
  const config = JSON.stringify(run.config);
  if (config === undefined) throw new DatabaseError('INVALID', 'A run needs a JSON-serialisable config.');
  return db.write(`creating run "${run.name}"`, () => {
    const { lastInsertRowid } = db
      .stmt('INSERT INTO runs (name, method, model, dataset, dataset_id, config) VALUES (?, ?, ?, ?, ?, ?)')
      .run(run.name, run.method, run.model, run.dataset, run.datasetId ?? null, config);
    return getRun(db, Number(lastInsertRowid)) as RunInfo;
  });
}

export function getRun(db: ExperimentDb, id: number): RunInfo | undefined {
  const r = db.stmt<RunRow>('SELECT * FROM runs WHERE id = ?').get(id);
  return r && toRun(r);
}

export interface RunQuery {
  status?: RunStatus | readonly RunStatus[];
  limit?: number;
  offset?: number;
}

/** Runs, newest first. */
export function listRuns(db: ExperimentDb, q: RunQuery = {}): RunInfo[] {
  const statuses = q.status === undefined ? [] : typeof q.status === 'string' ? [q.status] : [...q.status];
  const where = statuses.length ? `WHERE status IN (${statuses.map(() => '?').join(', ')})` : '';
  return db
    .stmt<RunRow>(`SELECT * FROM runs ${where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`)
    .all(...statuses, q.limit ?? -1, q.offset ?? 0)
    .map(toRun);
}

/**
 * Sets a run's status. 'running' stamps started_at the first time and clears a previous finish
 * and error (a resumed run); completed / failed / stopped stamp finished_at. `error` is kept
 * only with 'failed'.
 */
export function updateRunStatus(db: ExperimentDb, id: number, status: RunStatus, error?: string | null): RunInfo {
  if (!RUN_STATUSES.includes(status)) throw new DatabaseError('INVALID', `Unknown run status "${String(status)}".`);
  return db.write(`updating run ${id}`, () => {
    const now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    const sets =
      status === 'running'
        ? `started_at = coalesce(started_at, ${now}), finished_at = NULL, error = NULL`
        : FINISHED.has(status)
          ? `finished_at = ${now}, error = ?`
          : 'error = NULL';
    // A failed run keeps its error; a stopped one the reason it was stopped for, where there is one.
    const args = FINISHED.has(status) ? [status, status === 'failed' || status === 'stopped' ? (error ?? null) : null, id] : [status, id];
    const res = db.stmt(`UPDATE runs SET status = ?, ${sets} WHERE id = ?`).run(...args);
    if (res.changes === 0) throw new DatabaseError('NOT_FOUND', `No run ${id}.`);
    return getRun(db, id) as RunInfo;
  });
}

/** Deletes a run and everything it recorded (steps, metrics, rollouts, samples, ...). */
export function deleteRun(db: ExperimentDb, id: number): boolean {
  return db.write(`deleting run ${id}`, () => db.stmt('DELETE FROM runs WHERE id = ?').run(id).changes > 0);
}
