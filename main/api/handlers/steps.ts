// The trajectory inspector: the prompt groups of a training step with the hidden truth beside
// each pseudo-label and the filters a reviewer needs (confident mistakes, low consensus, labels
// that changed since the prompt was last drawn), and one group's samples split into tokens with
// their log-probs and entropies.
import { ApiError, type GroupSummary, type ReviewView, type TokenView } from '../../../preload/contract.ts';
import {
  type Review,
  type Rollout,
  type RunInfo,
  type Sample,
  evaluationAnswers,
  getRollout,
  getRun,
  reviewsAtStep,
  rolloutsAtStep,
  samplesOfRollout,
} from '../../db/index.ts';
import type { TextTokenizer } from '../../engine/nn/tokenizer.ts';
import { resolveModel } from '../../runs/start.ts';
import { folderTokenizer } from '../models.ts';
import { runOrThrow } from './runs.ts';
import type { ApiDeps, HandlerTable } from './types.ts';

/** A pseudo-label this widely agreed on but wrong is a confident mistake: the case a reviewer most needs to see. */
export const CONFIDENT_MAJORITY = 0.8;
/** Below this majority ratio the votes barely agree. */
export const LOW_CONSENSUS = 0.5;

export function toReviewView(r: Review): ReviewView {
  return { id: r.id, runId: r.runId, rolloutId: r.rolloutId, datasetId: r.datasetId, itemIdx: r.itemIdx, verdict: r.verdict, label: r.label, createdAt: r.createdAt };
}

/** The pseudo-label each prompt of a step got the most recent earlier time it was drawn in the run (one query). */
function previousLabels(deps: ApiDeps, runId: number, step: number): Map<number, string | null> {
  const rows = deps.db
    .stmt<{ item_idx: number; pseudo_label: string | null }>(
      `SELECT r.item_idx, r.pseudo_label FROM rollouts r
         JOIN (SELECT item_idx, max(step) AS step FROM rollouts
                WHERE run_id = @run AND step < @step
                  AND item_idx IN (SELECT item_idx FROM rollouts WHERE run_id = @run AND step = @step)
                GROUP BY item_idx) p
           ON p.item_idx = r.item_idx AND p.step = r.step
        WHERE r.run_id = @run
        ORDER BY r.group_idx`,
    )
    .all({ run: runId, step });
  return new Map(rows.map((r) => [r.item_idx, r.pseudo_label]));
}

function summarize(r: Rollout, truth: Map<number, string>, previous: Map<number, string | null>, reviews: Map<number, Review>): GroupSummary {
  const drawnBefore = r.itemIdx !== null && previous.has(r.itemIdx);
  const previousLabel = drawnBefore ? (previous.get(r.itemIdx!) ?? null) : null;
  const review = reviews.get(r.id);
  return {
    rolloutId: r.id,
    step: r.step,
    groupIdx: r.groupIdx,
    itemIdx: r.itemIdx,
    prompt: r.prompt,
    pseudoLabel: r.pseudoLabel,
    truth: r.itemIdx === null ? null : (truth.get(r.itemIdx) ?? null),
    voteCounts: r.voteCounts,
    majorityRatio: r.majorityRatio,
    labelCorrect: r.labelCorrect,
    labeled: r.labeled,
    confidentMistake: r.majorityRatio !== null && r.majorityRatio >= CONFIDENT_MAJORITY && r.labelCorrect === false,
    lowConsensus: r.majorityRatio !== null && r.majorityRatio < LOW_CONSENSUS,
    labelChanged: drawnBefore && previousLabel !== r.pseudoLabel,
    previousLabel,
    review: review ? toReviewView(review) : null,
  };
}

/** Every group of one step of a run, as the inspector lists them. */
export function stepGroups(deps: ApiDeps, run: RunInfo, step: number): GroupSummary[] {
  return deps.db.read(`reading step ${step} of run ${run.id}`, () => {
    const rollouts = rolloutsAtStep(deps.db, run.id, step);
    if (rollouts.length === 0 && !deps.db.stmt('SELECT 1 FROM steps WHERE run_id = ? AND step = ?').get(run.id, step)) {
      throw new ApiError('NOT_FOUND', `Run ${run.id} has no step ${step} recorded.`);
    }
    const idxs = [...new Set(rollouts.map((r) => r.itemIdx).filter((i): i is number => i !== null))];
    // The hidden labels are shown beside the pseudo-labels, for the person only.
    const truth = run.datasetId === null ? new Map<number, string>() : evaluationAnswers(deps.db, run.datasetId, idxs);
    const previous = previousLabels(deps, run.id, step);
    const reviews = reviewsAtStep(deps.db, run.id, step);
    return rollouts.map((r) => summarize(r, truth, previous, reviews));
  });
}

