// Self-verified distillation's rounds in the database (migration 11): a round's candidates, every
// stage's votes with the prompts and responses behind them, what became of the survivors, and a
// person's reviews. Each write is one transaction, so a round killed at any moment holds whole
// candidates and whole chunks of verdicts, and the round runner continues from exactly there.
import { DatabaseError, type ExperimentDb } from './database.ts';

export type SvdRoundStatus = 'judging' | 'review' | 'training' | 'trained';
export type SvdSelection = 'sft' | 'duplicate' | 'cap';

export interface SvdExchange {
  prompt: string;
  response: string;
}

export interface SvdVote {
  accept: boolean | null;
  exchanges: SvdExchange[];
}

export interface SvdRound {
  runId: number;
  round: number;
  stages: string[];
  status: SvdRoundStatus;
  createdAt: string;
}

export interface NewSvdCandidate {
  question: number;
  itemIdx: number | null;
  prompt: string;
  idx: number;
  text: string;
  answer: string | null;
  tokenIds: readonly number[];
  correct: boolean | null;
}

export interface SvdCandidate extends NewSvdCandidate {
  id: number;
  round: number;
  rejectedStage: number | null;
  selection: SvdSelection | null;
  /** A person's review, where there is one. */
  review: { verdict: 'accept' | 'reject'; note: string | null } | null;
}

/** One stage's votes about a candidate, as stored. */
export interface SvdStageVerdict {
  candidateId: number;
  stage: number;
  votes: SvdVote[];
}

interface CandidateRow {
  id: number;
  round: number;
  question: number;
  item_idx: number | null;
  prompt: string;
  idx: number;
  text: string;
  answer: string | null;
  token_ids: Buffer;
  correct: number | null;
  rejected_stage: number | null;
  selection: SvdSelection | null;
  review_verdict: 'accept' | 'reject' | null;
  review_note: string | null;
}

const toCandidate = (r: CandidateRow): SvdCandidate => ({
  id: r.id,
  round: r.round,
  question: r.question,
  itemIdx: r.item_idx,
  prompt: r.prompt,
  idx: r.idx,
  text: r.text,
  answer: r.answer,
  tokenIds: Array.from(new Int32Array(r.token_ids.buffer.slice(r.token_ids.byteOffset, r.token_ids.byteOffset + r.token_ids.byteLength))),
  correct: r.correct === null ? null : r.correct === 1,
  rejectedStage: r.rejected_stage,
  selection: r.selection,
  review: r.review_verdict === null ? null : { verdict: r.review_verdict, note: r.review_note },
});

export function getSvdRound(db: ExperimentDb, runId: number, round: number): SvdRound | null {
  const r = db.stmt<{ run_id: number; round: number; stages: string; status: SvdRoundStatus; created_at: string }>('SELECT * FROM svd_rounds WHERE run_id = ? AND round = ?').get(runId, round);
  return r ? { runId: r.run_id, round: r.round, stages: JSON.parse(r.stages) as string[], status: r.status, createdAt: r.created_at } : null;
}

export function listSvdRounds(db: ExperimentDb, runId: number): SvdRound[] {
  return db
    .stmt<{ run_id: number; round: number; stages: string; status: SvdRoundStatus; created_at: string }>('SELECT * FROM svd_rounds WHERE run_id = ? ORDER BY round')
    .all(runId)
    .map((r) => ({ runId: r.run_id, round: r.round, stages: JSON.parse(r.stages) as string[], status: r.status, createdAt: r.created_at }));
}

