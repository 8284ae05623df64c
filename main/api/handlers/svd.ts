// Self-verified distillation (issue 17): a run's rounds as funnels, a round's candidates with
// every stage's votes (the prompts and responses behind them), and a person's review of a
// survivor before its round's SFT.
import { ApiError, type SvdCandidateView, type SvdRoundView } from '../../../contract/index.ts';
import { DatabaseError, type ExperimentDb, type SvdCandidate, getSvdCandidate, listSvdRounds, setSvdReview, svdCandidates, svdVerdicts } from '../../db/index.ts';
import { runOrThrow } from './runs.ts';
import type { HandlerTable } from './types.ts';

const share = (xs: readonly SvdCandidate[]): number | null => {
  const known = xs.filter((c) => c.correct !== null);
  return known.length === 0 ? null : known.filter((c) => c.correct).length / known.length;
};

function roundView(db: ExperimentDb, runId: number, round: { round: number; status: SvdRoundView['status']; stages: string[] }): SvdRoundView {
  const cs = svdCandidates(db, runId, round.round);
  const through = round.stages.map((_, s) => cs.filter((c) => c.rejectedStage === null || c.rejectedStage > s));
  const sft = cs.filter((c) => c.selection === 'sft' && c.review?.verdict !== 'reject');
  return {
    round: round.round,
    status: round.status,
    stages: round.stages,
    candidates: cs.length,
    survivors: through.map((t) => t.length),
    precision: through.map(share),
    rawAccuracy: share(cs),
    sft: sft.length,
    sftPrecision: share(sft),
    rejectedByReview: cs.filter((c) => c.selection !== null && c.review?.verdict === 'reject').length,
  };
}

function candidateViews(db: ExperimentDb, runId: number, round: number, stages: readonly string[], cs: readonly SvdCandidate[]): SvdCandidateView[] {
  const verdicts = svdVerdicts(db, runId, round);
  return cs.map((c) => ({
    id: c.id,
    round: c.round,
    question: c.question,
    itemIdx: c.itemIdx,
    prompt: c.prompt,
    idx: c.idx,
    text: c.text,
    answer: c.answer,
    correct: c.correct,
    rejectedStage: c.rejectedStage,
    selection: c.selection,
    review: c.review,
    stages: verdicts.filter((v) => v.candidateId === c.id).map((v) => ({ stage: stages[v.stage] ?? `stage ${v.stage + 1}`, accepted: c.rejectedStage !== v.stage, votes: v.votes })),
  }));
}

export const svdHandlers = {
  'svd.rounds': (p, deps) => {
    runOrThrow(deps, p.runId);
    return listSvdRounds(deps.db, p.runId).map((r) => roundView(deps.db, p.runId, r));
  },
  'svd.candidates': (p, deps) => {
    runOrThrow(deps, p.runId);
    const round = listSvdRounds(deps.db, p.runId).find((r) => r.round === p.round);
    if (!round) throw new ApiError('NOT_FOUND', `Run ${p.runId} has no distillation round ${p.round}.`);
    const survived = (c: SvdCandidate) => c.rejectedStage === null && c.selection !== null;
    const keep: Record<typeof p.filter, (c: SvdCandidate) => boolean> = {
      all: () => true,
      survivors: survived,
      sft: (c) => c.selection === 'sft' && c.review?.verdict !== 'reject',
      rejected: (c) => c.rejectedStage !== null && (p.rejectedAt === undefined || c.rejectedStage === p.rejectedAt),
      'survived-wrong': (c) => survived(c) && c.correct === false,
    };
    return candidateViews(deps.db, p.runId, p.round, round.stages, svdCandidates(deps.db, p.runId, p.round).filter(keep[p.filter]));
  },
  'svd.review': (p, deps) => {
    const c = getSvdCandidate(deps.db, p.candidateId);
    if (!c) throw new ApiError('NOT_FOUND', `There is no candidate ${p.candidateId}; its run may have been deleted or resumed from an earlier round.`);
    try {
      setSvdReview(deps.db, p.candidateId, p.verdict, p.note);
    } catch (e) {
      if (e instanceof DatabaseError && e.code === 'INVALID') throw new ApiError('CONFLICT', e.message);
      throw e;
    }
    const round = listSvdRounds(deps.db, c.runId).find((r) => r.round === c.round)!;
    return candidateViews(deps.db, c.runId, c.round, round.stages, [getSvdCandidate(deps.db, p.candidateId)!])[0];
  },
} satisfies HandlerTable<'svd.rounds' | 'svd.candidates' | 'svd.review'>;
