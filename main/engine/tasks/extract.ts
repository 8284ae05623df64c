// Answer extraction: pull the final answer out of a model's response. Each extractor returns
// the raw answer text (still LaTeX, still with units) or null; normalisation and equivalence
// live in equivalence.ts. Extractors are tried in a chain chosen per dataset format.

export type ExtractorName = 'boxed' | 'answer-is' | 'gsm8k' | 'last-number' | 'choice';

/** How a dataset states its answers; picks the extraction chain and the equivalence mode. */
export type AnswerFormat = 'auto' | 'math' | 'gsm8k' | 'multiple-choice';

export const EXTRACTION_CHAINS: Readonly<Record<AnswerFormat, readonly ExtractorName[]>> = {
  // A boxed answer is the most deliberate statement a model makes, so it wins; the last
  // number is the weakest signal and comes last.
  auto: ['boxed', 'answer-is', 'gsm8k', 'last-number'],
  math: ['boxed', 'answer-is', 'gsm8k', 'last-number'],
  // GSM8K-style models are trained to end with "#### X", which beats anything earlier.
  gsm8k: ['gsm8k', 'boxed', 'answer-is', 'last-number'],
  // Letters only: falling back to "last number" would vote on option contents, not options.
  'multiple-choice': ['choice'],
};

/** Guess a dataset's answer format from its name (datasets can also set it explicitly). */
export function formatForDataset(name: string): AnswerFormat {
  const n = name.toLowerCase();
  if (/gsm8k|gsm-8k/.test(n)) return 'gsm8k';
  if (/mmlu|gpqa|\barc\b|arc[-_]|commonsense|multiple[-_ ]?choice|\bmcq\b|aqua|choice/.test(n)) {
    return 'multiple-choice';
  }
  if (/math|aime|amc|minerva|olympiad/.test(n)) return 'math';
  return 'auto';
}

/** Reads a balanced {...} group starting at `open` (which must be '{'); returns content and end. */
export function readBraced(s: string, open: number): { content: string; end: number } | null {
  if (s[open] !== '{') return null;
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    // An escaped brace (\{ or \}) is a literal set brace, not a group delimiter.
    if (c === '\\' && (s[i + 1] === '{' || s[i + 1] === '}')) {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return { content: s.slice(open + 1, i), end: i + 1 };
    }
  }
  return null; // unterminated (e.g. a truncated generation)
}

/** Content of the last complete `\boxed{...}` / `\fbox{...}` (or `\boxed 5`), else null. */
export function extractBoxed(text: string): string | null {
  let best: { content: string; at: number } | null = null;
  const re = /\\(?:boxed|fbox)\s*(\{|[^\s{$])/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const argStart = m.index + m[0].length - 1;
    let content: string | null = null;
    if (m[1] === '{') {
      const g = readBraced(text, argStart);
      if (g) content = g.content;
    } else {
      // `\boxed 5`: the argument runs to the next space or math delimiter.
      const rest = /^[^\s$]+/.exec(text.slice(argStart));
      if (rest) content = rest[0];
    }
    // Keep the last complete one: a truncated final \boxed{ falls back to an earlier box.
    if (content !== null && content.trim() !== '') best = { content: content.trim(), at: m.index };
  }
  return best ? best.content : null;
}

/** Trims a phrase-captured answer: sentence tail, markdown bold, trailing period, colons. */
function trimPhrase(s: string): string | null {
  let t = s.trim();
  // Stop at the end of the sentence ("42. I hope it is correct."): a period followed by space.
  const stop = /\.\s/.exec(t);
  if (stop) t = t.slice(0, stop.index);
  t = t.replace(/\*\*|__/g, '').trim();
  t = t.replace(/^[:\s]+/, '').replace(/[.\s]+$/, '').trim();
  return t === '' ? null : t;
}

/** "The answer is X", "Final answer: X", "**Answer:** X" (last occurrence, case-insensitive). */
export function extractAnswerIs(text: string): string | null {
  // The capture sits in a lookahead so that "Answer: The final answer is X" still finds the
  // inner, later phrase instead of consuming it.
  const re = /\banswer\s*(?:\*\*|__)?\s*(?:is|:|=)\s*(?:\*\*|__)?\s*:?(?=([^\n]*))/gi;
  let last: string | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const t = trimPhrase(m[1]);
    if (t !== null) last = t;
  }
  if (last === null) return null;
  // "The answer is $\boxed{5}$" → the box content.
  return extractBoxed(last) ?? last;
}