/** A round and all its candidates, in one transaction: a round is there with every candidate or not at all. */
export function createSvdRound(db: ExperimentDb, runId: number, round: number, stages: readonly string[], candidates: readonly NewSvdCandidate[]): SvdCandidate[] {
  return db.write(`round ${round} of run ${runId}`, () => {
    if (!db.stmt('SELECT 1 FROM runs WHERE id = ?').get(runId)) throw new DatabaseError('NOT_FOUND', `No run ${runId}.`);
    if (db.stmt('SELECT 1 FROM svd_rounds WHERE run_id = ? AND round = ?').get(runId, round)) throw new DatabaseError('STEP_EXISTS', `Round ${round} of run ${runId} is already recorded.`);
    db.stmt('INSERT INTO svd_rounds (run_id, round, stages) VALUES (?, ?, ?)').run(runId, round, JSON.stringify(stages));
    const insert = db.stmt('INSERT INTO svd_candidates (run_id, round, question, item_idx, prompt, idx, text, answer, token_ids, correct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (const c of candidates) {
      const ids = Int32Array.from(c.tokenIds);
      insert.run(runId, round, c.question, c.itemIdx, c.prompt, c.idx, c.text, c.answer, Buffer.from(ids.buffer), c.correct === null ? null : c.correct ? 1 : 0);
    }
    return svdCandidates(db, runId, round);
  });
}

/** A round's candidates, in question and candidate order, with their reviews. */
export function svdCandidates(db: ExperimentDb, runId: number, round: number): SvdCandidate[] {
  return db
    .stmt<CandidateRow>(
      `SELECT c.*, r.verdict AS review_verdict, r.note AS review_note FROM svd_candidates c LEFT JOIN svd_reviews r ON r.candidate_id = c.id
       WHERE c.run_id = ? AND c.round = ? ORDER BY c.question, c.idx`,
    )
    .all(runId, round)
    .map(toCandidate);
}

export function getSvdCandidate(db: ExperimentDb, id: number): (SvdCandidate & { runId: number }) | null {
  const r = db
    .stmt<CandidateRow & { run_id: number }>('SELECT c.*, r.verdict AS review_verdict, r.note AS review_note FROM svd_candidates c LEFT JOIN svd_reviews r ON r.candidate_id = c.id WHERE c.id = ?')
    .get(id);
  return r ? { ...toCandidate(r), runId: r.run_id } : null;
}

/**
 * One chunk of stage verdicts, in one transaction: every vote, and the candidates the stage
 * rejected. A verdict already stored is refused (the round runner asks only what is missing, so
 * that would be a second answer to the same question).
 */
export function recordSvdVerdicts(db: ExperimentDb, runId: number, round: number, verdicts: readonly (SvdStageVerdict & { accepted: boolean })[]): void {
  db.write(`verdicts of round ${round} of run ${runId}`, () => {
    const insert = db.stmt('INSERT INTO svd_verdicts (candidate_id, stage, vote, accept, exchanges) VALUES (?, ?, ?, ?, ?)');
    const reject = db.stmt('UPDATE svd_candidates SET rejected_stage = ? WHERE id = ? AND run_id = ? AND round = ? AND rejected_stage IS NULL');
    for (const v of verdicts) {
      if (db.stmt('SELECT 1 FROM svd_verdicts WHERE candidate_id = ? AND stage = ?').get(v.candidateId, v.stage)) {
        throw new DatabaseError('STEP_EXISTS', `Stage ${v.stage + 1}'s verdict on candidate ${v.candidateId} is already recorded.`);
      }
      v.votes.forEach((vote, i) => insert.run(v.candidateId, v.stage, i, vote.accept === null ? null : vote.accept ? 1 : 0, JSON.stringify(vote.exchanges)));
      if (!v.accepted && reject.run(v.stage, v.candidateId, runId, round).changes !== 1) {
        throw new DatabaseError('INVALID', `Candidate ${v.candidateId} is not a surviving candidate of round ${round} of run ${runId}.`);
      }
    }
  });
}

