// Prompts against the model's context. A prompt and its longest response must fit the model's
// max_position_embeddings: past it the model reads positions it was never trained on, and every
// graph of the run is sized from the longest prompt, with attention memory growing with the
// square of the length (one 5,400-token prompt on a 1,024-token model grew the app to 24 GB
// until the kernel killed it). What happens to a prompt that does not fit is the run's
// `longPrompts` setting: fail naming it (the default), skip it, or truncate it. The check runs at
// launch (the app and the command line, before a run is recorded) and where the engine prepares
// the run, and the loop refuses any prompt that still does not fit.
import type { TextTokenizer } from '../nn/tokenizer.ts';

export const LONG_PROMPT_POLICIES = ['fail', 'skip', 'truncate'] as const;
export type LongPromptPolicy = (typeof LONG_PROMPT_POLICIES)[number];

/**
 * How a prompt is given to the model (the run's `promptFormat`). 'raw': as written, with the
 * tokenizer's special tokens (e.g. BOS), which is how the built-in models were taught. 'chat': as
 * one user message in the model's chat template, with the generation prompt (the assistant's
 * turn) appended, as instruct models expect.
 */
export const PROMPT_FORMATS = ['raw', 'chat'] as const;
export type PromptFormat = (typeof PROMPT_FORMATS)[number];

type PromptTokenizer = Pick<TextTokenizer, 'encode' | 'applyChatTemplate'>;

/**
 * The token ids the run loop generates from for a prompt (the one place that decides it: the
 * loop, the context check and the New-run view's preview all encode with it).
 */
export function encodePrompt(tok: PromptTokenizer, prompt: string, format: PromptFormat = 'raw'): number[] {
  if (format === 'chat') return tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  return tok.encode(prompt);
}

/** A prompt as the model reads it: its ids, and those ids decoded with their special tokens (the preview). */
export function renderPrompt(tok: PromptTokenizer & Pick<TextTokenizer, 'decode'>, prompt: string, format: PromptFormat): { ids: number[]; text: string } {
  const ids = encodePrompt(tok, prompt, format);
  return { ids, text: tok.decode(ids, { skipSpecialTokens: false }) };
}

export interface ContextLimit {
  /** The model's max_position_embeddings. */
  contextLength: number;
  /** The run's maxNewTokens. */
  maxNewTokens: number;
  /** The run's own cap on a prompt's tokens (maxPromptTokens; 0 or absent: none). */
  maxPromptTokens?: number;
  /** How the model is named in messages. */
  model: string;
}

/** A prompt that did not fit, as a person finds it. */
export interface LongPrompt {
  /** Its position in the list checked. */
  index: number;
  /** e.g. `item 12 (train)`. */
  label: string;
  /** Its length in tokens before truncation. */
  tokens: number;
}

export interface FittedPrompts<T> {
  /** The prompts the run uses: all of them, without the skipped ones, or with the truncated ones cut. */
  kept: T[];
  /** Position in the checked list of each kept prompt. */
  keptIndex: number[];
  skipped: LongPrompt[];
  truncated: LongPrompt[];
  /** The most tokens a prompt may have. */
  maxPromptTokens: number;
}

/** A prompt list that does not fit the model's context, and the run asked to fail on it. */
export class LongPromptError extends Error {
  override name = 'LongPromptError';
  constructor(
    message: string,
    readonly prompts: LongPrompt[],
  ) {
    super(message);
  }
}

const count = (n: number) => n.toLocaleString('en-US');

/** The most tokens a prompt may have: what maxNewTokens leaves of the context, or the run's maxPromptTokens when lower. */
export function maxPromptTokens(limit: ContextLimit): number {
  const room = limit.contextLength - limit.maxNewTokens;
  if (room < 1) {
    throw new LongPromptError(
      `maxNewTokens (${count(limit.maxNewTokens)}) leaves no room for a prompt in ${limit.model}'s context of ${count(limit.contextLength)} tokens (max_position_embeddings); lower maxNewTokens below ${count(limit.contextLength)}`,
      [],
    );
  }
  return limit.maxPromptTokens ? Math.min(room, limit.maxPromptTokens) : room;
}

