// A label a person types in review, read the way the votes read answers: cleaned and parsed for
// the run's answer format by equivalence.ts. A label that does not parse could never be agreed
// with (unparseable answers never join a vote), so it is refused rather than stored; a typo such
// as "53jajajo21" (keystrokes that landed in the box) is caught here.
import { normalizeAnswer } from './equivalence.ts';
import { type AnswerFormat, extractAnswer } from './extract.ts';

export type LabelCheck = { ok: true; label: string } | { ok: false; message: string };

const FORMAT_HINTS: Readonly<Record<AnswerFormat, string>> = {
  auto: 'a number or a math expression, e.g. 42, -3/4, \\frac{1}{2} or (1, 2)',
  math: 'a number or a math expression, e.g. 42, -3/4, \\frac{1}{2} or (1, 2)',
  gsm8k: 'a number, e.g. 42 or 3.5',
  'multiple-choice': 'a choice letter, e.g. B or (C)',
};

/** The label as the votes would record it (normalised), or why it is not an answer in `format`. */
export function checkReviewLabel(raw: string, format: AnswerFormat): LabelCheck {
  const shown = raw.length > 60 ? `${raw.slice(0, 57)}...` : raw;
  const text = raw.trim();
  if (!text) return { ok: false, message: `an override needs a label: ${FORMAT_HINTS[format]}` };
  const n = normalizeAnswer(text, format);
  if (n.parseable && n.normalized !== '') return { ok: true, label: n.normalized };
  // What the vote would have read out of it, offered as the likely intent ("The answer is 53" → 53).
  const extracted = extractAnswer(text, format);
  const hint = extracted !== null && extracted !== text && normalizeAnswer(extracted, format).parseable ? ` Did you mean "${extracted}"?` : '';
  return {
    ok: false,
    message: `"${shown}" is not an answer in this run's format (${format}: ${FORMAT_HINTS[format]}); the votes count only answers that parse, so no sample could agree with it.${hint}`,
  };
}
