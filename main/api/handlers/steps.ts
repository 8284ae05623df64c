// The trajectory inspector: the review queue (a run's prompt groups in one step or across all
// its steps, with the hidden truth beside each pseudo-label and the filters a reviewer needs:
// confident mistakes, low consensus, labels that changed since the prompt was last drawn,
// unreviewed), and one group's samples split into tokens with their log-probs and entropies.
import { ApiError, type GroupPage, type GroupSummary, REVIEW_THRESHOLDS, type ReviewView, type TokenView } from '../../../contract/index.ts';
import {
  type QueueGroup,
  type QueueSelection,
  type Review,
  type RunInfo,
  type Sample,
  evaluationAnswers,
  executionOfRollout,
  getRollout,
  getRun,
  hasStep,
  reviewQueue,
  samplesOfRollout,
} from '../../db/index.ts';
import type { TextTokenizer } from '../../engine/nn/tokenizer.ts';
import { resolveModel } from '../../runs/start.ts';
import { folderTokenizer } from '../models.ts';
import { runOrThrow } from './runs.ts';
import type { ApiDeps, HandlerTable } from './types.ts';

type Thresholds = Pick<QueueSelection, 'confidentAbove' | 'lowConsensusBelow'>;

export function toReviewView(r: Review): ReviewView {
  return { id: r.id, runId: r.runId, rolloutId: r.rolloutId, datasetId: r.datasetId, itemIdx: r.itemIdx, verdict: r.verdict, label: r.label, note: r.note, createdAt: r.createdAt };
}

function summarize(r: QueueGroup, truth: Map<number, string>, t: Thresholds): GroupSummary {
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
    // The model's own vote, confidently wrong: not a group without a pseudo-label (a tie; a method
    // that gives none, as token entropy), nor one that took a person's label (its majority is the
    // vote's, the error the person's). The queue's filter (review-queue.ts) is the same test.
    confidentMistake: r.labelSource === 'vote' && r.pseudoLabel !== null && r.majorityRatio !== null && r.majorityRatio >= t.confidentAbove && r.labelCorrect === false,
    lowConsensus: r.majorityRatio !== null && r.majorityRatio < t.lowConsensusBelow,
    labelChanged: r.drawnBefore && r.previousLabel !== r.pseudoLabel,
    previousLabel: r.previousLabel,
    review: r.review ? toReviewView(r.review) : null,
    labelSource: r.labelSource,
    reviewMatches: r.reviewMatches,
  };
}

/** A page of the groups a selection matches, as the inspector lists them, with the counts over all of them. */
export function groupPage(deps: ApiDeps, run: RunInfo, s: QueueSelection, page: { offset: number; limit: number }): GroupPage {
  const where = s.step === undefined ? `run ${run.id}` : `step ${s.step} of run ${run.id}`;
  return deps.db.read(`reading the groups of ${where}`, () => {
    if (s.step !== undefined && !hasStep(deps.db, run.id, s.step)) throw new ApiError('NOT_FOUND', `Run ${run.id} has no step ${s.step} recorded.`);
    const q = reviewQueue(deps.db, s, page);
    const idxs = [...new Set(q.groups.map((r) => r.itemIdx).filter((i): i is number => i !== null))];
    // The hidden labels are shown beside the pseudo-labels, for the person only.
    const truth = run.datasetId === null ? new Map<number, string>() : evaluationAnswers(deps.db, run.datasetId, idxs);
    return { groups: q.groups.map((r) => summarize(r, truth, s)), total: q.total, reviewed: q.reviewed, agreeable: q.agreeable, offset: page.offset, asOf: q.asOf };
  });
}

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
    const { offset, limit, ...selection } = p;
    return groupPage(deps, runOrThrow(deps, p.runId), selection, { offset, limit });
  },

  'steps.group': async (p, deps) => {
    const rollout = getRollout(deps.db, p.rolloutId);
    if (!rollout) throw new ApiError('NOT_FOUND', `There is no prompt group (rollout) ${p.rolloutId}; its run may have been deleted or rolled back.`);
    const run = getRun(deps.db, rollout.runId)!;
    const selection = { runId: run.id, step: rollout.step, rolloutId: rollout.id, filter: 'all', ...REVIEW_THRESHOLDS } as const;
    const group = groupPage(deps, run, selection, { offset: 0, limit: 1 }).groups[0];
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
        hiddenResult: s.hiddenResult,
      })),
      execution: executionOfRollout(deps.db, rollout.id),
    };
  },
} satisfies HandlerTable<'steps.groups' | 'steps.group'>;
