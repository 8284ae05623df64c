// The distillation funnel through the API: a round's survivors after each stage and precision
// against hidden answers, candidates filtered by the stage that rejected them or survived but
// wrong, each with its votes' prompts and responses, and a person's review of a survivor, which
// keeps a rejected one out of the SFT set and is refused once the round has trained.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRun, createSvdRound, recordSvdSelection, recordSvdVerdicts, setSvdRoundStatus, svdTrainingSet } from '../../../main/db/index.ts';
import { type Harness, createHarness } from './handlers-harness.ts';

let h: Harness;
beforeEach(() => {
  h = createHarness();
});
afterEach(() => h.close());

const cand = (question: number, idx: number, answer: string, correct: boolean) => ({ question, itemIdx: question, prompt: `Compute ${question}+1. Answer: `, idx, text: answer, answer, tokenIds: [5, 6], correct });
const vote = (accept: boolean) => ({ accept, exchanges: [{ prompt: 'p?', response: accept ? 'yes' : 'no' }] });

function round(): { runId: number; ids: number[] } {
  const runId = createRun(h.db, { name: 'svd', method: 'svd', model: 'tiny-arith', dataset: 'd', config: { method: 'svd' } }).id;
  const cs = createSvdRound(h.db, runId, 1, ['cycle', 'factuality'], [cand(0, 0, '1', true), cand(0, 1, '2', false), cand(1, 0, '2', true), cand(1, 1, '9', false)]);
  const ids = cs.map((c) => c.id);
  recordSvdVerdicts(h.db, runId, 1, [
    { candidateId: ids[0], stage: 0, votes: [vote(true)], accepted: true },
    { candidateId: ids[1], stage: 0, votes: [vote(true)], accepted: true },
    { candidateId: ids[2], stage: 0, votes: [vote(true)], accepted: true },
    { candidateId: ids[3], stage: 0, votes: [vote(false)], accepted: false },
  ]);
  recordSvdVerdicts(h.db, runId, 1, [
    { candidateId: ids[0], stage: 1, votes: [vote(true)], accepted: true },
    { candidateId: ids[1], stage: 1, votes: [vote(true)], accepted: true },
    { candidateId: ids[2], stage: 1, votes: [vote(false)], accepted: false },
  ]);
  recordSvdSelection(h.db, runId, 1, new Map([[ids[0], 'sft'], [ids[1], 'sft']]), 'review');
  return { runId, ids };
}

describe('svd requests', () => {
  it('gives each round as a funnel with precision per stage', async () => {
    const { runId } = round();
    expect(await h.call('svd.rounds', { runId })).toEqual([
      { round: 1, status: 'review', stages: ['cycle', 'factuality'], candidates: 4, survivors: [3, 2], precision: [2 / 3, 0.5], rawAccuracy: 0.5, sft: 2, sftPrecision: 0.5, rejectedByReview: 0 },
    ]);
  });

  it('filters candidates: rejected at a stage, survived but wrong; each with its votes', async () => {
    const { runId, ids } = round();
    const atFactuality = await h.call('svd.candidates', { runId, round: 1, filter: 'rejected', rejectedAt: 1 });
    expect(atFactuality.map((c) => c.id)).toEqual([ids[2]]);
    expect(atFactuality[0].stages).toEqual([
      { stage: 'cycle', accepted: true, votes: [vote(true)] },
      { stage: 'factuality', accepted: false, votes: [vote(false)] },
    ]);
    expect((await h.call('svd.candidates', { runId, round: 1, filter: 'survived-wrong' })).map((c) => c.id)).toEqual([ids[1]]);
    expect((await h.call('svd.candidates', { runId, round: 1, filter: 'rejected' })).map((c) => c.id)).toEqual([ids[2], ids[3]]);
    expect((await h.refused('svd.candidates', { runId, round: 2 })).message).toBe(`Run ${runId} has no distillation round 2.`);
  });

  it('a rejected survivor leaves the SFT set; reviews close when the round has trained', async () => {
    const { runId, ids } = round();
    const reviewed = await h.call('svd.review', { candidateId: ids[1], verdict: 'reject', note: '2 is wrong' });
    expect(reviewed.review).toEqual({ verdict: 'reject', note: '2 is wrong' });
    expect(svdTrainingSet(h.db, runId, 1).map((c) => c.id)).toEqual([ids[0]]);
    expect((await h.call('svd.rounds', { runId }))[0]).toMatchObject({ sft: 1, sftPrecision: 1, rejectedByReview: 1 });
    expect((await h.refused('svd.review', { candidateId: ids[3], verdict: 'accept' })).code).toBe('CONFLICT');
    setSvdRoundStatus(h.db, runId, 1, 'trained');
    const late = await h.refused('svd.review', { candidateId: ids[0], verdict: 'reject' });
    expect(late).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('already been trained on') });
  });
});
