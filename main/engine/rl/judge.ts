// The judge: a frozen model a method asks about its samples (the scorer context's `judge`).
//
// Frozen means the weights the run started from, never the policy being trained: under LoRA the
// base model with the adapters off, under full fine-tuning the reference weights the trainer
// keeps for the KL term (`Trainer.referenceWeights()`), so judging costs no extra copy of the
// weights. A judge that moved with the policy would be rewarded for agreeing with itself.
//
// Its prompts are encoded as the run's own (`encodePrompt`: the model's chat template under
// promptFormat chat, raw otherwise), so one judge works for any model with a chat template. Each
// call is one batched generation over all its prompts, stopped by the run's cancellation.
import type { GenerateRequest, Generator } from '../generate/generator.ts';
import { decodeText } from '../generate/stopping.ts';
import type { TextTokenizer } from '../nn/tokenizer.ts';
import { type PromptFormat, encodePrompt } from './prompts.ts';

export interface JudgeGenerateOptions {
  /** The most tokens of each response. */
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling (1 = off). */
  topP?: number;
  stopStrings?: readonly string[];
}

/** What a scorer may ask of the frozen model; calls of one group are seeded from the run's seed, step and group. */
export interface Judge {
  /** The frozen model's response to each prompt, in one batched generation. */
  generate(prompts: readonly string[], options: JudgeGenerateOptions): Promise<string[]>;
  /**
   * For each prompt, the probability of each verdict class at the first token of the answer,
   * normalised over the classes: a class is a list of words (["Yes", "yes"]) and its probability
   * the sum over the distinct first tokens of its words. Also the greedy first token, as text
   * (what the judge would have said).
   */
  verdicts(prompts: readonly string[], classes: readonly (readonly string[])[]): Promise<{ probabilities: number[]; greedy: string }[]>;
  /**
   * The judge writes first (a re-solve, its reasoning) and ends with a verdict word: for each
   * prompt its text, the class of the last verdict word it wrote as a whole word (null: none), and
   * the probability of each class at that word's first token given what it wrote before it,
   * normalised over the classes (null when the word shares its token with text before it, so no
   * class token can be read there, or when there is no verdict).
   */
  writtenVerdicts(prompts: readonly string[], classes: readonly (readonly string[])[], options: JudgeGenerateOptions): Promise<WrittenVerdict[]>;
}

export interface WrittenVerdict {
  text: string;
  verdict: number | null;
  probabilities: number[] | null;
}

/** Where the last whole verdict word of `text` starts, and its class; null when it has none. */
export function lastVerdictWord(text: string, classes: readonly (readonly string[])[]): { verdict: number; offset: number } | null {
  let best: { verdict: number; offset: number } | null = null;
  classes.forEach((words, c) =>
    words.forEach((w) => {
      const escaped = w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      // A whole word: no letter, digit or underscore on either side ("no" is not in "not").
      for (const m of text.matchAll(new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, 'gu'))) {
        if (!best || m.index > best.offset) best = { verdict: c, offset: m.index };
      }
    }),
  );
  return best;
}

export interface FrozenJudgeOptions {
  /** A generator over the frozen weights. */
  generator: Generator;
  tokenizer: TextTokenizer;
  promptFormat: PromptFormat;
  /** The most positions a prompt and its response may take (the model's context). */
  contextLength: number;
}

/** log Σ exp(xs), in float64. */
function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
}

/** The judge of a run: one generator over the frozen weights; `bind` gives each group its seed and the run's cancellation. */
export class FrozenJudge {
  constructor(private readonly options: FrozenJudgeOptions) {}

  /**
   * The token ids of each verdict class's first tokens (each word after `lead`, the text its first
   * token starts with: " " where a tokenizer joins a word to the space before it); refuses a word
   * with no tokens and classes that share a token.
   */
  verdictTokens(classes: readonly (readonly string[])[], lead = ''): number[][] {
    const tok = this.options.tokenizer;
    if (classes.length < 2) throw new Error(`a verdict needs at least two classes of words, got ${classes.length}`);
    const ids = classes.map((words, c) => {
      if (words.length === 0) throw new Error(`verdict class ${c + 1} has no words`);
      return [
        ...new Set(
          words.map((w) => {
            const first = tok.encode(lead + w, { addSpecialTokens: false })[0];
            if (first === undefined) throw new Error(`the verdict word "${w}" encodes to no tokens`);
            return first;
          }),
        ),
      ];
    });
    const owner = new Map<number, number>();
    ids.forEach((list, c) =>
      list.forEach((id) => {
        const o = owner.get(id);
        if (o !== undefined && o !== c) {
          throw new Error(`the verdict words [${classes[o].join(', ')}] and [${classes[c].join(', ')}] start with the same token "${tok.decode([id])}", so the judge cannot tell them apart; choose words that differ in their first token`);
        }
        owner.set(id, c);
      }),
    );
    return ids;
  }

