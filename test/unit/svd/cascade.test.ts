// The cascade's control flow on a scripted judge (issue 17, acceptance 4): stages in order, V
// votes each, unanimous or majority, no judge call after the rejecting stage, survivors
// deduplicated by answer and capped per question, and a resumed cascade that asks only what was
// not yet answered.
import { describe, expect, it } from 'vitest';
import {
  type CascadeCandidate,
  type StageId,
  type StageJudge,
  type StageOutcome,
  cascadeMetrics,
  parseVerdict,
  runCascade,
  selectSurvivors,
  stageAccepts,
} from '../../../main/engine/svd/cascade.ts';
import type { Judge } from '../../../main/engine/rl/judge.ts';
import { DOMAIN_TEMPLATES, fillTemplate, modelStageJudge, patternGroups } from '../../../main/engine/svd/stages.ts';

const cand = (id: number, question: number, answer: string | null): CascadeCandidate => ({ id, question, text: `the answer is ${answer}`, answer });

/** A judge whose votes per (stage, candidate) are scripted ('Y' yes, 'N' no, '?' no verdict); it records every question. */
function scripted(votes: Record<string, string>) {
  const calls: { stage: StageId; ids: number[] }[] = [];
  const judge: StageJudge = async (stage, batch, v) => {
    calls.push({ stage, ids: batch.map((c) => c.id) });
    return batch.map((c) => {
      const script = votes[`${stage}/${c.id}`] ?? 'Y'.repeat(v);
      expect(script.length).toBe(v);
      return [...script].map((x) => ({ accept: x === 'Y' ? true : x === 'N' ? false : null, exchanges: [{ prompt: `${stage}?${c.id}`, response: x }] }));
    });
  };
  return { judge, calls };
}

const STAGES: StageId[] = ['cycle', 'factuality', 'correctness'];

describe('stage votes', () => {
  it('unanimous needs every vote; majority more than half; a vote without a verdict never accepts', () => {
    const v = (s: string) => [...s].map((x) => ({ accept: x === 'Y' ? true : x === 'N' ? false : null }));
    expect(stageAccepts(v('YYY'), 'unanimous')).toBe(true);
    expect(stageAccepts(v('YYN'), 'unanimous')).toBe(false);
    expect(stageAccepts(v('YY?'), 'unanimous')).toBe(false);
    expect(stageAccepts(v('YYN'), 'majority')).toBe(true);
    expect(stageAccepts(v('YN?'), 'majority')).toBe(false);
    expect(stageAccepts(v('YN'), 'majority')).toBe(false);
    expect(stageAccepts(v(''), 'majority')).toBe(false);
  });

  it('reads the last verdict marker the judge wrote', () => {
    expect(parseVerdict('Answer with [[Y]] or [[N]].\nRelevant: [[Y]]', '[[Y]]', '[[N]]')).toBe(true);
    expect(parseVerdict('It looks fine [[Y]]... wait, 3*4 is 12. No Factual Errors: [[N]]', '[[Y]]', '[[N]]')).toBe(false);
    expect(parseVerdict('I am not sure.', '[[Y]]', '[[N]]')).toBeNull();
    expect(parseVerdict('yes', 'yes', 'no')).toBe(true);
  });
});

