// The review queue (issue 15.5 and 15.6): steps.groups across every step of a run, the
// confident-mistake threshold as a parameter, paging with "x of y reviewed", bulk agreement with a
// filtered set (never past what was counted, never over a prompt reviewed elsewhere), a note per
// review, and the groups of a run started from reviews that took a person's label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, importDataset, recordStep } from '../../../main/db/index.ts';
import type { ParamsOf } from '../../../contract/index.ts';
import { createHarness, type Harness } from './handlers-harness.ts';

let h: Harness;
let runId: number;
let datasetId: number;

const group = (itemIdx: number, pseudoLabel: string | null, majorityRatio: number, labelCorrect: boolean | null) => ({ itemIdx, prompt: `prompt ${itemIdx}`, pseudoLabel, majorityRatio, labelCorrect });
const items = async (p: Omit<ParamsOf<'steps.groups'>, 'runId'>) => (await h.call('steps.groups', { runId, ...p })).groups.map((g) => `${g.step}/${g.itemIdx}`);

beforeAll(() => {
  h = createHarness();
  const d = importDataset(
    h.db,
    { name: 'sums' },
    [4, 7, 10, 13].map((a, i) => ({ prompt: `prompt ${i}`, answer: String(a) })),
  );
  datasetId = d.id;
  runId = createRun(h.db, { name: 'queued', method: 'ttrl', model: 'tiny-chars', dataset: 'sums', datasetId, config: { steps: 3 } }).id;
  recordStep(h.db, runId, 1, { rollouts: [group(0, '5', 0.9, false), group(1, '7', 0.4, true)] });
  // A wrong 75% majority: the old hard-coded 0.8 hid it.
  recordStep(h.db, runId, 2, { rollouts: [group(2, '11', 0.75, false), group(3, null, 0.25, false), group(0, '4', 0.3, true)] });
  recordStep(h.db, runId, 3, { rollouts: [group(1, '7', 0.45, true)] });
});
afterAll(() => h.close());

