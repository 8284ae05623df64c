// Runs: one training run each, with the full configuration it was started with (enough to
// resume it), its status and error, and the progress the step writer keeps up to date.
import { MAX_TAG_LENGTH } from '../../contract/index.ts';
import { DatabaseError, type ExperimentDb } from './database.ts';

export const RUN_STATUSES = ['queued', 'running', 'paused', 'completed', 'failed', 'stopped'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
const FINISHED: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'stopped']);

/** local: trained by this app; external: trained elsewhere (verl) and imported. */
export const RUN_KINDS = ['local', 'external'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

export interface NewRun {
  name: string;
  /** Default 'local'. */
  kind?: RunKind;
  method: string;
  model: string;
  dataset: string;
  datasetId?: number | null;
  config: unknown;
}

export interface RunInfo {
  id: number;
  name: string;
  kind: RunKind;
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
  /** A person's tags on the run, sorted. */
  tags: string[];
}

interface RunRow {
  id: number;
  name: string;
  kind: RunKind;
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
  /** JSON array of the run's tags. */
  tags: string;
}

/** A run row with its tags (one JSON array, so a list is still one query). */
const RUN_SELECT = "SELECT runs.*, (SELECT json_group_array(tag) FROM run_tags WHERE run_tags.run_id = runs.id) AS tags FROM runs";

const toRun = (r: RunRow): RunInfo => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
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
  tags: (JSON.parse(r.tags) as string[]).sort(),
});

export function createRun(db: ExperimentDb, run: NewRun): RunInfo {
  const config = JSON.stringify(run.config);
  if (config === undefined) throw new DatabaseError('INVALID', 'A run needs a JSON-serialisable config.');
  return db.write(`creating run "${run.name}"`, () => {
    const { lastInsertRowid } = db
      .stmt('INSERT INTO runs (name, kind, method, model, dataset, dataset_id, config) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(run.name, run.kind ?? 'local', run.method, run.model, run.dataset, run.datasetId ?? null, config);
    return getRun(db, Number(lastInsertRowid)) as RunInfo;
  });
}

export function getRun(db: ExperimentDb, id: number): RunInfo | undefined {
  const r = db.stmt<RunRow>(`${RUN_SELECT} WHERE id = ?`).get(id);
  return r && toRun(r);
}

export interface RunQuery {
  status?: RunStatus | readonly RunStatus[];
  /** Only runs with this tag. */
  tag?: string;
  limit?: number;
  offset?: number;
}

/** Runs, newest first. */
export function listRuns(db: ExperimentDb, q: RunQuery = {}): RunInfo[] {
  const statuses = q.status === undefined ? [] : typeof q.status === 'string' ? [q.status] : [...q.status];
  const conditions = [
    ...(statuses.length ? [`status IN (${statuses.map(() => '?').join(', ')})`] : []),
    ...(q.tag !== undefined ? ['EXISTS (SELECT 1 FROM run_tags WHERE run_tags.run_id = runs.id AND tag = ?)'] : []),
  ];
  const where = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
  return db
    .stmt<RunRow>(`${RUN_SELECT} ${where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`)
    .all(...statuses, ...(q.tag !== undefined ? [q.tag] : []), q.limit ?? -1, q.offset ?? 0)
    .map(toRun);
}

/**
 * Sets a run's status: the one writer of `runs.status`, whoever ends or starts a run (the run
 * loop's process, the run manager, the request handlers, a cluster import). 'running' stamps
 * started_at the first time and clears a previous finish and error (a resumed run); completed /
 * failed / stopped stamp finished_at. `error` is kept with 'failed' and 'stopped' (why it stopped).
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

/** Replaces a run's stored configuration (a resume that changes which reviews it trains with). */
export function setRunConfig(db: ExperimentDb, id: number, config: Record<string, unknown>): RunInfo {
  return db.write(`updating the settings of run ${id}`, () => {
    if (db.stmt('UPDATE runs SET config = ? WHERE id = ?').run(JSON.stringify(config), id).changes === 0) throw new DatabaseError('NOT_FOUND', `No run ${id}.`);
    return getRun(db, id) as RunInfo;
  });
}

/** Deletes a run and everything it recorded (steps, metrics, rollouts, samples, ...). */
export function deleteRun(db: ExperimentDb, id: number): boolean {
  return db.write(`deleting run ${id}`, () => db.stmt('DELETE FROM runs WHERE id = ?').run(id).changes > 0);
}

/** A tag as stored (trimmed), or an INVALID error saying what is wrong with it. */
export function checkTag(tag: string): string {
  const t = tag.trim();
  if (t === '') throw new DatabaseError('INVALID', 'A tag cannot be empty.');
  if (t.length > MAX_TAG_LENGTH) throw new DatabaseError('INVALID', `The tag "${t.slice(0, MAX_TAG_LENGTH)}…" is ${t.length} characters long; a tag has at most ${MAX_TAG_LENGTH}.`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(t)) throw new DatabaseError('INVALID', `The tag ${JSON.stringify(t)} holds a control character (a tab or line break); a tag is one line of text.`);
  return t;
}

/** Adds and removes tags of a run in one transaction (adding one it has, or removing one it lacks, changes nothing). */
export function tagRun(db: ExperimentDb, id: number, change: { add?: readonly string[]; remove?: readonly string[] }): RunInfo {
  const add = (change.add ?? []).map(checkTag);
  const remove = (change.remove ?? []).map(checkTag);
  return db.write(`tagging run ${id}`, () => {
    if (!getRun(db, id)) throw new DatabaseError('NOT_FOUND', `No run ${id}.`);
    for (const t of remove) db.stmt('DELETE FROM run_tags WHERE run_id = ? AND tag = ?').run(id, t);
    for (const t of add) db.stmt('INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)').run(id, t);
    return getRun(db, id) as RunInfo;
  });
}
