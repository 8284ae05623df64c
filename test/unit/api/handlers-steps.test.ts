// The trajectory inspector and reviews: steps.groups on hand-recorded steps with a known
// confident mistake, a low-consensus group and a changed label; steps.group pairing each token
// with its log-prob and entropy; reviews.set / clear / list with their events.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, importDataset, recordStep } from '../../../main/db/index.ts';
import { sampleTokens, tokenTexts } from '../../../main/api/handlers/steps.ts';
import { builtinModelsDir } from '../../../main/engine/model-paths.ts';
import { TextTokenizer } from '../../../main/engine/nn/tokenizer.ts';
import { createHarness, type Harness } from './handlers-harness.ts';

let h: Harness;
let runId: number;
let tokenizer: TextTokenizer;
const ids: Record<string, number> = {};

const group = (itemIdx: number, pseudoLabel: string, majorityRatio: number, labelCorrect: boolean) => ({
  itemIdx,
  prompt: `prompt ${itemIdx}`,
  pseudoLabel,
  voteCounts: { [pseudoLabel]: Math.round(majorityRatio * 10), other: 10 - Math.round(majorityRatio * 10) },
  majorityRatio,
  labelCorrect,
});

beforeAll(async () => {
  h = createHarness();
  tokenizer = (await TextTokenizer.fromFolder(path.join(builtinModelsDir(), 'tiny-chars')))!;
  const d = importDataset(h.db, { name: 'sums' }, [
    { prompt: 'prompt 0', answer: '4' },
    { prompt: 'prompt 1', answer: '7' },
    { prompt: 'prompt 2', answer: '10' },
  ]);
  runId = createRun(h.db, { name: 'inspected', method: 'ttrl', model: 'tiny-chars', dataset: 'sums', datasetId: d.id, config: { steps: 3 } }).id;
  recordStep(h.db, runId, 0, { rollouts: [group(0, '4', 0.7, true), group(1, '7', 0.6, true)] });
  const text = '12+3=15';
  recordStep(h.db, runId, 1, {
    rollouts: [
      {
        // Confidently wrong, and a different label than at step 0.
        ...group(0, '5', 0.9, false),
        samples: [
          {
            text,
            tokenIds: tokenizer.encode(text, { addSpecialTokens: false }),
            logprobs: [...text].map((_, i) => -i / 10),
            entropies: [...text].map((_, i) => i / 4),
            selfCertainties: [...text].map((_, i) => i / 8),
            details: { certainty: 0.25 },
            judge: { prompt: 'Check 12+3=15?', response: 'Yes' },
            reward: 1,
            advantage: 0.5,
            usedForTraining: true,
            extractedAnswer: '15',
          },
          // An older row: no ids, one score per character.
          { text: 'abc', logprobs: [-1, -2, -3], entropies: [0.1, 0.2, 0.3] },
          // No ids and counts that do not match the characters.
          { text: 'xyz', logprobs: [-1, -2] },
        ],
      },
      // Barely agreed, same label as at step 0.
      group(1, '7', 0.4, true),
      // First time drawn: nothing to have changed from.
      group(2, '10', 1, true),
    ],
  });
  // Item 0 again: its previous label is step 1's, not step 0's.
  recordStep(h.db, runId, 2, { rollouts: [group(0, '5', 0.9, false)] });
  for (const step of [1, 2]) {
    for (const g of (await h.call('steps.groups', { runId, step })).groups) ids[`${step}/${g.itemIdx}`] = g.rolloutId;
  }
});
afterAll(() => h.close());

describe('steps.groups', () => {
  it('lists a step’s groups with the hidden truth and the reviewer’s flags', async () => {
    const { groups } = await h.call('steps.groups', { runId, step: 1 });
    expect(groups.map((g) => [g.itemIdx, g.pseudoLabel, g.truth, g.confidentMistake, g.lowConsensus, g.labelChanged, g.previousLabel])).toEqual([
      [0, '5', '4', true, false, true, '4'],
      [1, '7', '7', false, true, false, '7'],
      [2, '10', '10', false, false, false, null],
    ]);
    expect(groups[0]).toMatchObject({ step: 1, groupIdx: 0, prompt: 'prompt 0', voteCounts: { '5': 9, other: 1 }, labeled: true, review: null });
    const later = (await h.call('steps.groups', { runId, step: 2 })).groups;
    expect(later[0]).toMatchObject({ labelChanged: false, previousLabel: '5' });
  });

  it('filters', async () => {
    const items = async (filter: 'all' | 'confident-mistakes' | 'low-consensus' | 'label-changed' | 'unreviewed') =>
      (await h.call('steps.groups', { runId, step: 1, filter })).groups.map((g) => g.itemIdx);
    expect(await items('all')).toEqual([0, 1, 2]);
    expect(await items('confident-mistakes')).toEqual([0]);
    expect(await items('low-consensus')).toEqual([1]);
    expect(await items('label-changed')).toEqual([0]);
    expect(await items('unreviewed')).toEqual([0, 1, 2]);
    expect((await h.refused('steps.groups', { runId, step: 1, filter: 'interesting' })).issues?.[0].path).toBe('filter');
  });

  it('answers NOT_FOUND for a run or step that does not exist', async () => {
    expect((await h.refused('steps.groups', { runId: 999, step: 0 })).code).toBe('NOT_FOUND');
    const e = await h.refused('steps.groups', { runId, step: 7 });
    expect(e).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/no step 7/) });
  });
});