describe('runCascade', () => {
  it('asks each stage only about the survivors of the stages before it (early rejection)', async () => {
    const cs = [cand(1, 0, '5'), cand(2, 0, '6'), cand(3, 1, '7'), cand(4, 1, '8')];
    const { judge, calls } = scripted({ 'cycle/2': 'YNY', 'factuality/3': 'NNN', 'correctness/4': 'YYN' });
    const r = await runCascade(cs, { stages: STAGES, votes: 3, rule: 'unanimous', judge, chunkSize: 10 });
    expect(calls).toEqual([
      { stage: 'cycle', ids: [1, 2, 3, 4] },
      { stage: 'factuality', ids: [1, 3, 4] },
      { stage: 'correctness', ids: [1, 4] },
    ]);
    expect([...r.rejectedAt]).toEqual([
      [1, null],
      [2, 0],
      [3, 1],
      [4, 2],
    ]);
    // Every vote of every stage asked, none of a stage after the rejection.
    expect(r.outcomes.map((o) => `${o.stage}/${o.candidateId}/${o.accepted}`)).toEqual(['0/1/true', '0/2/false', '0/3/true', '0/4/true', '1/1/true', '1/3/false', '1/4/true', '2/1/true', '2/4/false']);
    expect(r.outcomes.every((o) => o.votes.length === 3)).toBe(true);
  });

  it('keeps a candidate a majority accepts under the majority rule, and follows the stage order given', async () => {
    const cs = [cand(1, 0, '5'), cand(2, 0, '6')];
    const { judge, calls } = scripted({ 'correctness/1': 'YNY', 'correctness/2': 'Y??' });
    const r = await runCascade(cs, { stages: ['correctness', 'factuality'], votes: 3, rule: 'majority', judge, chunkSize: 1 });
    expect(r.rejectedAt.get(1)).toBeNull();
    expect(r.rejectedAt.get(2)).toBe(0);
    // chunkSize 1: a call per candidate.
    expect(calls).toEqual([
      { stage: 'correctness', ids: [1] },
      { stage: 'correctness', ids: [2] },
      { stage: 'factuality', ids: [1] },
    ]);
  });

  it('resumes: stored outcomes are not asked again, and each chunk is handed over before the next is asked', async () => {
    const cs = [cand(1, 0, '5'), cand(2, 0, '6'), cand(3, 1, '7')];
    const script = { 'cycle/2': 'NN', 'factuality/3': 'YN' };
    // The whole cascade in one go, chunk by chunk.
    const full = scripted(script);
    const stored: StageOutcome[] = [];
    const handed: number[][] = [];
    const whole = await runCascade(cs, {
      stages: STAGES,
      votes: 2,
      rule: 'unanimous',
      judge: full.judge,
      chunkSize: 2,
      onOutcomes: (o) => {
        expect(full.calls.length).toBe(handed.length + 1);
        handed.push(o.map((x) => x.candidateId));
        stored.push(...o);
      },
    });
    expect(handed).toEqual([[1, 2], [3], [1, 3], [1]]);
    // Killed after the first two chunks were stored: the rest is asked, nothing twice.
    const again = scripted(script);
    const resumed = await runCascade(cs, { stages: STAGES, votes: 2, rule: 'unanimous', judge: again.judge, chunkSize: 2, known: stored.slice(0, 3) });
    expect(again.calls).toEqual([
      { stage: 'factuality', ids: [1, 3] },
      { stage: 'correctness', ids: [1] },
    ]);
    expect([...resumed.rejectedAt]).toEqual([...whole.rejectedAt]);
    expect(resumed.outcomes.map((o) => `${o.stage}/${o.candidateId}`)).toEqual(whole.outcomes.map((o) => `${o.stage}/${o.candidateId}`));
  });

  it('refuses a judge that answers for the wrong number of candidates or votes', async () => {
    const short: StageJudge = async (_s, batch) => batch.map(() => [{ accept: true, exchanges: [] }]);
    await expect(runCascade([cand(1, 0, '1')], { stages: ['factuality'], votes: 2, rule: 'unanimous', judge: short, chunkSize: 4 })).rejects.toThrow('gave 1 votes for candidate 1, not 2');
    await expect(runCascade([cand(1, 0, '1'), cand(1, 0, '2')], { stages: ['factuality'], votes: 1, rule: 'unanimous', judge: short, chunkSize: 4 })).rejects.toThrow('distinct ids');
  });

  it('stops between chunks when aborted', async () => {
    const controller = new AbortController();
    const { judge, calls } = scripted({});
    const wrapped: StageJudge = async (...args) => {
      const r = await judge(...args);
      controller.abort(new Error('stopped'));
      return r;
    };
    await expect(runCascade([cand(1, 0, '1'), cand(2, 0, '2')], { stages: ['factuality'], votes: 1, rule: 'unanimous', judge: wrapped, chunkSize: 1, signal: controller.signal })).rejects.toThrow('stopped');
    expect(calls.length).toBe(1);
  });
});

