// The judge service against the real engine on the built-in tiny-arith model: its verdicts are
// probabilities, its prompts are the run's encoding (chat template or raw), and it judges with
// the weights the run started from, whatever the policy has learned since (under LoRA: the
// base with the adapters off; under full fine-tuning: the reference the trainer keeps).
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../../../main/engine/generate/generator.ts';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import type { TextTokenizer } from '../../../main/engine/nn/tokenizer.ts';
import { FrozenJudge, lastVerdictWord } from '../../../main/engine/rl/judge.ts';
import { fillJudgeTemplate } from '../../../main/engine/rl/methods/consistency-judge.ts';
import { encodePrompt } from '../../../main/engine/rl/prompts.ts';
import { type BatchShape, Trainer, makeCausalBatch } from '../../../main/engine/runtime/trainer.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { generateArithmetic } from '../../../main/engine/tasks/generators.ts';
import { TINY_ARITH_JUDGE_MAX_TOKENS, tinyArithJudgeSettings } from '../../../resources/models/make-tiny-arith.ts';
import { testDevice } from '../../helpers/device.ts';

const MODEL = path.join(import.meta.dirname, '../../../resources/models/tiny-arith');
const SHAPE: BatchShape = { size: 4, seqLen: 28 };
const PROMPTS = ['Compute 12+34. Answer: 46', 'Compute 12+34. Answer: 56', 'Compute 7+8. Answer: 15', 'Compute 3+4. Answer: 9'];
const YES_NO = [['Y', 'y'], ['N', 'n']];
/** Eval sums the judge test asks about, and by how much P(yes) must be higher on their right answers than on those off by ten. */
const SUMS = 48;
const JUDGE_MARGIN = 0.25;

let model: HfModel;
let tok: TextTokenizer;

beforeAll(async () => {
  model = await loadModelFolder(MODEL);
  tok = model.tokenizer!;
});

const judges: Generator[] = [];
afterAll(async () => {
  for (const g of judges) await g.release();
});

async function judgeOver(trainer: Trainer, frozen: boolean, promptFormat: 'raw' | 'chat' = 'raw'): Promise<FrozenJudge> {
  const contextLength = model.config.maxPositionEmbeddings;
  const weights = frozen ? await trainer.referenceWeights() : trainer.weights();
  const generator = await Generator.create({ config: model.config, weights, device: trainer.store.device, maxLength: contextLength });
  judges.push(generator);
  return new FrozenJudge({ generator, tokenizer: tok, promptFormat, contextLength });
}

/** One policy-gradient step that makes the sums' answers more likely (lr large enough to move a tiny model). */
async function update(trainer: Trainer): Promise<void> {
  const rows = ['Compute 12+34. Answer: 46', 'Compute 7+8. Answer: 15', 'Compute 3+4. Answer: 7', 'Compute 9+9. Answer: 18'].map((t) => ({ tokens: tok.encode(t), lossStart: tok.encode('Compute 12+34. Answer: ').length }));
  const batch = makeCausalBatch(rows, SHAPE, tok.padTokenId ?? 0);
  const oldLogprobs = await trainer.logprobs(batch);
  await trainer.step({ ...batch, advantages: [1, -1, 1, -1], oldLogprobs }, 0.05);
}

const flatten = (v: { probabilities: number[] }[]) => v.flatMap((x) => x.probabilities);