/** Why prompts do not fit, naming the first few and how many there are. */
export function longPromptMessage(over: readonly LongPrompt[], limit: ContextLimit): string {
  const max = maxPromptTokens(limit);
  const shown = over.slice(0, 3).map((p) => `${p.label} has ${count(p.tokens)} tokens`);
  const more = over.length > shown.length ? `, and ${count(over.length - shown.length)} more` : '';
  const why =
    max < limit.contextLength - limit.maxNewTokens
      ? `The run's maxPromptTokens is ${count(max)}`
      : `Its context is ${count(limit.contextLength)} tokens (max_position_embeddings), of which maxNewTokens takes ${count(limit.maxNewTokens)}, so a prompt may have at most ${count(max)}`;
  return (
    `${over.length === 1 ? 'a prompt is' : `${count(over.length)} prompts are`} too long for ${limit.model}: ${shown.join('; ')}${more}. ${why}. ` +
    'Set longPrompts to "skip" (leave such prompts out) or "truncate" (cut their middle), or shorten them in the dataset.'
  );
}

/**
 * The longest cut of `prompt` that fits `max` tokens, keeping its start and its end (a problem
 * usually opens with its statement and closes with the question and the answer format) and
 * dropping the middle. Found by bisection on the characters kept, since tokens do not map back
 * to text one to one.
 */
export function truncatePrompt(prompt: string, max: number, encode: (text: string) => number[]): string {
  const cut = (kept: number) => prompt.slice(0, Math.ceil(kept / 2)) + prompt.slice(prompt.length - Math.floor(kept / 2));
  let lo = 0;
  let hi = prompt.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (encode(cut(mid)).length <= max) lo = mid;
    else hi = mid - 1;
  }
  const text = cut(lo);
  if (encode(text).length > max) throw new LongPromptError(`even an empty prompt takes more than ${max} tokens`, []);
  return text;
}

/**
 * Whether `text` fits `max` tokens without encoding it. A token covers at least one byte of
 * UTF-8 (byte-level BPE, SentencePiece's byte fallback, character vocabularies), a UTF-16 unit is
 * at most 3 bytes, and a tokenizer adds a few special tokens: so most prompts are passed on
 * their length alone, and a launch over 100,000 of them does not block the app for seconds
 * (encoding takes ~0.2 ms per 160-character prompt). A normalizer that expands text (NFKC's
 * rare ligatures) could beat this bound; the run loop still refuses whatever does not fit.
 */
export function surelyFits(text: string, max: number): boolean {
  return 3 * text.length + 16 <= max;
}

/**
 * Applies `policy` to the prompts that do not fit: 'fail' throws a LongPromptError naming them,
 * 'skip' leaves them out, 'truncate' cuts them to fit. `label(i)` names prompt i for a person.
 */
export function fitPrompts<T extends { prompt: string }>(
  items: readonly T[],
  encode: (text: string) => number[],
  limit: ContextLimit,
  policy: LongPromptPolicy,
  label: (index: number) => string,
  /** Tokens `encode` adds around any prompt beyond a tokenizer's few special ones (a chat template's). */
  wrapperTokens = 0,
): FittedPrompts<T> {
  const max = maxPromptTokens(limit);
  const result: FittedPrompts<T> = { kept: [], keptIndex: [], skipped: [], truncated: [], maxPromptTokens: max };
  const over: LongPrompt[] = [];
  items.forEach((item, index) => {
    const tokens = surelyFits(item.prompt, max - wrapperTokens) ? 0 : encode(item.prompt).length;
    if (tokens <= max) {
      result.kept.push(item);
      result.keptIndex.push(index);
      return;
    }
    const long = { index, label: label(index), tokens };
    over.push(long);
    if (policy === 'skip') result.skipped.push(long);
    else if (policy === 'truncate') {
      result.truncated.push(long);
      result.kept.push({ ...item, prompt: truncatePrompt(item.prompt, max, encode) });
      result.keptIndex.push(index);
    }
  });
  if (policy === 'fail' && over.length > 0) throw new LongPromptError(longPromptMessage(over, limit), over);
  return result;
}

/** One line on what a policy did, for the run's log and the command line (null: nothing). */
export function fittedSummary(what: string, fitted: Pick<FittedPrompts<unknown>, 'skipped' | 'truncated' | 'maxPromptTokens'>): string | null {
  const parts: string[] = [];
  const names = (ps: LongPrompt[]) => ps.slice(0, 3).map((p) => p.label).join(', ') + (ps.length > 3 ? ', …' : '');
  if (fitted.skipped.length) parts.push(`skipped ${count(fitted.skipped.length)} (${names(fitted.skipped)})`);
  if (fitted.truncated.length) parts.push(`truncated ${count(fitted.truncated.length)} to ${count(fitted.maxPromptTokens)} tokens (${names(fitted.truncated)})`);
  return parts.length ? `${what} longer than ${count(fitted.maxPromptTokens)} tokens: ${parts.join('; ')}` : null;
}
