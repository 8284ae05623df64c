// Datasets and their items. The hidden label (`eval_answer`) is evaluation-only: no function
// that returns items selects it. The one way to read it is `evaluationAnswers`, which the
// evaluation and metrics code calls by name; reward code has no reason to.
import os from 'node:os';
import { DatabaseError, type ExperimentDb } from './database.ts';

export type Split = 'train' | 'eval';

export interface NewDatasetItem {
  prompt: string;
  /** The hidden label, used only to measure. */
  answer?: string | null;
  split?: Split;
  metadata?: Record<string, unknown> | null;
}

export interface NewDataset {
  name: string;
  /** The imported file, or e.g. 'generator:arithmetic'. */
  source?: string | null;
  /** How the file's fields map onto prompt / answer, as the import used it. */
  fieldMapping?: Record<string, unknown>;
}

export interface DatasetInfo {
  id: number;
  name: string;
  source: string | null;
  fieldMapping: Record<string, unknown>;
  itemCount: number;
  /** Items that carry a hidden label (evaluation can measure only where this is > 0). */
  labeledCount: number;
  /** Items held out for evaluation (split 'eval'); the rest are training items. */
  evalCount: number;
  createdAt: string;
  /** When a person archived it (hidden from pickers, still usable), or null. */
  archivedAt: string | null;
}

/** A dataset item as runs and views see it: never with its hidden label. */
export interface DatasetItem {
  datasetId: number;
  idx: number;
  prompt: string;
  split: Split;
  metadata: Record<string, unknown> | null;
}

interface DatasetRow {
  id: number;
  name: string;
  source: string | null;
  field_mapping: string;
  item_count: number;
  labeled_count: number;
  eval_count: number;
  created_at: string;
  archived_at: string | null;
}

interface ItemRow {
  dataset_id: number;
  idx: number;
  prompt: string;
  split: Split;
  metadata: string | null;
}

const DATASET_COLUMNS = `id, name, source, field_mapping, item_count, created_at, archived_at,
  (SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id AND i.eval_answer IS NOT NULL) AS labeled_count,
  (SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id AND i.split = 'eval') AS eval_count`;

function toInfo(r: DatasetRow): DatasetInfo {
  return {
    id: r.id,
    name: r.name,
    source: r.source,
    fieldMapping: JSON.parse(r.field_mapping) as Record<string, unknown>,
    itemCount: r.item_count,
    labeledCount: r.labeled_count,
    evalCount: r.eval_count,
    createdAt: r.created_at,
    archivedAt: r.archived_at,
  };
}

function toItem(r: ItemRow): DatasetItem {
  return {
    datasetId: r.dataset_id,
    idx: r.idx,
    prompt: r.prompt,
    split: r.split,
    metadata: r.metadata == null ? null : (JSON.parse(r.metadata) as Record<string, unknown>),
  };
}

/** How long one transaction of an import may hold the write lock, and the pause after it. */
export interface ImportPacing {
  /** Milliseconds of inserting per transaction (default 100). */
  batchMs?: number;
  /** Milliseconds the lock is left free between transactions (default 20). */
  pauseMs?: number;
}

/**
 * A writer in another process waits for the lock up to its busy timeout (5 s), polling at most
 * every 100 ms. An import writing for 100 ms and then leaving the lock free for 20 ms lets such
 * a poll in about one time in six, so a run's step waits a fraction of a second, not the import.
 */
const DEFAULT_PACING: Required<ImportPacing> = { batchMs: 100, pauseMs: 20 };

interface ImportOwner {
  pid: number;
  hostname: string;
  startedAt: string;
}