  bind(seed: number, signal?: AbortSignal): Judge {
    return {
      generate: async (prompts, o) => {
        const out = await this.run(prompts, { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP ?? 1, stopStrings: o.stopStrings, seed, signal });
        return out.map((s) => s.text ?? '');
      },
      verdicts: async (prompts, classes) => {
        const ids = this.verdictTokens(classes);
        // One greedy token with its logits: the verdict distribution over the whole vocabulary.
        const out = await this.run(prompts, { maxNewTokens: 1, temperature: 0, seed, signal, returnLogits: true });
        return out.map((s) => ({ probabilities: classProbabilities(s.logits![0], ids), greedy: s.text ?? '' }));
      },
      writtenVerdicts: async (prompts, classes, o) => {
        this.verdictTokens(classes); // refuses unusable classes before any generation
        const promptIds = this.encode(prompts, o.maxNewTokens);
        const written = await this.runIds(promptIds, { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP ?? 1, stopStrings: o.stopStrings, seed, signal });
        const out: WrittenVerdict[] = written.map((s) => ({ text: s.text ?? '', verdict: null, probabilities: null }));
        // Where each verdict word's first token stands, and that token's candidates per class.
        const reads: { row: number; ids: number[]; classIds: number[][] }[] = [];
        written.forEach((s, row) => {
          const found = lastVerdictWord(out[row].text, classes);
          if (!found) return;
          out[row].verdict = found.verdict;
          const at = this.tokenAt(s.tokenIds, found.offset);
          if (!at) return;
          let classIds: number[][];
          try {
            classIds = this.verdictTokens(classes, at.lead);
          } catch {
            return; // the word is fused with the text before it: the written word alone scores it
          }
          reads.push({ row, ids: [...promptIds[s.promptIndex], ...s.tokenIds.slice(0, at.token)], classIds });
        });
        if (reads.length > 0) {
          // The verdict distribution after what the judge wrote: one greedy token with its logits.
          const next = await this.runIds(
            reads.map((r) => r.ids),
            { maxNewTokens: 1, temperature: 0, seed, signal, returnLogits: true },
          );
          next.forEach((s, i) => {
            out[reads[i].row].probabilities = classProbabilities(s.logits![0], reads[i].classIds);
          });
        }
        return out;
      },
    };
  }

  /** The generated token holding character `offset` of the text, and the text it holds before that character. */
  private tokenAt(ids: readonly number[], offset: number): { token: number; lead: string } | null {
    const tok = this.options.tokenizer;
    for (let k = 0; k < ids.length; k++) {
      if (decodeText(tok, ids.slice(0, k + 1)).length <= offset) continue;
      const before = decodeText(tok, ids.slice(0, k)).length;
      return { token: k, lead: offset > before ? decodeText(tok, ids.slice(0, k + 1)).slice(before, offset) : '' };
    }
    return null;
  }

  private encode(prompts: readonly string[], maxNewTokens: number): number[][] {
    const { tokenizer, promptFormat, contextLength } = this.options;
    const promptIds = prompts.map((p) => encodePrompt(tokenizer, p, promptFormat));
    promptIds.forEach((ids, i) => {
      if (ids.length + maxNewTokens > contextLength) {
        throw new Error(
          `judge prompt ${i + 1} has ${ids.length} tokens (promptFormat ${promptFormat}); with ${maxNewTokens} new tokens it exceeds the model's context of ${contextLength} positions. ` +
            `Shorten the method's judge template, lower maxNewTokens (the judged responses are that long), or lower the judge's token limit. It begins: ${JSON.stringify(prompts[i].slice(0, 80))}`,
        );
      }
    });
    return promptIds;
  }

  private async run(prompts: readonly string[], req: Omit<GenerateRequest, 'promptIds' | 'tokenizer'>) {
    if (prompts.length === 0) return [];
    return this.runIds(this.encode(prompts, req.maxNewTokens), req);
  }

  private async runIds(promptIds: number[][], req: Omit<GenerateRequest, 'promptIds' | 'tokenizer'>) {
    if (promptIds.length === 0) return [];
    const result = await this.options.generator.generate({ ...req, promptIds, samplesPerPrompt: 1, tokenizer: this.options.tokenizer });
    return result.samples;
  }
}

/** Each class's probability at one step's logits: log-sum-exp over its token ids, normalised over the classes. */
function classProbabilities(logits: Float32Array, ids: readonly number[][]): number[] {
  const perClass = ids.map((list) => logSumExp(list.map((id) => logits[id])));
  const total = logSumExp(perClass);
  return perClass.map((l) => Math.exp(l - total));
}
