// Human reviews: a person agrees with a pseudo-label or overrides it with their own, on a
// rollout of a run or on a dataset item.
import { DatabaseError, type ExperimentDb } from './database.ts';

export type Verdict = 'agree' | 'override';

export interface NewReview {
  runId?: number | null;
  rolloutId?: number | null;
  datasetId?: number | null;
  itemIdx?: number | null;
  verdict: Verdict;
  /** The person's label; required with 'override'. */
  label?: string | null;
  note?: string | null;
}

export interface Review {
  id: number;
  runId: number | null;
  rolloutId: number | null;
  datasetId: number | null;
  itemIdx: number | null;
  verdict: Verdict;
  label: string | null;
  note: string | null;
  createdAt: string;
  updatedAt: string | null;
}

export interface ReviewRow {
  id: number;
  run_id: number | null;
  rollout_id: number | null;
  dataset_id: number | null;
  item_idx: number | null;
  verdict: Verdict;
  label: string | null;
  note: string | null;
  created_at: string;
  updated_at: string | null;
}

export const toReview = (r: ReviewRow): Review => ({
  id: r.id,
  runId: r.run_id,
  rolloutId: r.rollout_id,
  datasetId: r.dataset_id,
  itemIdx: r.item_idx,
  verdict: r.verdict,
  label: r.label,
  note: r.note,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

function check(verdict: Verdict, label: string | null | undefined): void {
  if (verdict !== 'agree' && verdict !== 'override') throw new DatabaseError('INVALID', `Unknown verdict "${String(verdict)}".`);
  if (verdict === 'override' && (label == null || label === '')) {
    throw new DatabaseError('INVALID', 'An override needs the label that replaces the pseudo-label.');
  }
}

export function createReview(db: ExperimentDb, r: NewReview): Review {
  check(r.verdict, r.label);
  return db.write('saving a review', () => {
    let runId = r.runId ?? null;
    if (r.rolloutId != null) {
      // A rollout belongs to exactly one run: take it from there so the two cannot disagree.
      const owner = db.stmt<{ run_id: number }>('SELECT run_id FROM rollouts WHERE id = ?').get(r.rolloutId);
      if (!owner) throw new DatabaseError('NOT_FOUND', `No rollout ${r.rolloutId}.`);
      if (runId !== null && runId !== owner.run_id) {
        throw new DatabaseError('INVALID', `Rollout ${r.rolloutId} belongs to run ${owner.run_id}, not ${runId}.`);
      }
      runId = owner.run_id;
    }
    if (runId === null && (r.datasetId == null || r.itemIdx == null)) {
      throw new DatabaseError('INVALID', 'A review needs a run (or rollout) or a dataset item.');
    }
    const { lastInsertRowid } = db
      .stmt(
        `INSERT INTO reviews (run_id, rollout_id, dataset_id, item_idx, verdict, label, note)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(runId, r.rolloutId ?? null, r.datasetId ?? null, r.itemIdx ?? null, r.verdict, r.label ?? null, r.note ?? null);
    return getReview(db, Number(lastInsertRowid)) as Review;
  });
}

export function getReview(db: ExperimentDb, id: number): Review | undefined {
  const r = db.stmt<ReviewRow>('SELECT * FROM reviews WHERE id = ?').get(id);
  return r && toReview(r);
}

export interface ReviewQuery {
  runId?: number;
  rolloutId?: number;
  datasetId?: number;
  itemIdx?: number;
}

/** Reviews matching every given field, oldest first. */
export function listReviews(db: ExperimentDb, q: ReviewQuery = {}): Review[] {
  const cols: [keyof ReviewQuery, string][] = [
    ['runId', 'run_id'],
    ['rolloutId', 'rollout_id'],
    ['datasetId', 'dataset_id'],
    ['itemIdx', 'item_idx'],
  ];
  const used = cols.filter(([k]) => q[k] !== undefined);
  const where = used.length ? `WHERE ${used.map(([, c]) => `${c} = ?`).join(' AND ')}` : '';
  return db
    .stmt<ReviewRow>(`SELECT * FROM reviews ${where} ORDER BY id`)
    .all(...used.map(([k]) => q[k]))
    .map(toReview);
}

export function updateReview(
  db: ExperimentDb,
  id: number,
  patch: { verdict?: Verdict; label?: string | null; note?: string | null },
): Review {
  return db.write(`updating review ${id}`, () => {
    const cur = getReview(db, id);
    if (!cur) throw new DatabaseError('NOT_FOUND', `No review ${id}.`);
    const verdict = patch.verdict ?? cur.verdict;
    const label = patch.label !== undefined ? patch.label : cur.label;
    const note = patch.note !== undefined ? patch.note : cur.note;
    check(verdict, label);
    db.stmt(
      "UPDATE reviews SET verdict = ?, label = ?, note = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
    ).run(verdict, label, note, id);
    return getReview(db, id) as Review;
  });
}

export function deleteReview(db: ExperimentDb, id: number): boolean {
  return db.write(`deleting review ${id}`, () => db.stmt('DELETE FROM reviews WHERE id = ?').run(id).changes > 0);
}

/**
 * Sets the one review of a rollout: creates it, or replaces the verdict and label of the one
 * there is. The run, dataset and item come from the rollout (and its run), so they cannot
 * disagree with it. An 'agree' stores the pseudo-label it agrees with, so a run that uses the
 * reviews reads one label per reviewed prompt either way.
 */
export function setRolloutReview(db: ExperimentDb, rolloutId: number, verdict: Verdict, label?: string | null, note?: string | null): Review {
  if (verdict !== 'agree' && verdict !== 'override') throw new DatabaseError('INVALID', `Unknown verdict "${String(verdict)}".`);
  return db.write(`saving the review of rollout ${rolloutId}`, () => {
    const r = db
      .stmt<{ run_id: number; item_idx: number | null; pseudo_label: string | null; dataset_id: number | null }>(
        `SELECT ro.run_id, ro.item_idx, ro.pseudo_label, ru.dataset_id
           FROM rollouts ro JOIN runs ru ON ru.id = ro.run_id WHERE ro.id = ?`,
      )
      .get(rolloutId);
    if (!r) throw new DatabaseError('NOT_FOUND', `No rollout ${rolloutId}.`);
    const stored = verdict === 'agree' ? r.pseudo_label : (label ?? null);
    check(verdict, stored);
    if (verdict === 'agree' && stored === null) {
      throw new DatabaseError('INVALID', `Group ${rolloutId} has no pseudo-label to agree with (no answer won the vote, or the method gives none); override it with the right answer instead.`);
    }
    // The dataset item is only named where the rollout has one (an item-less prompt has none).
    const datasetId = r.item_idx === null ? null : r.dataset_id;
    const existing = db.stmt<{ id: number }>('SELECT id FROM reviews WHERE rollout_id = ? ORDER BY id').all(rolloutId);
    if (existing.length > 0) {
      const [keep, ...extra] = existing;
      // Older data may hold several; one review per rollout is the rule from here on.
      for (const e of extra) db.stmt('DELETE FROM reviews WHERE id = ?').run(e.id);
      // A verdict given without a note keeps the note the review has.
      db.stmt(
        `UPDATE reviews SET run_id = ?, dataset_id = ?, item_idx = ?, verdict = ?, label = ?, note = CASE WHEN ? THEN ? ELSE note END,
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?`,
      ).run(r.run_id, datasetId, r.item_idx, verdict, stored, note === undefined ? 0 : 1, note ?? null, keep.id);
      return getReview(db, keep.id) as Review;
    }
    const { lastInsertRowid } = db
      .stmt('INSERT INTO reviews (run_id, rollout_id, dataset_id, item_idx, verdict, label, note) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(r.run_id, rolloutId, datasetId, r.item_idx, verdict, stored, note ?? null);
    return getReview(db, Number(lastInsertRowid)) as Review;
  });
}

/** Removes the review(s) of a rollout; false when it had none. */
export function clearRolloutReview(db: ExperimentDb, rolloutId: number): boolean {
  return db.write(`clearing the review of rollout ${rolloutId}`, () => db.stmt('DELETE FROM reviews WHERE rollout_id = ?').run(rolloutId).changes > 0);
}

/** Sets (or with null, removes) the note of a rollout's review; undefined when the rollout has no review. */
export function setRolloutReviewNote(db: ExperimentDb, rolloutId: number, note: string | null): Review | undefined {
  return db.write(`saving the note of the review of rollout ${rolloutId}`, () => {
    const r = db.stmt<{ id: number }>('SELECT max(id) AS id FROM reviews WHERE rollout_id = ?').get(rolloutId);
    if (r?.id == null) return undefined;
    // updated_at stays: it orders verdicts (the newest review of a prompt gives its label), and a note is no verdict.
    db.stmt('UPDATE reviews SET note = ? WHERE id = ?').run(note, r.id);
    return getReview(db, r.id);
  });
}

/** How many reviews a run has. */
export function countReviews(db: ExperimentDb, runId: number): number {
  return (db.stmt<{ n: number }>('SELECT count(*) AS n FROM reviews WHERE run_id = ?').get(runId) as { n: number }).n;
}