/** Whether the process that staged an import is still alive (this one, or another machine's: assumed so). */
function ownerAlive(owner: ImportOwner): boolean {
  if (owner.hostname !== os.hostname() || !Number.isInteger(owner.pid)) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Deletes a dataset's items in short transactions, then its row (runs on it keep their name; dataset_id is cleared). */
function removeInBatches(db: ExperimentDb, id: number, pacing: Required<ImportPacing>): void {
  const chunk = 20_000;
  for (;;) {
    const removed = db.write(`removing the staged items of dataset ${id}`, () =>
      db.stmt('DELETE FROM dataset_items WHERE dataset_id = ? AND idx IN (SELECT idx FROM dataset_items WHERE dataset_id = ? ORDER BY idx LIMIT ?)').run(id, id, chunk).changes,
    );
    if (removed < chunk) break;
    sleepSync(pacing.pauseMs);
  }
  db.write(`removing dataset ${id}`, () => db.stmt('DELETE FROM datasets WHERE id = ?').run(id));
}

/** Removes the staged datasets of importers that died (killed mid-import); returns how many. */
export function sweepAbandonedImports(db: ExperimentDb, pacing: ImportPacing = {}): number {
  const rows = db.stmt<{ id: number; import_owner: string }>('SELECT id, import_owner FROM datasets WHERE import_owner IS NOT NULL').all();
  let n = 0;
  for (const r of rows) {
    let owner: ImportOwner;
    try {
      owner = JSON.parse(r.import_owner) as ImportOwner;
    } catch {
      owner = { pid: NaN, hostname: os.hostname(), startedAt: '' };
    }
    if (ownerAlive(owner)) continue;
    removeInBatches(db, r.id, { ...DEFAULT_PACING, ...pacing });
    n++;
  }
  return n;
}

/**
 * Creates a dataset with all its items, all or nothing for every reader: the items are written
 * in short transactions under a dataset row no query shows (`import_owner` set), so a run
 * recording its steps in another process waits a moment, never the whole import; one last short
 * transaction publishes the dataset. `items` may be a generator that parses a file as it goes:
 * if it throws (a malformed line) or an item is invalid, the staged rows are deleted and nothing
 * was ever visible, not even the dataset's row.
 */
export function importDataset(db: ExperimentDb, dataset: NewDataset, items: Iterable<NewDatasetItem>, pacing: ImportPacing = {}): DatasetInfo {
  const pace = { ...DEFAULT_PACING, ...pacing };
  sweepAbandonedImports(db, pace);
  const owner: ImportOwner = { pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString() };
  const id = db.write(`importing dataset "${dataset.name}"`, () => {
    const taken = db.stmt<{ import_owner: string | null }>('SELECT import_owner FROM datasets WHERE name = ?').get(dataset.name);
    if (taken) {
      const by = taken.import_owner === null ? null : (JSON.parse(taken.import_owner) as ImportOwner);
      throw new DatabaseError('INVALID', by ? `A dataset named "${dataset.name}" is being imported by another process (pid ${by.pid}, since ${by.startedAt}).` : `A dataset named "${dataset.name}" already exists.`);
    }
    const { lastInsertRowid } = db
      .stmt('INSERT INTO datasets (name, source, field_mapping, import_owner) VALUES (?, ?, ?, ?)')
      .run(dataset.name, dataset.source ?? null, JSON.stringify(dataset.fieldMapping ?? {}), JSON.stringify(owner));
    return Number(lastInsertRowid);
  });
  // Staged rows need no fsync of their own: until the publish (synchronous=FULL again, which
  // syncs everything before it) a power loss only loses rows no reader could see.
  const synchronous = db.sql.pragma('synchronous', { simple: true }) as number;
  try {
    db.sql.pragma('synchronous = NORMAL');
    const insert = db.stmt(
      'INSERT INTO dataset_items (dataset_id, idx, prompt, eval_answer, split, metadata) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const iterator = items[Symbol.iterator]();
    let idx = 0;
    let done = false;
    while (!done) {
      if (idx > 0) sleepSync(pace.pauseMs);
      db.write(`importing dataset "${dataset.name}"`, () => {
        const until = performance.now() + pace.batchMs;
        do {
          const next = iterator.next();
          if (next.done) {
            done = true;
            return;
          }
          insert.run(id, idx, ...itemColumns(next.value, idx));
          idx++;
          // Checking the clock every 64 rows keeps its cost out of the loop.
        } while ((idx & 63) !== 0 || performance.now() < until);
      });
    }
    db.sql.pragma(`synchronous = ${synchronous}`);
    db.write(`publishing dataset "${dataset.name}"`, () => {
      db.stmt('UPDATE datasets SET item_count = ?, import_owner = NULL WHERE id = ?').run(idx, id);
    });
    return getDatasetOrThrow(db, id);
  } catch (e) {
    db.sql.pragma(`synchronous = ${synchronous}`);
    try {
      removeInBatches(db, id, pace);
    } catch {
      /* left staged (invisible): the next import sweeps it once this process has ended */
    }
    throw e;
  }
}

/** The columns of one item after idx, or a DatabaseError naming the item. */
function itemColumns(item: NewDatasetItem, idx: number): [string, string | null, Split, string | null] {
  if (typeof item.prompt !== 'string' || item.prompt.length === 0) {
    throw new DatabaseError('INVALID', `Dataset item ${idx} has no prompt.`);
  }
  const split = item.split ?? 'train';
  if (split !== 'train' && split !== 'eval') {
    throw new DatabaseError('INVALID', `Dataset item ${idx} has split "${String(split)}" (expected train or eval).`);
  }
  const answer = item.answer == null ? null : String(item.answer);
  let metadata: string | null = null;
  try {
    metadata = item.metadata == null ? null : JSON.stringify(item.metadata);
  } catch (e) {
    // JSON.stringify recurses: metadata nested thousands of levels deep overflows the stack.
    if (e instanceof RangeError) throw new DatabaseError('INVALID', `Dataset item ${idx}: its metadata nests too deeply to store (${e.message}).`);
    throw e;
  }
  return [item.prompt, answer, split, metadata];
}

export function getDataset(db: ExperimentDb, idOrName: number | string): DatasetInfo | undefined {
  const where = typeof idOrName === 'number' ? 'id = ?' : 'name = ?';
  // A dataset an import is still staging does not exist yet for anyone.
  const row = db.stmt<DatasetRow>(`SELECT ${DATASET_COLUMNS} FROM datasets d WHERE ${where} AND import_owner IS NULL`).get(idOrName);
  return row && toInfo(row);
}

function getDatasetOrThrow(db: ExperimentDb, idOrName: number | string): DatasetInfo {
  const d = getDataset(db, idOrName);
  if (!d) throw new DatabaseError('NOT_FOUND', `No dataset ${JSON.stringify(idOrName)}.`);
  return d;
}

/** Datasets by name; archived ones too unless `archived: false`. A dataset an import is still staging is never listed. */
export function listDatasets(db: ExperimentDb, q: { archived?: boolean } = {}): DatasetInfo[] {
  const where = q.archived === false ? 'AND archived_at IS NULL' : '';
  return db.stmt<DatasetRow>(`SELECT ${DATASET_COLUMNS} FROM datasets d WHERE import_owner IS NULL ${where} ORDER BY name`).all().map(toInfo);
}

/** What depends on a dataset: the runs that train (or trained) on it and the reviews of its prompts. */
export interface DatasetUsage {
  runs: { id: number; name: string; status: string }[];
  /** Reviews of the dataset's items or of its runs' rollouts: a person's work. */
  reviews: number;
}

export function datasetUsage(db: ExperimentDb, id: number): DatasetUsage {
  const runs = db.stmt<{ id: number; name: string; status: string }>('SELECT id, name, status FROM runs WHERE dataset_id = ? ORDER BY id').all(id);
  const { n } = db
    .stmt<{ n: number }>('SELECT count(*) AS n FROM reviews WHERE dataset_id = ? OR run_id IN (SELECT id FROM runs WHERE dataset_id = ?)')
    .get(id, id) as { n: number };
  return { runs, reviews: n };
}

/** "2 runs (#1 "a", #2 "b") and 5 reviews": what a deletion would destroy, for messages. */
export function describeUsage(u: DatasetUsage): string {
  const parts: string[] = [];
  if (u.runs.length) {
    const shown = u.runs.slice(0, 5).map((r) => `#${r.id} "${r.name}"`);
    if (u.runs.length > shown.length) shown.push(`${u.runs.length - shown.length} more`);
    parts.push(`${u.runs.length} run${u.runs.length === 1 ? '' : 's'} (${shown.join(', ')})`);
  }
  if (u.reviews) parts.push(`${u.reviews} review${u.reviews === 1 ? '' : 's'}`);
  return parts.join(' and ');
}

/**
 * Archives a dataset (true) or restores it (false). An archived dataset keeps its items, runs
 * and reviews; it is only left out of pickers. Returns the dataset as it now is.
 */
export function setDatasetArchived(db: ExperimentDb, id: number, archived: boolean): DatasetInfo {
  return db.write(`${archived ? 'archiving' : 'restoring'} dataset ${id}`, () => {
    const set = archived ? "coalesce(archived_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))" : 'NULL';
    if (db.stmt(`UPDATE datasets SET archived_at = ${set} WHERE id = ?`).run(id).changes === 0) {
      throw new DatabaseError('NOT_FOUND', `No dataset ${id}.`);
    }
    return getDatasetOrThrow(db, id);
  });
}

/**
 * Deletes a dataset and its items, only when nothing depends on it: a dataset that runs or
 * reviews use is refused (IN_USE, naming them), since deleting it would take the reviews with
 * it and leave its runs without their prompts and hidden labels. Archive such a dataset instead.
 */
export function deleteDataset(db: ExperimentDb, id: number): boolean {
  return db.write(`deleting dataset ${id}`, () => {
    const d = getDataset(db, id);
    if (!d) return false;
    const usage = datasetUsage(db, id);
    if (usage.runs.length || usage.reviews) {
      throw new DatabaseError('IN_USE', `Dataset "${d.name}" is used by ${describeUsage(usage)}; deleting it would destroy them. Archive it instead (hidden from pickers, everything keeps working).`);
    }
    return db.stmt('DELETE FROM datasets WHERE id = ?').run(id).changes > 0;
  });
}

export interface ItemQuery {
  split?: Split;
  /** Case-insensitive substring of the prompt. */
  search?: string;
  offset?: number;
  limit?: number;
}

/** One page of a dataset's items in idx order, and how many match in all. */
export function listItems(db: ExperimentDb, datasetId: number, q: ItemQuery = {}): { items: DatasetItem[]; total: number } {
  const where = ['dataset_id = ?'];
  const args: unknown[] = [datasetId];
  if (q.split) {
    where.push('split = ?');
    args.push(q.split);
  }
  if (q.search) {
    // LIKE with the wildcards in the user's text escaped, so '50%' means the text 50%.
    where.push("prompt LIKE ? ESCAPE '\\'");
    args.push(`%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  }
  const w = where.join(' AND ');
  const total = (db.stmt<{ n: number }>(`SELECT count(*) AS n FROM dataset_items WHERE ${w}`).get(...args) as { n: number }).n;
  const items = db
    .stmt<ItemRow>(`SELECT dataset_id, idx, prompt, split, metadata FROM dataset_items WHERE ${w} ORDER BY idx LIMIT ? OFFSET ?`)
    .all(...args, q.limit ?? -1, q.offset ?? 0)
    .map(toItem);
  return { items, total };
}

export function getItem(db: ExperimentDb, datasetId: number, idx: number): DatasetItem | undefined {
  const row = db
    .stmt<ItemRow>('SELECT dataset_id, idx, prompt, split, metadata FROM dataset_items WHERE dataset_id = ? AND idx = ?')
    .get(datasetId, idx);
  return row && toItem(row);
}

/**
 * The hidden labels of a dataset's items (all, or those at `idxs`), by idx. EVALUATION ONLY:
 * for measuring label accuracy and validation scores, never for computing a reward.
 */
export function evaluationAnswers(db: ExperimentDb, datasetId: number, idxs?: readonly number[]): Map<number, string> {
  const out = new Map<number, string>();
  if (idxs) {
    const one = db.stmt<{ eval_answer: string | null }>(
      'SELECT eval_answer FROM dataset_items WHERE dataset_id = ? AND idx = ?',
    );
    for (const idx of idxs) {
      const r = one.get(datasetId, idx);
      if (r?.eval_answer != null) out.set(idx, r.eval_answer);
    }
    return out;
  }
  const rows = db
    .stmt<{ idx: number; eval_answer: string }>(
      'SELECT idx, eval_answer FROM dataset_items WHERE dataset_id = ? AND eval_answer IS NOT NULL ORDER BY idx',
    )
    .all(datasetId);
  for (const r of rows) out.set(r.idx, r.eval_answer);
  return out;
}
