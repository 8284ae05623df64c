// Reviews: a person agrees with a group's pseudo-label or overrides it. One review per rollout;
// the run, dataset and item come from the rollout. Every change announces the run's new count.
// An override's label is checked against the run's answer format and stored normalised, as
// the votes read answers, so what a run trains toward is an answer its samples can match. A note
// goes with a review; a bulk agreement covers a filtered set of the review queue.
import { ApiError } from '../../../contract/index.ts';
import { agreeWithQueue, answersOfRollout, clearRolloutReview, countReviews, getRollout, getRun, listReviews, setRolloutReview, setRolloutReviewNote } from '../../db/index.ts';
import type { AnswerFormat } from '../../engine/tasks/extract.ts';
import { EXTRACTION_CHAINS } from '../../engine/tasks/extract.ts';
import { answersEquivalent } from '../../engine/tasks/equivalence.ts';
import { checkReviewLabel } from '../../engine/tasks/labels.ts';
import { syncReviewedLabels } from '../../cluster/reviewed-labels.ts';
import { runOrThrow } from './runs.ts';
import { toReviewView } from './steps.ts';
import type { ApiDeps, HandlerTable } from './types.ts';

/** A review of a run imported from a cluster goes to its folder's reviewed-labels file, which the cluster's reward reads. */
function syncCluster(deps: ApiDeps, runId: number): void {
  const run = getRun(deps.db, runId);
  if (run?.kind !== 'external') return;
  try {
    syncReviewedLabels(deps.db, run);
  } catch (e) {
    throw new ApiError('UNAVAILABLE', (e as Error).message);
  }
}

function rolloutOrThrow(deps: ApiDeps, id: number) {
  const r = getRollout(deps.db, id);
  if (!r) throw new ApiError('NOT_FOUND', `There is no prompt group (rollout) ${id}; its run may have been deleted or rolled back.`);
  return r;
}

export const reviewHandlers = {
  'reviews.set': (p, deps) => {
    const rollout = rolloutOrThrow(deps, p.rolloutId);
    let label = p.label;
    const stored = (getRun(deps.db, rollout.runId)?.config as { answerFormat?: unknown } | undefined)?.answerFormat;
    const format: AnswerFormat = typeof stored === 'string' && stored in EXTRACTION_CHAINS ? (stored as AnswerFormat) : 'auto';
    if (p.verdict === 'override') {
      const checked = checkReviewLabel(p.label ?? '', format);
      if (!checked.ok) throw new ApiError('BAD_REQUEST', checked.message, [{ path: 'label', message: checked.message }]);
      label = checked.label;
    }
    const review = setRolloutReview(deps.db, rollout.id, p.verdict, label, p.note === undefined ? undefined : p.note.trim() || null);
    deps.events.emit('reviews.changed', { runId: rollout.runId, count: countReviews(deps.db, rollout.runId) });
    syncCluster(deps, rollout.runId);
    // Counted as the votes count agreement: a label none of the samples reached gives that prompt no gradient.
    const agreeingSamples = p.verdict === 'override' ? answersOfRollout(deps.db, rollout.id).filter((a) => a !== null && answersEquivalent(a, label!, { format })).length : null;
    return { ...toReviewView(review), agreeingSamples };
  },

  'reviews.clear': (p, deps) => {
    const rollout = rolloutOrThrow(deps, p.rolloutId);
    const cleared = clearRolloutReview(deps.db, rollout.id);
    if (cleared) {
      deps.events.emit('reviews.changed', { runId: rollout.runId, count: countReviews(deps.db, rollout.runId) });
      syncCluster(deps, rollout.runId);
    }
    return { cleared };
  },

  'reviews.note': (p, deps) => {
    const rollout = rolloutOrThrow(deps, p.rolloutId);
    const review = setRolloutReviewNote(deps.db, rollout.id, p.note?.trim() || null);
    if (!review) throw new ApiError('NOT_FOUND', `Group ${rollout.groupIdx} of step ${rollout.step} has no review yet: agree or override first, and the note goes with that verdict.`);
    return toReviewView(review);
  },

  'reviews.agreeAll': (p, deps) => {
    runOrThrow(deps, p.runId);
    const result = agreeWithQueue(deps.db, p);
    if (result.agreed > 0) {
      deps.events.emit('reviews.changed', { runId: p.runId, count: countReviews(deps.db, p.runId) });
      syncCluster(deps, p.runId);
    }
    return result;
  },

  'reviews.list': (p, deps) => {
    runOrThrow(deps, p.runId);
    return listReviews(deps.db, { runId: p.runId }).map(toReviewView);
  },
} satisfies HandlerTable<'reviews.set' | 'reviews.clear' | 'reviews.note' | 'reviews.agreeAll' | 'reviews.list'>;
