// The review queue: the prompt groups of a run a person should look at, across all its steps or
// in one, filtered (confident mistakes, low consensus, changed labels, unreviewed, ...) and read
// a page at a time, with how many match and how many of those are reviewed. Filtering, counting
// and paging happen in SQL so a run with thousands of groups answers in milliseconds (the
// migration 'indexes for the review queue'); and bulk agreement with a filtered set, in one transaction.
import type { ExperimentDb } from './database.ts';
import { type Review, toReview, type ReviewRow } from './reviews.ts';
import { type Rollout, type RolloutRow, toRollout } from './steps.ts';

export const QUEUE_FILTERS = ['all', 'confident-mistakes', 'low-consensus', 'label-changed', 'unreviewed', 'reviewed', 'review-label'] as const;
export type QueueFilter = (typeof QUEUE_FILTERS)[number];

/** Which groups: a run's, in one step or all, matching a filter with its thresholds. */
export interface QueueSelection {
  runId: number;
  /** One step; every step of the run when absent. */
  step?: number;
  filter: QueueFilter;
  /** A wrong pseudo-label with at least this majority ratio is a confident mistake. */
  confidentAbove: number;
  /** A majority ratio below this is low consensus. */
  lowConsensusBelow: number;
  /** Only groups recorded up to this rollout id (what a person saw counted), when given. */
  asOf?: number;
  /** Only this group (with `step`, its step). */
  rolloutId?: number;
}

export interface QueueGroup extends Rollout {
  /** Whether the prompt was drawn earlier in the run, and the pseudo-label it got the last time. */
  drawnBefore: boolean;
  previousLabel: string | null;
  /** The group's review (the newest, where older data holds several). */
  review: Review | null;
  /** For a group that took a person's label: how many samples agree with it (0: no gradient). */
  reviewMatches: number | null;
}

export interface QueuePage {
  groups: QueueGroup[];
  /** Groups matching the selection, and how many of them are reviewed. */
  total: number;
  reviewed: number;
  /** Unreviewed groups with a pseudo-label: those agreeWithQueue may agree with. */
  agreeable: number;
  /** The run's newest rollout id when read: bulk agreement goes up to it, never past what was counted. */
  asOf: number | null;
}

const WHERE: Record<QueueFilter, string> = {
  all: '1',
  // The vote's own pseudo-label (not absent, not a person's), confidently wrong: as GroupSummary.confidentMistake.
  'confident-mistakes': "q.label_source = 'vote' AND q.pseudo_label IS NOT NULL AND q.majority_ratio >= @confident AND q.label_correct = 0",
  'low-consensus': 'q.majority_ratio < @low',
  'label-changed': 'q.previous_id IS NOT NULL AND (SELECT e.pseudo_label FROM rollouts e WHERE e.id = q.previous_id) IS NOT q.pseudo_label',
  unreviewed: 'q.review_id IS NULL',
  reviewed: 'q.review_id IS NOT NULL',
  'review-label': "q.label_source = 'review'",
};

/**
 * The selected groups as a table `q`: each rollout with its newest review's id and the id of the
 * prompt's previous draw in the run (the latest earlier group of the same item: one seek in
 * rollouts_by_item each). Filters read only these; samples are counted for the page's rows only.
 */
function selected(s: QueueSelection): string {
  const where = [
    'r.run_id = @run',
    ...(s.step === undefined ? [] : ['r.step = @step']),
    ...(s.asOf === undefined ? [] : ['r.id <= @asOf']),
    ...(s.rolloutId === undefined ? [] : ['r.id = @rollout']),
  ];
  return `
    WITH q AS (
      SELECT r.*,
             (SELECT max(v.id) FROM reviews v WHERE v.rollout_id = r.id) AS review_id,
             (SELECT e.id FROM rollouts e
               WHERE e.run_id = r.run_id AND e.item_idx = r.item_idx AND (e.step, e.group_idx) < (r.step, r.group_idx)
               ORDER BY e.step DESC, e.group_idx DESC LIMIT 1) AS previous_id
        FROM rollouts r
       WHERE ${where.join(' AND ')}
    )`;
}

function args(s: QueueSelection): Record<string, number> {
  return {
    run: s.runId,
    ...(s.step !== undefined && { step: s.step }),
    ...(s.asOf !== undefined && { asOf: s.asOf }),
    ...(s.rolloutId !== undefined && { rollout: s.rolloutId }),
    ...(s.filter === 'confident-mistakes' && { confident: s.confidentAbove }),
    ...(s.filter === 'low-consensus' && { low: s.lowConsensusBelow }),
  };
}