describe('selectSurvivors', () => {
  it('keeps one candidate per answer (by equivalence), the most supported answers first, at most cap per question', () => {
    const cs = [cand(1, 0, '7'), cand(2, 0, '1/2'), cand(3, 0, '0.5'), cand(4, 0, '9'), cand(5, 0, '0.50'), cand(6, 1, '3'), cand(7, 1, '4')];
    const all = new Set(cs.map((c) => c.id));
    const r = selectSurvivors(cs, all, { cap: 2, format: 'auto' });
    // Question 0: 1/2 (three survivors) first, then 7 (seen before 9); 9 is over the cap.
    expect(r.kept).toEqual([1, 2, 6, 7]);
    expect([...r.dropped].sort((a, b) => a[0] - b[0])).toEqual([
      [3, 'duplicate'],
      [4, 'cap'],
      [5, 'duplicate'],
    ]);
    // Only survivors count; cap 1.
    const some = selectSurvivors(cs, new Set([4, 7]), { cap: 1, format: 'auto' });
    expect(some.kept).toEqual([4, 7]);
    expect(some.dropped.size).toBe(0);
  });

  it('deduplicates candidates without an answer by their text', () => {
    const cs: CascadeCandidate[] = [
      { id: 1, question: 0, text: 'def f(): return 1', answer: null },
      { id: 2, question: 0, text: 'def f(): return 1 ', answer: null },
      { id: 3, question: 0, text: 'def f(): return 2', answer: null },
    ];
    const r = selectSurvivors(cs, new Set([1, 2, 3]), { cap: 5, format: 'auto' });
    expect(r.kept).toEqual([1, 3]);
    expect(r.dropped.get(2)).toBe('duplicate');
  });
});

describe('cascadeMetrics', () => {
  it('gives survivors, precision and recall per stage (cumulative), the raw accuracy and judge agreement', () => {
    const candidates = [
      { id: 1, correct: true },
      { id: 2, correct: false },
      { id: 3, correct: true },
      { id: 4, correct: false },
      { id: 5, correct: null },
    ];
    const rejectedAt = new Map<number, number | null>([
      [1, null],
      [2, 1],
      [3, 0],
      [4, null],
      [5, null],
    ]);
    const vote = (a: boolean) => ({ accept: a, exchanges: [] });
    const outcomes: StageOutcome[] = [
      { candidateId: 3, stage: 0, votes: [vote(true), vote(false), vote(false), vote(false)], accepted: false },
      { candidateId: 1, stage: 0, votes: [vote(true), vote(true), vote(true), vote(true)], accepted: true },
    ];
    const m = cascadeMetrics(candidates, ['cycle', 'factuality'], rejectedAt, outcomes, [1, 4]);
    expect(m['svd/candidates']).toBe(5);
    expect(m['svd/raw_accuracy']).toBe(0.5);
    expect(m['svd/cycle/survivors']).toBe(4);
    expect(m['svd/cycle/precision']).toBeCloseTo(1 / 3);
    expect(m['svd/cycle/recall']).toBe(0.5);
    expect(m['svd/factuality/survivors']).toBe(3);
    expect(m['svd/factuality/precision']).toBe(0.5);
    expect(m['svd/factuality/recall']).toBe(0.5);
    expect(m['svd/sft_set']).toBe(2);
    expect(m['svd/sft_precision']).toBe(0.5);
    expect(m['svd/judge_agreement']).toBe(0.875);
    expect('svd/correctness/survivors' in m).toBe(false);
  });
});

