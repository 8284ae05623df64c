// Datasets and their items. The hidden label (`eval_answer`) is evaluation-only: no function
// that returns items selects it. The one way to read it is `evaluationAnswers`, which the
// evaluation and metrics code calls by name; reward code has no reason to.
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

/**
 * Creates a dataset with all its items in one transaction. `items` may be a generator that
 * parses a file as it goes: if it throws (a malformed line) or an item is invalid, nothing is
 * stored, not even the dataset's row.
 */
export function importDataset(db: ExperimentDb, dataset: NewDataset, items: Iterable<NewDatasetItem>): DatasetInfo {
  return db.write(`importing dataset "${dataset.name}"`, () => {
    if (db.stmt('SELECT 1 FROM datasets WHERE name = ?').get(dataset.name)) {
      throw new DatabaseError('INVALID', `A dataset named "${dataset.name}" already exists.`);
    }
    const { lastInsertRowid } = db
      .stmt('INSERT INTO datasets (name, source, field_mapping) VALUES (?, ?, ?)')
      .run(dataset.name, dataset.source ?? null, JSON.stringify(dataset.fieldMapping ?? {}));
    const id = Number(lastInsertRowid);
    const insert = db.stmt(
      'INSERT INTO dataset_items (dataset_id, idx, prompt, eval_answer, split, metadata) VALUES (?, ?, ?, ?, ?, ?)',
    );
    let idx = 0;
    for (const item of items) {
      if (typeof item.prompt !== 'string' || item.prompt.length === 0) {
        throw new DatabaseError('INVALID', `Dataset item ${idx} has no prompt.`);
      }
      const split = item.split ?? 'train';
      if (split !== 'train' && split !== 'eval') {
        throw new DatabaseError('INVALID', `Dataset item ${idx} has split "${String(split)}" (expected train or eval).`);
      }
      const answer = item.answer == null ? null : String(item.answer);
      insert.run(id, idx, item.prompt, answer, split, item.metadata == null ? null : JSON.stringify(item.metadata));
      idx++;
    }
    db.stmt('UPDATE datasets SET item_count = ? WHERE id = ?').run(idx, id);
    return getDatasetOrThrow(db, id);
  });
}

export function getDataset(db: ExperimentDb, idOrName: number | string): DatasetInfo | undefined {
  const where = typeof idOrName === 'number' ? 'id = ?' : 'name = ?';
  const row = db.stmt<DatasetRow>(`SELECT ${DATASET_COLUMNS} FROM datasets d WHERE ${where}`).get(idOrName);
  return row && toInfo(row);
}

function getDatasetOrThrow(db: ExperimentDb, idOrName: number | string): DatasetInfo {
  const d = getDataset(db, idOrName);
  if (!d) throw new DatabaseError('NOT_FOUND', `No dataset ${JSON.stringify(idOrName)}.`);
  return d;
}

/** Datasets by name; archived ones too unless `archived: false`. */
export function listDatasets(db: ExperimentDb, q: { archived?: boolean } = {}): DatasetInfo[] {
  const where = q.archived === false ? 'WHERE archived_at IS NULL' : '';
  return db.stmt<DatasetRow>(`SELECT ${DATASET_COLUMNS} FROM datasets d ${where} ORDER BY name`).all().map(toInfo);
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
