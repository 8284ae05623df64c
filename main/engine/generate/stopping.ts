// When a sample row is done: an end-of-sequence token, a stop string in its decoded text, or
// the token budget. Stop strings are found on the host in decoded text, since a string can be
// split across tokens in many ways.

export type FinishReason = 'eos' | 'stop' | 'length';

/** The part of a tokenizer generation needs (the HF tokenizer wrapper satisfies it). */
export interface TokenDecoder {
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** End-of-sequence ids the tokenizer knows (e.g. a chat model's end-of-turn token). */
  readonly eosTokenIds?: readonly number[];
}

/**
 * The text of generated tokens: special tokens (EOS, padding, role markers) left out, as
 * answer extraction and stop strings want it ("<|system|>" must not match a stop string "e").
 */
export function decodeText(tokenizer: TokenDecoder, ids: readonly number[]): string {
  return tokenizer.decode(ids, { skipSpecialTokens: true });
}

/** A stop string found in a row's text, and where. */
export interface StopMatch {
  stopString: string;
}

export class StopStrings {
  private readonly window: number;

  constructor(
    private readonly strings: readonly string[],
    private readonly tokenizer: TokenDecoder | undefined,
  ) {
    if (strings.some((s) => s.length === 0)) throw new Error('stop strings must not be empty');
    if (strings.length > 0 && !tokenizer) throw new Error('stop strings need a tokenizer to decode the generated tokens');
    // A stop string of n characters spans at most n tokens that each add a character; the
    // margin covers tokens that decode to nothing on their own (a split UTF-8 sequence).
    this.window = Math.max(0, ...strings.map((s) => s.length)) + 8;
  }

  get active(): boolean {
    return this.strings.length > 0;
  }

  /**
   * The stop string that the newest token completed, if any. Only the tail of the row is
   * decoded: earlier tokens were checked when they arrived, so an older match would have
   * stopped the row already.
   */
  check(generated: readonly number[]): StopMatch | null {
    if (!this.tokenizer || this.strings.length === 0) return null;
    const tail = decodeText(this.tokenizer, generated.slice(Math.max(0, generated.length - this.window)));
    for (const s of this.strings) if (tail.includes(s)) return { stopString: s };
    return null;
  }
}