describe('the stages as prompts to the frozen model', () => {
  /** A judge that answers each prompt by a rule and records the prompts. */
  function fakeJudge(answer: (prompt: string) => string) {
    const asked: string[][] = [];
    const judge: Judge = {
      generate: async (prompts) => {
        asked.push([...prompts]);
        return prompts.map(answer);
      },
      verdicts: async () => {
        throw new Error('not used');
      },
      writtenVerdicts: async () => {
        throw new Error('not used');
      },
    };
    return { judge, asked };
  }

  it('fills the templates, votes V times and reads [[Y]]/[[N]] verdicts', async () => {
    const { judge, asked } = fakeJudge((p) => (p.startsWith('Here is an answer') ? 'What is 2+3?' : p.includes('Question B:\nWhat is 2+3?') ? 'Relevant: [[Y]]' : 'Relevant: [[N]]'));
    const stage = modelStageJudge({ judge, templates: DOMAIN_TEMPLATES.math, questionOf: () => 'What is 2+3?', questionPattern: null, answerFormat: 'auto', temperature: 0.7, judgeMaxTokens: 64, askMaxTokens: 64 });
    const votes = await stage('cycle', [cand(1, 0, '5')], 2);
    expect(asked[0]).toEqual([expect.stringContaining('the answer is 5'), expect.stringContaining('the answer is 5')]);
    expect(asked[1][0]).toContain('Question A:\nWhat is 2+3?\n\nQuestion B:\nWhat is 2+3?');
    expect(votes[0].map((v) => v.accept)).toEqual([true, true]);
    expect(votes[0][0].exchanges.map((e) => e.response)).toEqual(['What is 2+3?', 'Relevant: [[Y]]']);
  });

  it('decides by a match where the stage has one (tiny-arith: the inverse sum gives the first operand back)', async () => {
    const pattern = /^Compute (?<a>\d+)\+(?<b>\d+)\. Answer: $/;
    expect(patternGroups(pattern)).toEqual(['a', 'b']);
    // The model infers 12 from "?+34=46" for candidate 46 and 11 from "?+34=45".
    const { judge, asked } = fakeJudge((p) => String(Number(/=(\d+)\./.exec(p)![1]) - 34));
    const templates = { ...DOMAIN_TEMPLATES.math, cycleAsk: 'Compute ?+{b}={answer}. Answer: ', cycleMatch: '{a}' };
    const stage = modelStageJudge({ judge, templates, questionOf: () => 'Compute 12+34. Answer: ', questionPattern: pattern, answerFormat: 'auto', temperature: 1, judgeMaxTokens: 4, askMaxTokens: 4 });
    const votes = await stage('cycle', [cand(1, 0, '46'), cand(2, 0, '45')], 1);
    expect(asked).toEqual([['Compute ?+34=46. Answer: ', 'Compute ?+34=45. Answer: ']]);
    expect(votes.map((v) => v[0].accept)).toEqual([true, false]);
  });

  it('names the setting whose prompts the model refused', async () => {
    const judge: Judge = {
      generate: async () => {
        throw new Error('judge prompt 1 has 70 tokens; with 4 new tokens it exceeds the model\'s context of 64 positions');
      },
      verdicts: async () => [],
      writtenVerdicts: async () => [],
    };
    const stage = modelStageJudge({ judge, templates: DOMAIN_TEMPLATES.math, questionOf: () => 'q', questionPattern: null, answerFormat: 'auto', temperature: 1, judgeMaxTokens: 4, askMaxTokens: 8 });
    await expect(stage('factuality', [cand(1, 0, '5')], 1)).rejects.toThrow("svdFactualityJudge (its prompts, with svdJudgeMaxTokens 4): judge prompt 1 has 70 tokens; with 4 new tokens it exceeds the model's context of 64 positions");
    await expect(stage('correctness', [cand(1, 0, '5')], 1)).rejects.toThrow('svdCorrectnessAsk (its prompts, with svdAskMaxTokens 8)');
  });

  it('names the setting whose placeholder has no value', () => {
    expect(() => fillTemplate('Compute ?+{b}', { question: 'q' }, 'svdCycleAsk', ['question', 'b'])).toThrow('svdCycleAsk: {b} has no value here (the question does not match svdQuestionPattern)');
    expect(fillTemplate('\\boxed{x} {question}', { question: 'q' }, 's', ['question'])).toBe('\\boxed{x} q');
  });
});
