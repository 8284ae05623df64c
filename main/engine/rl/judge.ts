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

  /** The token ids of each verdict class's first tokens; refuses a word with no tokens and classes that share a token. */
  verdictTokens(classes: readonly (readonly string[])[]): number[][] {
    const tok = this.options.tokenizer;
    if (classes.length < 2) throw new Error(`a verdict needs at least two classes of words, got ${classes.length}`);
    const ids = classes.map((words, c) => {
      if (words.length === 0) throw new Error(`verdict class ${c + 1} has no words`);
      return [
        ...new Set(
          words.map((w) => {
            const first = tok.encode(w, { addSpecialTokens: false })[0];
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
        return out.map((s) => {
          const logits = s.logits![0];
          const perClass = ids.map((list) => logSumExp(list.map((id) => logits[id])));
          const total = logSumExp(perClass);
          return { probabilities: perClass.map((l) => Math.exp(l - total)), greedy: s.text ?? '' };
        });
      },
    };
  }

  private async run(prompts: readonly string[], req: Omit<GenerateRequest, 'promptIds' | 'tokenizer'>) {
    if (prompts.length === 0) return [];
    const { tokenizer, promptFormat, contextLength, generator } = this.options;
    const promptIds = prompts.map((p) => encodePrompt(tokenizer, p, promptFormat));
    promptIds.forEach((ids, i) => {
      if (ids.length + req.maxNewTokens > contextLength) {
        throw new Error(
          `judge prompt ${i + 1} has ${ids.length} tokens (promptFormat ${promptFormat}); with ${req.maxNewTokens} new tokens it exceeds the model's context of ${contextLength} positions. ` +
            `Shorten the method's judge template, lower maxNewTokens (the judged responses are that long), or lower the judge's token limit. It begins: ${JSON.stringify(prompts[i].slice(0, 80))}`,
        );
      }
    });
    const result = await generator.generate({ ...req, promptIds, samplesPerPrompt: 1, tokenizer });
    return result.samples;
  }
}
