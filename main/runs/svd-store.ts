// A distillation run's rounds in the experiment database: the round runner's store
// (`engine/svd/round.ts`) bound to one run.
import { type ExperimentDb, createSvdRound, getSvdRound, recordSvdSelection, recordSvdVerdicts, setSvdRoundStatus, svdCandidates, svdTrainingSet, svdVerdicts } from '../db/index.ts';
import type { SvdStore } from '../engine/svd/round.ts';

export function svdStore(db: ExperimentDb, runId: number): SvdStore {
  return {
    round: (round) => {
      const r = getSvdRound(db, runId, round);
      return r ? { stages: r.stages, status: r.status, candidates: svdCandidates(db, runId, round), verdicts: svdVerdicts(db, runId, round) } : null;
    },
    createRound: (round, stages, candidates) => createSvdRound(db, runId, round, stages, candidates),
    recordVerdicts: (round, verdicts) => recordSvdVerdicts(db, runId, round, verdicts),
    recordSelection: (round, selection, status) => recordSvdSelection(db, runId, round, selection, status),
    setStatus: (round, status) => setSvdRoundStatus(db, runId, round, status),
    trainingSet: (round) => svdTrainingSet(db, runId, round),
  };
}