describe('the review queue across the steps of a run', () => {
  it('lists the groups of every step in order, with counts, a page at a time', async () => {
    const all = await h.call('steps.groups', { runId });
    expect(all.groups.map((g) => `${g.step}/${g.itemIdx}`)).toEqual(['1/0', '1/1', '2/2', '2/3', '2/0', '3/1']);
    expect(all).toMatchObject({ total: 6, reviewed: 0, offset: 0 });
    expect(all.asOf).toBe(Math.max(...all.groups.map((g) => g.rolloutId)));
    // The previous draw is found across steps: item 0 changed from 5 (step 1) to 4 (step 2).
    expect(all.groups[4]).toMatchObject({ labelChanged: true, previousLabel: '5' });
    expect(all.groups[5]).toMatchObject({ labelChanged: false, previousLabel: '7' });
    const page = await h.call('steps.groups', { runId, offset: 2, limit: 3 });
    expect(page.groups.map((g) => `${g.step}/${g.itemIdx}`)).toEqual(['2/2', '2/3', '2/0']);
    expect(page).toMatchObject({ total: 6, offset: 2 });
  });

  it('filters across steps, with the confident-mistake and low-consensus thresholds as parameters', async () => {
    expect(await items({ filter: 'confident-mistakes', confidentAbove: 0.8 })).toEqual(['1/0']);
    expect(await items({ filter: 'confident-mistakes', confidentAbove: 0.75 })).toEqual(['1/0', '2/2']);
    // The default shows a wrong 75% majority.
    expect(await items({ filter: 'confident-mistakes' })).toEqual(['1/0', '2/2']);
    expect(await items({ filter: 'low-consensus' })).toEqual(['1/1', '2/3', '2/0', '3/1']);
    expect(await items({ filter: 'low-consensus', lowConsensusBelow: 0.35 })).toEqual(['2/3', '2/0']);
    expect(await items({ filter: 'label-changed' })).toEqual(['2/0']);
    // The flags follow the thresholds asked for.
    const strict = await h.call('steps.groups', { runId, step: 2, confidentAbove: 0.8 });
    expect(strict.groups.map((g) => g.confidentMistake)).toEqual([false, false, false]);
    expect((await h.refused('steps.groups', { runId, confidentAbove: 1.5 })).issues?.[0].path).toBe('confidentAbove');
    expect((await h.refused('steps.groups', { runId, limit: 0 })).issues?.[0].path).toBe('limit');
  });

  it('calls a confident mistake only the vote’s own label: not a group without one, nor one that took a person’s label', async () => {
    const other = createRun(h.db, { name: 'no labels', method: 'token-entropy', model: 'tiny-chars', dataset: 'sums', datasetId, config: { steps: 1 } }).id;
    recordStep(h.db, other, 1, {
      rollouts: [
        // Every sample agrees, but the method gives no pseudo-label (as older runs stored it: wrong).
        group(0, null, 1, false),
        // A person's wrong label; the 90% majority is the vote's.
        { ...group(1, '999', 0.9, false), labelSource: 'review' as const },
        group(2, '11', 0.9, false),
      ],
    });
    const all = await h.call('steps.groups', { runId: other });
    expect(all.groups.map((g) => g.confidentMistake)).toEqual([false, false, true]);
    expect((await h.call('steps.groups', { runId: other, filter: 'confident-mistakes' })).groups.map((g) => g.itemIdx)).toEqual([2]);
    // Nothing to agree with in the first: "Agree with all" offers the other two, and a single agree is refused.
    expect(all).toMatchObject({ total: 3, reviewed: 0, agreeable: 2 });
    const refused = await h.refused('reviews.set', { rolloutId: all.groups[0].rolloutId, verdict: 'agree' });
    expect(refused.message).toBe(`Group ${all.groups[0].rolloutId} has no pseudo-label to agree with (no answer won the vote, or the method gives none); override it with the right answer instead.`);
    await h.call('reviews.set', { rolloutId: all.groups[2].rolloutId, verdict: 'agree' });
    expect(await h.call('steps.groups', { runId: other })).toMatchObject({ reviewed: 1, agreeable: 1 });
  });

  it('counts "x of y reviewed" over the filtered set, and keeps a note with each review', async () => {
    const [first] = (await h.call('steps.groups', { runId, filter: 'confident-mistakes' })).groups;
    const review = await h.call('reviews.set', { rolloutId: first.rolloutId, verdict: 'override', label: '4', note: '  the vote misread the carry  ' });
    expect(review).toMatchObject({ verdict: 'override', label: '4', note: 'the vote misread the carry' });
    expect(await h.call('steps.groups', { runId, filter: 'confident-mistakes', limit: 1 })).toMatchObject({ total: 2, reviewed: 1 });
    expect(await h.call('steps.groups', { runId })).toMatchObject({ total: 6, reviewed: 1 });
    expect(await items({ filter: 'reviewed' })).toEqual(['1/0']);
    // A new verdict without a note keeps the note; reviews.note changes or removes it.
    expect((await h.call('reviews.set', { rolloutId: first.rolloutId, verdict: 'agree' })).note).toBe('the vote misread the carry');
    expect((await h.call('reviews.note', { rolloutId: first.rolloutId, note: 'checked twice' })).note).toBe('checked twice');
    const listed = (await h.call('steps.groups', { runId, filter: 'reviewed' })).groups[0].review;
    expect(listed).toMatchObject({ verdict: 'agree', label: '5', note: 'checked twice' });
    expect((await h.call('reviews.note', { rolloutId: first.rolloutId, note: null })).note).toBeNull();
    // A note needs a review to go with; and it is bounded.
    const unreviewed = (await h.call('steps.groups', { runId, filter: 'unreviewed' })).groups[0];
    expect(await h.refused('reviews.note', { rolloutId: unreviewed.rolloutId, note: 'hm' })).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/has no review yet: agree or override first/) });
    expect((await h.refused('reviews.set', { rolloutId: unreviewed.rolloutId, verdict: 'agree', note: 'x'.repeat(2001) })).issues?.[0].path).toBe('note');
  });

  it('agrees with a filtered set at once, up to what was counted, leaving prompts reviewed elsewhere alone', async () => {
    const low = await h.call('steps.groups', { runId, filter: 'low-consensus' });
    expect(low).toMatchObject({ total: 4, reviewed: 0 });
    // Recorded after the person read the count: not part of what they agreed to.
    recordStep(h.db, runId, 4, { rollouts: [group(2, '1', 0.1, false)] });
    const before = h.events.of('reviews.changed').length;
    const result = await h.call('reviews.agreeAll', { runId, filter: 'low-consensus', asOf: low.asOf! });
    // 1/1 and 3/1 agreed; 2/3 has no pseudo-label; 2/0's prompt was reviewed at step 1 (that review stands).
    expect(result).toEqual({ agreed: 2, noLabel: 1, reviewedElsewhere: 1 });
    expect(h.events.of('reviews.changed').slice(before)).toEqual([{ runId, count: 3 }]);
    expect(await items({ filter: 'reviewed' })).toEqual(['1/0', '1/1', '3/1']);
    expect((await h.call('steps.groups', { runId, filter: 'reviewed' })).groups.map((g) => [g.review!.verdict, g.review!.label])).toEqual([
      ['agree', '5'],
      ['agree', '7'],
      ['agree', '7'],
    ]);
    expect(await items({ filter: 'unreviewed', step: 4 })).toEqual(['4/2']);
    // Nothing left to agree with: a second call changes nothing and announces nothing.
    expect(await h.call('reviews.agreeAll', { runId, filter: 'low-consensus', asOf: low.asOf! })).toEqual({ agreed: 0, noLabel: 1, reviewedElsewhere: 1 });
    expect(h.events.of('reviews.changed').length).toBe(before + 1);
    expect((await h.refused('reviews.agreeAll', { runId, filter: 'low-consensus' })).issues?.[0].path).toBe('asOf');
    expect((await h.refused('reviews.agreeAll', { runId: 999, asOf: 1 })).code).toBe('NOT_FOUND');
  });

  it('answers an override with how many of the group\'s samples agree with its label (0: no gradient from a run of it)', async () => {
    const sample = (extractedAnswer: string | null) => ({ text: String(extractedAnswer), extractedAnswer });
    recordStep(h.db, runId, 5, { rollouts: [{ ...group(3, '13', 0.5, true), samples: [sample('13'), sample('13.0'), sample('12'), sample(null)] }] });
    const [g] = (await h.call('steps.groups', { runId, step: 5 })).groups;
    // Counted by equivalence, as the votes count: 13.0 agrees with 13.
    expect((await h.call('reviews.set', { rolloutId: g.rolloutId, verdict: 'override', label: '13' })).agreeingSamples).toBe(2);
    expect((await h.call('reviews.set', { rolloutId: g.rolloutId, verdict: 'override', label: '1234567' })).agreeingSamples).toBe(0);
    expect((await h.call('reviews.set', { rolloutId: g.rolloutId, verdict: 'agree' })).agreeingSamples).toBeNull();
  });

  it('shows which groups of a run started from reviews took a person\'s label, and how many samples agreed', async () => {
    const rerun = createRun(h.db, { name: 'rerun', method: 'ttrl', model: 'tiny-chars', dataset: 'sums', datasetId, config: { steps: 1, reviewsOf: runId } }).id;
    const sample = (extractedAnswer: string, reward: number) => ({ text: extractedAnswer, extractedAnswer, reward });
    recordStep(h.db, rerun, 1, {
      rollouts: [
        { ...group(0, '4', 0.5, true), labelSource: 'review', samples: [sample('4', 1), sample('5', 0)] },
        // The person's label that no sample reached: no gradient from this prompt.
        { ...group(1, '123456', 1, false), labelSource: 'review', samples: [sample('7', 0), sample('7', 0)] },
        { ...group(2, '10', 1, true), samples: [sample('10', 1), sample('10', 1)] },
      ],
    });
    const { groups } = await h.call('steps.groups', { runId: rerun, step: 1 });
    expect(groups.map((g) => [g.itemIdx, g.labelSource, g.reviewMatches])).toEqual([
      [0, 'review', 1],
      [1, 'review', 0],
      [2, 'vote', null],
    ]);
    expect((await h.call('steps.groups', { runId: rerun, filter: 'review-label' })).groups.map((g) => g.itemIdx)).toEqual([0, 1]);
    expect((await h.call('steps.group', { rolloutId: groups[1].rolloutId })).group).toMatchObject({ labelSource: 'review', reviewMatches: 0 });
  });
});
