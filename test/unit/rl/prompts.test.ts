// Prompts against the model's context: what a prompt may hold, the message that names the ones
// that do not fit, and the skip / truncate policies (a character-level tokenizer with a BOS, so
// the counts are plain to check).
import { describe, expect, it } from 'vitest';
import { LongPromptError, fitPrompts, fittedSummary, maxPromptTokens, truncatePrompt } from '../../../main/engine/rl/prompts.ts';

/** One token per character, after a BOS. */
const encode = (text: string) => [1, ...[...text].map((c) => c.codePointAt(0)!)];
const limit = { contextLength: 64, maxNewTokens: 16, model: 'tiny' };
const items = (prompts: string[]) => prompts.map((prompt, i) => ({ prompt, answer: String(i) }));
const label = (i: number) => `item ${i}`;

describe('maxPromptTokens', () => {
  it('is what maxNewTokens leaves of the context, or the run\'s own cap when lower', () => {
    expect(maxPromptTokens(limit)).toBe(48);
    expect(maxPromptTokens({ ...limit, maxPromptTokens: 20 })).toBe(20);
    expect(maxPromptTokens({ ...limit, maxPromptTokens: 500 })).toBe(48);
  });

  it('refuses a maxNewTokens that leaves no room, naming the setting and the context', () => {
    expect(() => maxPromptTokens({ ...limit, maxNewTokens: 64 })).toThrow(/maxNewTokens \(64\) leaves no room for a prompt in tiny's context of 64 tokens/);
  });
});

describe('fitPrompts', () => {
  const prompts = ['short', 'x'.repeat(100), 'also short', 'y'.repeat(60), 'z'.repeat(47)];

  it('fails by default naming each long prompt, its length and the limit, and what to change', () => {
    let err: unknown;
    try {
      fitPrompts(items(prompts), encode, limit, 'fail', label);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LongPromptError);
    const e = err as LongPromptError;
    expect(e.prompts.map((p) => [p.index, p.tokens])).toEqual([
      [1, 101],
      [3, 61],
    ]);
    expect(e.message).toContain('2 prompts are too long for tiny: item 1 has 101 tokens; item 3 has 61 tokens.');
    expect(e.message).toContain('Its context is 64 tokens (max_position_embeddings), of which maxNewTokens takes 16, so a prompt may have at most 48.');
    expect(e.message).toContain('Set longPrompts to "skip"');
    // 48 tokens fit exactly (BOS + 47 characters).
    expect(() => fitPrompts(items([prompts[4]]), encode, limit, 'fail', label)).not.toThrow();
  });

  it('names the run\'s maxPromptTokens when that is the limit, and counts what it does not list', () => {
    const many = items(Array.from({ length: 6 }, (_, i) => 'w'.repeat(30 + i)));
    expect(() => fitPrompts(many, encode, { ...limit, maxPromptTokens: 10 }, 'fail', label)).toThrow(/item 0 has 31 tokens; item 1 has 32 tokens; item 2 has 33 tokens, and 3 more\. The run's maxPromptTokens is 10\./);
  });

  it('skips the long prompts and says which prompt each kept one was', () => {
    const fitted = fitPrompts(items(prompts), encode, limit, 'skip', label);
    expect(fitted.kept.map((k) => k.prompt)).toEqual(['short', 'also short', prompts[4]]);
    expect(fitted.keptIndex).toEqual([0, 2, 4]);
    expect(fitted.skipped.map((s) => s.label)).toEqual(['item 1', 'item 3']);
    expect(fittedSummary('training prompts', fitted)).toBe('training prompts longer than 48 tokens: skipped 2 (item 1, item 3)');
  });

  it('truncates the long prompts to fit, keeping their start and end', () => {
    const long = `START ${'m'.repeat(200)} END`;
    const fitted = fitPrompts(items(['short', long]), encode, limit, 'truncate', label);
    expect(fitted.keptIndex).toEqual([0, 1]);
    const cut = fitted.kept[1].prompt;
    expect(encode(cut).length).toBe(48);
    expect(cut.startsWith('START ')).toBe(true);
    expect(cut.endsWith(' END')).toBe(true);
    expect(fitted.kept[1].answer).toBe('1');
    expect(fittedSummary('training prompts', fitted)).toBe('training prompts longer than 48 tokens: truncated 1 to 48 tokens (item 1)');
  });

  it('encodes only the prompts whose length alone cannot show that they fit', () => {
    const encoded: string[] = [];
    const spy = (text: string) => (encoded.push(text), encode(text));
    // 48 tokens: up to 10 characters pass on their length (3 bytes each, 16 special tokens).
    const fitted = fitPrompts(items(['0123456789', '01234567890', 'x'.repeat(100)]), spy, limit, 'skip', label);
    expect(encoded).toEqual(['01234567890', 'x'.repeat(100)]);
    expect(fitted.keptIndex).toEqual([0, 1]);
  });

  it('counts a chat template around every prompt: a short prompt is encoded, and refused, when the template makes it too long', () => {
    // A template adding 40 tokens (BOS + 39 around the text): "0123456789" alone would pass on its length.
    const chat = (text: string) => [1, ...Array<number>(39).fill(7), ...[...text].map((c) => c.codePointAt(0)!)];
    expect(chat('0123456789')).toHaveLength(50); // > 48
    const encoded: string[] = [];
    const spy = (text: string) => (encoded.push(text), chat(text));
    const fitted = fitPrompts(items(['0123456789', 'abc']), spy, limit, 'skip', label, chat('').length);
    expect(encoded).toEqual(['0123456789', 'abc']);
    expect(fitted.skipped.map((p) => p.tokens)).toEqual([50]);
    expect(fitted.keptIndex).toEqual([1]);
  });

  it('truncates by tokens where characters and tokens differ', () => {
    // A tokenizer that makes each "ab" one token: the cut still fits exactly.
    const pairs = (text: string) => [1, ...(text.match(/ab|./gs) ?? []).map((t) => t.length)];
    const cut = truncatePrompt('ab'.repeat(100), 30, pairs);
    expect(pairs(cut).length).toBeLessThanOrEqual(30);
    expect(pairs(cut).length).toBeGreaterThanOrEqual(29);
  });
});