describe('steps.group', () => {
  it('pairs each token with its log-prob, entropy and self-certainty, and gives the reward details and the judge’s exchange', async () => {
    const g = await h.call('steps.group', { rolloutId: ids['1/0'] });
    expect(g.group).toMatchObject({ itemIdx: 0, confidentMistake: true });
    const [decoded, chars, whole] = g.samples;
    expect(decoded).toMatchObject({ idx: 0, text: '12+3=15', extractedAnswer: '15', reward: 1, advantage: 0.5, usedForTraining: true, details: { certainty: 0.25 }, judge: { prompt: 'Check 12+3=15?', response: 'Yes' } });
    expect(decoded.tokens.map((t) => t.text).join('')).toBe('12+3=15');
    expect(decoded.tokens).toHaveLength(7);
    expect(decoded.tokens[3]).toEqual({ text: '3', logprob: Math.fround(-0.3), entropy: 0.75, selfCertainty: 0.375 });
    // Rows recorded before self-certainty and details were kept: null.
    expect(chars.details).toBeNull();
    expect(chars.judge).toBeNull();
    expect(chars.tokens).toEqual([
      { text: 'a', logprob: -1, entropy: Math.fround(0.1), selfCertainty: null },
      { text: 'b', logprob: -2, entropy: Math.fround(0.2), selfCertainty: null },
      { text: 'c', logprob: -3, entropy: Math.fround(0.3), selfCertainty: null },
    ]);
    expect(whole.tokens).toEqual([{ text: 'xyz', logprob: null, entropy: null, selfCertainty: null }]);
    expect((await h.refused('steps.group', { rolloutId: 123456 })).code).toBe('NOT_FOUND');
  });

  it('splits byte-level and SentencePiece tokens so the pieces add up to the text', () => {
    // A stand-in tokenizer: ids are byte strings; decoding strips the leading space SentencePiece adds.
    const bytes: Record<number, number[]> = { 1: [...Buffer.from(' he')], 2: [...Buffer.from('llo')], 3: [0xc3], 4: [0xa9], 5: [...Buffer.from(' !')] };
    const fake = { decode: (xs: readonly number[]) => new TextDecoder().decode(Uint8Array.from(xs.flatMap((x) => bytes[x]))).replace(/^ /, '') };
    expect(tokenTexts(fake, [1, 2, 3, 4, 5])).toEqual(['he', 'llo', '', 'é', ' !']);
    // A character cut off at the end still shows (as the replacement character).
    expect(tokenTexts(fake, [1, 3])).toEqual(['he', '\uFFFD']);
    expect(tokenTexts(fake, [])).toEqual([]);
    // Ids without their tokenizer fall back to the text.
    expect(sampleTokens({ text: 'hi', tokenIds: Int32Array.from([1]), logprobs: null, entropies: null }, null)).toEqual([{ text: 'hi', logprob: null, entropy: null, selfCertainty: null }]);
  });
});