const FILTERS: Record<string, (g: GroupSummary) => boolean> = {
  all: () => true,
  'confident-mistakes': (g) => g.confidentMistake,
  'low-consensus': (g) => g.lowConsensus,
  'label-changed': (g) => g.labelChanged,
  unreviewed: (g) => g.review === null,
};

/**
 * Splits token ids into the text each adds, so the pieces concatenate to the decoded whole:
 * each token is decoded after a few tokens of context and the context's text removed (decoding a
 * token alone drops SentencePiece's leading space), and a token that ends inside a multi-byte
 * character gets '' and its bytes go to the token that completes it.
 */
export function tokenTexts(tokenizer: Pick<TextTokenizer, 'decode'>, ids: ArrayLike<number>): string[] {
  const all = Array.from(ids);
  const out: string[] = [];
  let prefixStart = 0;
  let readStart = 0;
  for (let i = 0; i < all.length; i++) {
    const before = tokenizer.decode(all.slice(prefixStart, readStart));
    const after = tokenizer.decode(all.slice(prefixStart, i + 1));
    const last = i === all.length - 1;
    if (after.startsWith(before) && (last || (after.length > before.length && !after.endsWith('\uFFFD')))) {
      out.push(after.slice(before.length));
      prefixStart = readStart;
      readStart = i + 1;
    } else if (last) {
      // The context decoded differently once this token joined it: the pending tail belongs here.
      out.push(tokenizer.decode(all.slice(readStart)));
    } else {
      out.push('');
    }
  }
  return out;
}

const score = (a: Float32Array | null, i: number): number | null => (a && i < a.length && Number.isFinite(a[i]) ? a[i] : null);

/** A sample's tokens with their scores: decoded ids where stored, else characters where the counts agree. */
export function sampleTokens(
  s: Pick<Sample, 'text' | 'tokenIds' | 'logprobs' | 'entropies'> & Partial<Pick<Sample, 'selfCertainties'>>,
  tokenizer: Pick<TextTokenizer, 'decode'> | null,
): TokenView[] {
  const certainty = s.selfCertainties ?? null;
  const pair = (texts: string[]): TokenView[] =>
    texts.map((text, i) => ({ text, logprob: score(s.logprobs, i), entropy: score(s.entropies, i), selfCertainty: score(certainty, i) }));
  if (s.tokenIds && tokenizer) return pair(tokenTexts(tokenizer, s.tokenIds));
  // Older rows store no ids; the built-in models are character-level, where a character is a token.
  const chars = [...s.text];
  const n = s.logprobs?.length ?? s.entropies?.length ?? -1;
  if (n === chars.length) return pair(chars);
  return s.text === '' ? [] : [{ text: s.text, logprob: null, entropy: null, selfCertainty: null }];
}

async function runTokenizer(deps: ApiDeps, run: RunInfo): Promise<TextTokenizer | null> {
  try {
    return await folderTokenizer(resolveModel(run.model, deps.home));
  } catch {
    // The model folder moved or broke since the run: the samples still show, untokenised.
    return null;
  }
}

export const stepHandlers = {
  'steps.groups': (p, deps) => {
    const run = runOrThrow(deps, p.runId);
    return stepGroups(deps, run, p.step).filter(FILTERS[p.filter]);
  },

  'steps.group': async (p, deps) => {
    const rollout = getRollout(deps.db, p.rolloutId);
    if (!rollout) throw new ApiError('NOT_FOUND', `There is no prompt group (rollout) ${p.rolloutId}; its run may have been deleted or rolled back.`);
    const run = getRun(deps.db, rollout.runId)!;
    const group = stepGroups(deps, run, rollout.step).find((g) => g.rolloutId === rollout.id)!;
    const samples = samplesOfRollout(deps.db, rollout.id);
    const tokenizer = samples.some((s) => s.tokenIds) ? await runTokenizer(deps, run) : null;
    return {
      group,
      samples: samples.map((s) => ({
        id: s.id,
        idx: s.idx,
        text: s.text,
        extractedAnswer: s.extractedAnswer,
        reward: s.reward,
        advantage: s.advantage,
        usedForTraining: s.usedForTraining,
        details: s.details,
        judge: s.judge,
        tokens: sampleTokens(s, tokenizer),
      })),
    };
  },
} satisfies HandlerTable<'steps.groups' | 'steps.group'>;