interface QueueRowExtra {
  previous_id: number | null;
  previous_label: string | null;
  review_id: number | null;
  review_matches: number | null;
}

/** A page of the selected groups, in step and group order, with the counts over all of them. Call inside a read. */
export function reviewQueue(db: ExperimentDb, s: QueueSelection, page: { offset: number; limit: number }): QueuePage {
  const a = args(s);
  const counts = db
    .stmt<{ total: number; reviewed: number; agreeable: number }>(
      `${selected(s)} SELECT count(*) AS total, count(q.review_id) AS reviewed,
              coalesce(sum(q.review_id IS NULL AND q.pseudo_label IS NOT NULL), 0) AS agreeable
         FROM q WHERE ${WHERE[s.filter]}`,
    )
    .get(a)!;
  const rows = db
    .stmt<RolloutRow & QueueRowExtra>(
      `${selected(s)}
       SELECT q.*, (SELECT e.pseudo_label FROM rollouts e WHERE e.id = q.previous_id) AS previous_label,
              CASE WHEN q.label_source = 'review' THEN (SELECT count(*) FROM samples m WHERE m.rollout_id = q.id AND m.reward > 0) END AS review_matches
         FROM q WHERE ${WHERE[s.filter]}
        ORDER BY q.step, q.group_idx LIMIT @limit OFFSET @offset`,
    )
    .all({ ...a, limit: page.limit, offset: page.offset });
  const reviewIds = rows.map((r) => r.review_id).filter((x): x is number => x !== null);
  const reviews = new Map<number, Review>();
  const one = db.stmt<ReviewRow>('SELECT * FROM reviews WHERE id = ?');
  for (const id of reviewIds) reviews.set(id, toReview(one.get(id)!));
  const asOf = s.asOf ?? db.stmt<{ m: number | null }>('SELECT max(id) AS m FROM rollouts WHERE run_id = ?').get(s.runId)!.m;
  return {
    groups: rows.map((r) => ({
      ...toRollout(r),
      drawnBefore: r.previous_id !== null,
      previousLabel: r.previous_label,
      review: r.review_id === null ? null : reviews.get(r.review_id)!,
      reviewMatches: r.review_matches,
    })),
    total: counts.total,
    reviewed: counts.reviewed,
    agreeable: counts.agreeable,
    asOf,
  };
}

export interface BulkAgreement {
  /** Groups that got an 'agree' review. */
  agreed: number;
  /** Unreviewed groups left alone: no pseudo-label to agree with. */
  noLabel: number;
  /** Unreviewed groups left alone: the person already reviewed their prompt at another step (that review stands). */
  reviewedElsewhere: number;
}

/**
 * Agrees with the pseudo-label of every unreviewed group in the selection (up to `asOf`), in one
 * transaction. A group without a pseudo-label is skipped, and so is one whose prompt the person
 * reviewed at another step of the run: a newer agreement would replace their reviewed label for
 * that prompt in a run started from the reviews.
 */
export function agreeWithQueue(db: ExperimentDb, s: QueueSelection & { asOf: number }): BulkAgreement {
  return db.write(`agreeing with the groups of run ${s.runId}`, () => {
    const a = args(s);
    const candidates = `${selected(s)}
      SELECT q.id, q.run_id, q.item_idx, q.pseudo_label,
             (q.item_idx IS NOT NULL AND EXISTS (SELECT 1 FROM reviews v JOIN rollouts o ON o.id = v.rollout_id
                WHERE v.run_id = q.run_id AND o.item_idx = q.item_idx)) AS elsewhere
        FROM q WHERE q.review_id IS NULL AND ${WHERE[s.filter]} ORDER BY q.step, q.group_idx`;
    const rows = db.stmt<{ id: number; run_id: number; item_idx: number | null; pseudo_label: string | null; elsewhere: number }>(candidates).all(a);
    const datasetId = db.stmt<{ dataset_id: number | null }>('SELECT dataset_id FROM runs WHERE id = ?').get(s.runId)?.dataset_id ?? null;
    const insert = db.stmt('INSERT INTO reviews (run_id, rollout_id, dataset_id, item_idx, verdict, label) VALUES (?, ?, ?, ?, ?, ?)');
    const out: BulkAgreement = { agreed: 0, noLabel: 0, reviewedElsewhere: 0 };
    for (const r of rows) {
      if (r.pseudo_label === null) out.noLabel++;
      else if (r.elsewhere) out.reviewedElsewhere++;
      else {
        insert.run(r.run_id, r.id, r.item_idx === null ? null : datasetId, r.item_idx, 'agree', r.pseudo_label);
        out.agreed++;
      }
    }
    return out;
  });
}
