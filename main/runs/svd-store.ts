// A distillation run's rounds in the experiment database: the round runner's store
// (`engine/svd/round.ts`) bound to one run.
import { type ExperimentDb, createSvdRound, getDataset, getRun, getSvdRound, importDataset, recordSvdSelection, recordSvdVerdicts, setSvdRoundStatus, svdCandidates, svdTrainingSet, svdVerdicts } from '../db/index.ts';
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
    publish: (round) => publishSvdSet(db, runId, round),
  };
}

/** The name of the dataset that keeps round `round`'s SFT set of run `runId`. */
export const svdSetName = (runId: number, round: number) => `svd-run${runId}-round${round}`;

/**
 * A trained round's SFT set as a dataset of its own (a new version per round): each survivor's
 * question as the prompt, no hidden answer (the candidate's is the model's own, not a label), and
 * its provenance in the metadata: run, round, candidate id (whose stage votes, prompts and
 * responses the run keeps), the response and its answer, and the dataset item it came from.
 */
export function publishSvdSet(db: ExperimentDb, runId: number, round: number): void {
  const name = svdSetName(runId, round);
  const set = svdTrainingSet(db, runId, round);
  // Nothing survived: no empty dataset in the list.
  if (set.length === 0 || getDataset(db, name)) return;
  const run = getRun(db, runId);
  importDataset(
    db,
    { name, source: `svd:run ${runId} round ${round}`, fieldMapping: { kind: 'svd-sft-set', runId, round, ...(run?.datasetId != null && { fromDataset: run.datasetId }) } },
    set.map((c) => ({
      prompt: c.prompt,
      answer: null,
      split: 'train' as const,
      metadata: { runId, round, candidateId: c.id, response: c.text, answer: c.answer, itemIdx: c.itemIdx, question: c.question, candidate: c.idx },
    })),
  );
}
