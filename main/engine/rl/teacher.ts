// The EMA teacher (Co-rewarding II, arXiv 2508.00410): a slowly moving copy of the policy whose
// own samples vote the labels the policy is rewarded against, so the policy cannot label its
// own samples and a collapse of the policy reaches the labels only slowly. After each update,
// teacher ← α·policy + (1 − α)·teacher on the trainable weights (under LoRA the adapters: the
// base is shared), with α on a cosine schedule from 0.01 down to 1e-5 over the run's steps.
// The teacher's values are saved with every checkpoint, so a resumed run continues with them.
import type { Generator } from '../generate/generator.ts';
import type { TextTokenizer } from '../nn/tokenizer.ts';
import type { FlatArray, TrainableCopy } from '../runtime/parameter-store.ts';
import { type AnswerFormat, extractAnswer } from '../tasks/answers.ts';
import { type PromptFormat, encodePrompt } from './prompts.ts';

/**
 * α of the update after step `step` of `steps`: cosine from `start` (step 1) to `end` (the last
 * step), α = end + (start − end)·(1 + cos(π·(step − 1)/(steps − 1)))/2.
 */
export function emaAlpha(step: number, steps: number, start = 0.01, end = 1e-5): number {
  if (steps <= 1) return start;
  const t = Math.min(1, Math.max(0, (step - 1) / (steps - 1)));
  return end + ((start - end) * (1 + Math.cos(Math.PI * t))) / 2;
}

/** teacher ← α·policy + (1 − α)·teacher, in place. */
export function emaUpdate(teacher: FlatArray, policy: FlatArray, alpha: number): void {
  if (teacher.length !== policy.length) throw new Error(`EMA update: the teacher has ${teacher.length} values, the policy ${policy.length}`);
  for (let i = 0; i < teacher.length; i++) teacher[i] = alpha * policy[i] + (1 - alpha) * teacher[i];
}

/** What a scorer may ask of the teacher: its own samples of a prompt. */
export interface Teacher {
  /** `n` samples of the prompt from the teacher (the run's sampling), with their answers; seeded per group. */
  sample(prompt: string, n: number): Promise<{ texts: string[]; answers: (string | null)[] }>;
}

export interface EmaTeacherOptions {
  /** The teacher's values on the device (the store's trainable copy), written after each update. */
  copy: TrainableCopy;
  /** Its values on the host, flat in the store's layout (what the EMA updates and checkpoints save). */
  values: FlatArray;
  /** A generator over `copy`. */
  generator: Generator;
  tokenizer: TextTokenizer;
  promptFormat: PromptFormat;
  answerFormat: AnswerFormat;
  sampling: { maxNewTokens: number; temperature: number; topP: number; topK: number; stopStrings: readonly string[] };
}

export class EmaTeacher {
  constructor(private readonly o: EmaTeacherOptions) {}

  /** The values to checkpoint. */
  get values(): FlatArray {
    return this.o.values;
  }

  /** One EMA step toward the policy's values. */
  async update(policy: FlatArray, alpha: number): Promise<void> {
    emaUpdate(this.o.values, policy, alpha);
    await this.o.copy.write(this.o.values);
  }

  bind(seed: number, signal?: AbortSignal): Teacher {
    return {
      sample: async (prompt, n) => {
        const { generator, tokenizer, promptFormat, answerFormat, sampling } = this.o;
        const out = await generator.generate({ promptIds: [encodePrompt(tokenizer, prompt, promptFormat)], samplesPerPrompt: n, ...sampling, seed, tokenizer, signal });
        const texts = out.samples.map((s) => s.text ?? '');
        return { texts, answers: texts.map((t) => extractAnswer(t, answerFormat)) };
      },
    };
  }
}