describe('reviews', () => {
  it('sets one review per rollout, fills run, dataset and item from it, and announces the count', async () => {
    const agree = await h.call('reviews.set', { rolloutId: ids['1/1'], verdict: 'agree' });
    expect(agree).toMatchObject({ runId, rolloutId: ids['1/1'], itemIdx: 1, verdict: 'agree', label: '7' });
    expect(agree.datasetId).toBeTypeOf('number');
    expect(h.events.of('reviews.changed').at(-1)).toEqual({ runId, count: 1 });

    const override = await h.call('reviews.set', { rolloutId: ids['1/0'], verdict: 'override', label: '4' });
    expect(h.events.of('reviews.changed').at(-1)).toEqual({ runId, count: 2 });
    const changed = await h.call('reviews.set', { rolloutId: ids['1/0'], verdict: 'override', label: '3' });
    expect(changed.id).toBe(override.id);
    expect(changed.label).toBe('3');
    expect(h.events.of('reviews.changed').at(-1)).toEqual({ runId, count: 2 });

    const { groups } = await h.call('steps.groups', { runId, step: 1 });
    expect(groups[0].review).toMatchObject({ verdict: 'override', label: '3' });
    expect((await h.call('steps.groups', { runId, step: 1, filter: 'unreviewed' })).groups.map((g) => g.itemIdx)).toEqual([2]);
    expect((await h.call('runs.get', { id: runId })).run.reviewCount).toBe(2);
  });

  it('refuses an override without a label, and unknown rollouts', async () => {
    const e = await h.refused('reviews.set', { rolloutId: ids['1/2'], verdict: 'override' });
    expect(e.code).toBe('BAD_REQUEST');
    expect(e.issues).toEqual([{ path: 'label', message: 'an override needs a label' }]);
    expect((await h.refused('reviews.set', { rolloutId: ids['1/2'], verdict: 'maybe' })).issues?.[0].path).toBe('verdict');
    expect((await h.refused('reviews.set', { rolloutId: 98765, verdict: 'agree' })).code).toBe('NOT_FOUND');
    expect((await h.refused('reviews.clear', { rolloutId: 98765 })).code).toBe('NOT_FOUND');
    expect((await h.refused('reviews.list', { runId: 98765 })).code).toBe('NOT_FOUND');
  });

  it('checks an override against the run\'s answer format and stores it normalised as votes are', async () => {
    const before = await h.call('reviews.list', { runId });
    // Keystrokes that landed in the label box (issue 15.3): not an answer, refused, nothing stored.
    const typo = await h.refused('reviews.set', { rolloutId: ids['1/2'], verdict: 'override', label: '53jajajo21' });
    expect(typo.code).toBe('BAD_REQUEST');
    expect(typo.message).toBe(
      '"53jajajo21" is not an answer in this run\'s format (auto: a number or a math expression, e.g. 42, -3/4, \\frac{1}{2} or (1, 2)); the votes count only answers that parse, so no sample could agree with it. Did you mean "53"?',
    );
    expect(typo.issues?.map((i) => i.path)).toEqual(['label']);
    expect((await h.refused('reviews.set', { rolloutId: ids['1/2'], verdict: 'override', label: 'hello world' })).issues?.[0].message).toMatch(/^"hello world" is not an answer/);
    expect((await h.refused('reviews.set', { rolloutId: ids['1/2'], verdict: 'override', label: '   ' })).code).toBe('BAD_REQUEST');
    expect(await h.call('reviews.list', { runId })).toEqual(before);
    // Stored as the vote reads it: wrappers and units cleaned away.
    expect((await h.call('reviews.set', { rolloutId: ids['1/2'], verdict: 'override', label: ' \\boxed{12} ' })).label).toBe('12');
    expect((await h.call('reviews.set', { rolloutId: ids['1/2'], verdict: 'override', label: '53 apples' })).label).toBe('53');
    expect(await h.call('reviews.clear', { rolloutId: ids['1/2'] })).toEqual({ cleared: true });
  });

  it('lists and clears', async () => {
    expect((await h.call('reviews.list', { runId })).map((r) => [r.itemIdx, r.verdict, r.label])).toEqual([
      [1, 'agree', '7'],
      [0, 'override', '3'],
    ]);
    expect(await h.call('reviews.clear', { rolloutId: ids['1/0'] })).toEqual({ cleared: true });
    expect(h.events.of('reviews.changed').at(-1)).toEqual({ runId, count: 1 });
    expect(await h.call('reviews.clear', { rolloutId: ids['1/0'] })).toEqual({ cleared: false });
    expect(await h.call('reviews.list', { runId })).toHaveLength(1);
  });
});

describe('steps.group of a code group', () => {
  it('serves the execution matrix and each sample\'s hidden-test outcome', async () => {
    const d = importDataset(h.db, { name: 'code tasks' }, [{ prompt: 'write inc', answer: '{"kind":"code"}' }]);
    const codeRun = createRun(h.db, { name: 'code', method: 'code-consensus', model: 'tiny-chars', dataset: 'code tasks', datasetId: d.id, config: { steps: 1 } }).id;
    const execution = {
      language: 'python' as const,
      solutions: ['def inc(x):\n    return x + 1\n', null],
      tests: ['assert inc(1) == 2'],
      authors: [[0]],
      matrix: [['pass' as const], ['error' as const]],
      sets: [
        { solutions: [0], tests: [0], score: 1 },
        { solutions: [1], tests: [], score: 0 },
      ],
      top: 0,
      testRewards: [1],
    };
    recordStep(h.db, codeRun, 1, {
      rollouts: [{ itemIdx: 0, prompt: 'write inc', execution, samples: [{ text: 'a', hiddenResult: 'pass' }, { text: 'b' }] }],
    });
    const [g] = (await h.call('steps.groups', { runId: codeRun, step: 1 })).groups;
    const detail = await h.call('steps.group', { rolloutId: g.rolloutId });
    expect(detail.execution).toEqual(execution);
    expect(detail.samples.map((x) => x.hiddenResult)).toEqual(['pass', null]);
    // Other methods' groups have none.
    expect((await h.call('steps.group', { rolloutId: ids['1/0'] })).execution).toBeNull();
  });
});