/** Every stored stage verdict of a round, in candidate, stage and vote order. */
export function svdVerdicts(db: ExperimentDb, runId: number, round: number): SvdStageVerdict[] {
  const rows = db
    .stmt<{ candidate_id: number; stage: number; accept: number | null; exchanges: string }>(
      `SELECT v.candidate_id, v.stage, v.accept, v.exchanges FROM svd_verdicts v JOIN svd_candidates c ON c.id = v.candidate_id
       WHERE c.run_id = ? AND c.round = ? ORDER BY c.question, c.idx, v.stage, v.vote`,
    )
    .all(runId, round);
  const out: SvdStageVerdict[] = [];
  for (const r of rows) {
    let last = out.at(-1);
    if (!last || last.candidateId !== r.candidate_id || last.stage !== r.stage) out.push((last = { candidateId: r.candidate_id, stage: r.stage, votes: [] }));
    last.votes.push({ accept: r.accept === null ? null : r.accept === 1, exchanges: JSON.parse(r.exchanges) as SvdExchange[] });
  }
  return out;
}

/** The cascade's end: what became of each survivor, and the round's new status, in one transaction. */
export function recordSvdSelection(db: ExperimentDb, runId: number, round: number, selection: ReadonlyMap<number, SvdSelection>, status: SvdRoundStatus): void {
  db.write(`the SFT set of round ${round} of run ${runId}`, () => {
    const set = db.stmt('UPDATE svd_candidates SET selection = ? WHERE id = ? AND run_id = ? AND round = ?');
    db.stmt('UPDATE svd_candidates SET selection = NULL WHERE run_id = ? AND round = ?').run(runId, round);
    for (const [id, s] of selection) set.run(s, id, runId, round);
    setStatus(db, runId, round, status);
  });
}

function setStatus(db: ExperimentDb, runId: number, round: number, status: SvdRoundStatus): void {
  if (db.stmt('UPDATE svd_rounds SET status = ? WHERE run_id = ? AND round = ?').run(status, runId, round).changes !== 1) throw new DatabaseError('NOT_FOUND', `No round ${round} of run ${runId}.`);
}

export function setSvdRoundStatus(db: ExperimentDb, runId: number, round: number, status: SvdRoundStatus): void {
  db.write(`the status of round ${round} of run ${runId}`, () => setStatus(db, runId, round, status));
}

/** Removes a run's rounds after `round` (a resume from an earlier checkpoint samples them again from that model). */
export function deleteSvdRoundsAfter(db: ExperimentDb, runId: number, round: number): number {
  return db.write(`rounds after ${round} of run ${runId}`, () => db.stmt('DELETE FROM svd_rounds WHERE run_id = ? AND round > ?').run(runId, round).changes);
}

/**
 * A person's review of a survivor (accept, or reject: it leaves the SFT set when its round trains),
 * or with null, none. Refused for a candidate that is not a survivor, and once its round has trained.
 */
export function setSvdReview(db: ExperimentDb, candidateId: number, verdict: 'accept' | 'reject' | null, note: string | null = null): SvdCandidate {
  return db.write(`the review of candidate ${candidateId}`, () => {
    const c = getSvdCandidate(db, candidateId);
    if (!c) throw new DatabaseError('NOT_FOUND', `No candidate ${candidateId}.`);
    if (c.rejectedStage !== null || c.selection === null) throw new DatabaseError('INVALID', `Candidate ${candidateId} did not survive the cascade of its round; only survivors are reviewed.`);
    const round = getSvdRound(db, c.runId, c.round)!;
    if (round.status === 'trained') throw new DatabaseError('INVALID', `Round ${c.round} of run ${c.runId} has already been trained on; its reviews can no longer change its SFT set.`);
    if (verdict === null) db.stmt('DELETE FROM svd_reviews WHERE candidate_id = ?').run(candidateId);
    else {
      db.stmt(
        `INSERT INTO svd_reviews (candidate_id, verdict, note) VALUES (?, ?, ?)
         ON CONFLICT (candidate_id) DO UPDATE SET verdict = excluded.verdict, note = excluded.note, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
      ).run(candidateId, verdict, note);
    }
    return getSvdCandidate(db, candidateId)!;
  });
}

/** The SFT set a round trains on: its selected survivors less those a person rejected, in order. */
export function svdTrainingSet(db: ExperimentDb, runId: number, round: number): SvdCandidate[] {
  return svdCandidates(db, runId, round).filter((c) => c.selection === 'sft' && c.review?.verdict !== 'reject');
}