/** GSM8K's "#### X" (last occurrence). */
export function extractGsm8k(text: string): string | null {
  const re = /####\s*([^\n]*)/g;
  let last: string | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const t = trimPhrase(m[1]);
    if (t !== null) last = t;
  }
  return last;
}

/** The last number in the text: sign, thousands commas, decimals, or a simple fraction. */
export function extractLastNumber(text: string): string | null {
  // The sign counts only when it is not a binary minus ("3-4" ends with 4, not -4).
  const re = /(?<![\w)\]}.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\/\d+)?|(?<![\w.])\.\d+/g;
  let last: string | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) last = m[0];
  return last === null ? null : last.replace(/,/g, '');
}

const LETTER = 'A-J';

/** A bare option letter: "B", "(B)", "B)", "B.", "**B**", "\text{(B)}", "B: 42". */
export function parseChoiceLetter(s: string): string | null {
  const t = s
    .replace(/\\text(?:bf)?\s*\{([^}]*)\}/g, '$1')
    .replace(/\*\*|\$/g, '')
    .trim();
  const m = new RegExp(`^\\(?([${LETTER}])\\)?(?:[.:)]|\\s|$)`, 'i').exec(t);
  if (!m) return null;
  // "A cat" is prose, not option A: a lower-case letter must stand alone.
  if (m[1] === m[1].toLowerCase() && !/^\(?[a-j]\)?[.:)]?$/.test(t)) return null;
  return m[1].toUpperCase();
}

/** Multiple-choice letter: boxed letter, "answer is (C)", last "(B)", or a trailing "B." line. */
export function extractChoice(text: string): string | null {
  const boxed = extractBoxed(text);
  if (boxed !== null) {
    const l = parseChoiceLetter(boxed);
    if (l) return l;
  }
  const said = new RegExp(
    `\\banswer\\s*(?:\\*\\*)?\\s*(?:is|:)\\s*(?:\\*\\*)?\\s*(?:option\\s+)?\\(?([${LETTER}])\\)?(?![A-Za-z])`,
    'gi',
  );
  let last: string | null = null;
  for (let m = said.exec(text); m; m = said.exec(text)) last = m[1].toUpperCase();
  if (last) return last;
  const paren = new RegExp(`\\(([${LETTER}])\\)`, 'g');
  for (let m = paren.exec(text); m; m = paren.exec(text)) last = m[1];
  if (last) return last;
  // A response that ends on a lone letter: "... so we pick\nB." / "**C**".
  const tail = new RegExp(`(?:^|[\\s*:])([${LETTER}])[.)]?\\**\\s*$`).exec(text);
  return tail ? tail[1] : null;
}

const EXTRACTORS: Readonly<Record<ExtractorName, (text: string) => string | null>> = {
  boxed: extractBoxed,
  'answer-is': extractAnswerIs,
  gsm8k: extractGsm8k,
  'last-number': extractLastNumber,
  choice: extractChoice,
};

/** Runs the chain for `format` (or an explicit chain); the first extractor that finds wins. */
export function extractAnswer(
  text: string,
  formatOrChain: AnswerFormat | readonly ExtractorName[] = 'auto',
): string | null {
  const chain = typeof formatOrChain === 'string' ? EXTRACTION_CHAINS[formatOrChain] : formatOrChain;
  for (const name of chain) {
    const a = EXTRACTORS[name](text);
    if (a !== null && a.trim() !== '') return a.trim();
  }
  return null;
}
