// A reviewer's label is read as the votes read answers: parsed for the run's answer format and
// stored normalised, or refused with why and what the vote would have read out of it.
import { describe, expect, it } from 'vitest';
import { checkReviewLabel } from '../../../main/engine/tasks/labels.ts';

describe('checkReviewLabel', () => {
  it('accepts answers the votes could give, normalised as the votes normalise them', () => {
    expect(checkReviewLabel('53', 'auto')).toEqual({ ok: true, label: '53' });
    expect(checkReviewLabel(' $53$ ', 'math')).toEqual({ ok: true, label: '53' });
    expect(checkReviewLabel('\\frac{1}{2}', 'auto')).toMatchObject({ ok: true });
    expect(checkReviewLabel('(C)', 'multiple-choice')).toMatchObject({ ok: true });
  });

  it('refuses text that is not an answer in the format, naming the format and the likely intent', () => {
    const typo = checkReviewLabel('53jajajo21', 'auto');
    expect(typo.ok).toBe(false);
    expect(!typo.ok && typo.message).toContain('Did you mean "53"?');
    const prose = checkReviewLabel('The answer is 53', 'gsm8k');
    expect(!prose.ok && prose.message).toMatch(/^"The answer is 53" is not an answer in this run's format \(gsm8k: a number/);
    // A number is not a choice: a multiple-choice run's votes are letters only.
    const number = checkReviewLabel('53', 'multiple-choice');
    expect(!number.ok && number.message).toContain('multiple-choice: a choice letter');
    expect(checkReviewLabel('', 'auto').ok).toBe(false);
  });
});