describe('the judge', () => {
  it.each(['lora', 'full'] as const)('judges with the starting weights after a %s update that changes the policy', async (mode) => {
    const trainer = await Trainer.create({
      config: model.config,
      weights: model.weights,
      device: await testDevice(),
      mode: mode === 'full' ? { kind: 'full' } : { kind: 'lora', rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] },
      loss: { kind: 'policy', klCoef: 0 },
      batch: SHAPE,
      keepReference: true,
    });
    try {
      const frozen = (await judgeOver(trainer, true)).bind(1);
      const policy = (await judgeOver(trainer, false)).bind(1);
      const before = await frozen.verdicts(PROMPTS, YES_NO);
      // A verdict is a probability: one per class, each in [0, 1], summing to 1.
      expect(before).toHaveLength(PROMPTS.length);
      for (const v of before) {
        expect(v.probabilities).toHaveLength(2);
        for (const p of v.probabilities) expect(p).toBeGreaterThanOrEqual(0);
        expect(v.probabilities[0] + v.probabilities[1]).toBeCloseTo(1, 12);
      }
      // Before any update, policy and judge are the same model.
      const policyBefore = await policy.verdicts(PROMPTS, YES_NO);
      flatten(policyBefore).forEach((p, i) => expect(p).toBeCloseTo(flatten(before)[i], 5));
      const textBefore = await frozen.generate(PROMPTS, { maxNewTokens: 4, temperature: 0 });

      await update(trainer);

      const policyAfter = flatten(await policy.verdicts(PROMPTS, YES_NO));
      const moved = Math.max(...policyAfter.map((p, i) => Math.abs(p - flatten(policyBefore)[i])));
      expect(moved).toBeGreaterThan(1e-4);
      // The judge's numbers are exactly what they were.
      expect(flatten(await frozen.verdicts(PROMPTS, YES_NO))).toEqual(flatten(before));
      expect(await frozen.generate(PROMPTS, { maxNewTokens: 4, temperature: 0 })).toEqual(textBefore);
    } finally {
      await trainer.release();
    }
  });

  it('encodes its prompts as the run does, batched, seeded, and stops when the run is cancelled', async () => {
    const trainer = await Trainer.create({ config: model.config, weights: model.weights, device: await testDevice(), mode: { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj'] }, loss: { kind: 'policy' }, batch: SHAPE });
    try {
      const chat = await judgeOver(trainer, true, 'chat');
      // The same ids generated directly: the judge puts its prompts in the model's chat template.
      const direct = await Generator.create({ config: model.config, weights: await trainer.referenceWeights(), device: trainer.store.device, maxLength: model.config.maxPositionEmbeddings });
      judges.push(direct);
      const ids = PROMPTS.map((p) => encodePrompt(tok, p, 'chat'));
      expect(tok.decode(ids[0], { skipSpecialTokens: false })).toContain('<|user|>');
      const expected = await direct.generate({ promptIds: ids, maxNewTokens: 6, temperature: 1, seed: 5, tokenizer: tok });
      const texts = await chat.bind(5).generate(PROMPTS, { maxNewTokens: 6, temperature: 1 });
      expect(texts).toEqual(expected.samples.map((s) => s.text));
      // The seed is the group's: the same seed samples the same text, another seed may not.
      expect(await chat.bind(5).generate(PROMPTS, { maxNewTokens: 6, temperature: 1 })).toEqual(texts);

      const controller = new AbortController();
      controller.abort(new Error('the run is stopping'));
      await expect(chat.bind(5, controller.signal).verdicts(PROMPTS, YES_NO)).rejects.toThrow(/the run is stopping/);
    } finally {
      await trainer.release();
    }
  });

  it('reads a written verdict as the same verdict asked with what the judge wrote before it in the prompt', async () => {
    const trainer = await Trainer.create({ config: model.config, weights: model.weights, device: await testDevice(), mode: { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj'] }, loss: { kind: 'policy' }, batch: SHAPE });
    try {
      const judge = (await judgeOver(trainer, true)).bind(3);
      // tiny-arith's verification prompts: it writes its own sum, the two numbers place by place, then yes or no, read where it wrote it.
      const asked = ['Is it 46? Compute 12+34. Answer: ', 'Is it 56? Compute 12+34. Answer: ', 'Is it 15? Compute 7+8. Answer: '];
      const classes = [['yes'], ['no']];
      const written = await judge.writtenVerdicts(asked, classes, { maxNewTokens: TINY_ARITH_JUDGE_MAX_TOKENS, temperature: 0 });
      for (const [i, w] of written.entries()) {
        const found = lastVerdictWord(w.text, classes);
        expect(found, w.text).not.toBeNull();
        expect(w.verdict).toBe(found!.verdict);
        const [direct] = await judge.verdicts([asked[i] + w.text.slice(0, found!.offset)], classes);
        expect(w.probabilities).toHaveLength(2);
        w.probabilities!.forEach((p, c) => expect(p).toBeCloseTo(direct.probabilities[c], 5));
      }
      // No verdict word written: no verdict and no probabilities (the method then abstains).
      const none = await judge.writtenVerdicts(asked, [['maybe'], ['perhaps']], { maxNewTokens: TINY_ARITH_JUDGE_MAX_TOKENS, temperature: 0 });
      expect(none.map((w) => [w.verdict, w.probabilities])).toEqual(asked.map(() => [null, null]));
      await expect(judge.writtenVerdicts(asked, [['yes'], ['yeah']], { maxNewTokens: TINY_ARITH_JUDGE_MAX_TOKENS, temperature: 0 })).rejects.toThrow(/start with the same token "y"/);
    } finally {
      await trainer.release();
    }
  });

  it('is a judge: asked as consistency-judge asks it (the recipe’s settings), it says yes to right sums more often than to sums off by ten', async () => {
    // The committed model: P(yes) 0.98 on these right sums, 0.52 on the moved ones; the one before the digits form
    // judged at chance (0.5 and 0.5 here: it writes no verdict after its sum).
    const generator = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device: await testDevice(), maxLength: model.config.maxPositionEmbeddings });
    judges.push(generator);
    const judge = new FrozenJudge({ generator, tokenizer: tok, promptFormat: 'raw', contextLength: model.config.maxPositionEmbeddings }).bind(0);
    const s = tinyArithJudgeSettings() as { judgeTemplate: string; judgeMode: string; judgeYes: string[]; judgeNo: string[]; judgeMaxTokens: number; judgeTemperature: number };
    expect(s.judgeMode).toBe('written-verdict');
    // Unseen sums (eval split), each shown with its answer and with the answer moved by ten.
    const sums = generateArithmetic({ difficulty: 1, count: 200, seed: 0, split: 'eval' }).filter((p) => /^\d+\+\d+$/.test(p.expression)).slice(0, SUMS);
    const ask = (p: { prompt: string }, answer: number) => fillJudgeTemplate(s.judgeTemplate, { question: p.prompt, response: String(answer), answer: String(answer) });
    const right = sums.map((p) => ask(p, Number(p.answer)));
    const moved = sums.map((p) => ask(p, Number(p.answer) >= 10 ? Number(p.answer) - 10 : Number(p.answer) + 10));
    const written = await judge.writtenVerdicts([...right, ...moved], [s.judgeYes, s.judgeNo], { maxNewTokens: s.judgeMaxTokens, temperature: s.judgeTemperature });
    const yes = written.map((w) => w.probabilities?.[0] ?? 0.5);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const [yesRight, yesMoved] = [mean(yes.slice(0, SUMS)), mean(yes.slice(SUMS))];
    expect(yesRight - yesMoved, `P(yes) ${yesRight.toFixed(3)} right, ${yesMoved.toFixed(3)} moved`).toBeGreaterThan(JUDGE_MARGIN);
    // An imperfect judge, as the recipe means it to be: some moved answers pass.
    expect(written.slice(SUMS).some((w) => w.verdict === 0)).toBe(true);
  });

  it('refuses verdict words it cannot tell apart and prompts that do not fit the context, saying what to change', async () => {
    const trainer = await Trainer.create({ config: model.config, weights: model.weights, device: await testDevice(), mode: { kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj'] }, loss: { kind: 'policy' }, batch: SHAPE });
    try {
      const judge = await judgeOver(trainer, true);
      await expect(judge.bind(0).verdicts(PROMPTS, [['yes'], ['yeah']])).rejects.toThrow(/\[yes\] and \[yeah\] start with the same token "y"/);
      await expect(judge.bind(0).verdicts(PROMPTS, [['yes']])).rejects.toThrow(/at least two classes/);
      const long = 'Compute 1+1. '.repeat(6);
      await expect(judge.bind(0).generate([long], { maxNewTokens: 8, temperature: 0 })).rejects.toThrow(/judge prompt 1 has \d+ tokens .* exceeds the model's context of 64 positions\. Shorten the method's judge template/);
    } finally {
      await trainer.release();
    }
  });
});
