// The built-in base model `tiny-arith`: a small Llama with the character tokenizer, trained by
// supervised fine-tuning with the engine on easy labeled arithmetic ("Compute 12+34. Answer: "
// → "46" then EOS): level-1 sums (two operands 0-99) of the `arithmetic` train split.
//
// It is built to be the model TTRL is for: one that learned from few, imperfect labels. It sees
// only 600 distinct sums, and 30% of the answers it is shown have the tens digit moved by one
// (answer ± 10, drawn afresh each time a sum comes round: noisy supervision). So on unseen sums
// (eval split) its single samples are often off by ten while the majority of 16 is usually
// right, and it has seen few enough problems that more of them, even unlabeled, can still
// teach it. bench/tiny-arith-base.ts measures it at the TTRL validation temperature 0.6 / top-p
// 0.95: avg@16 78.9%, maj@16 94.5% (the model before it, with 8 'direct' verification rows:
// 77.7% and 90.5%; before any judge and inverse rows: 80.6% and 93.5%).
//
//   npx tsx resources/models/make-tiny-arith.ts                 # resources/models/tiny-arith
//   npx tsx resources/models/make-tiny-arith.ts --out /tmp/ta --distinct 0 --label-noise 0
//
// The defaults: hidden 128, 2 layers, 1400 steps of 32 sums, lr 1e-3 cosine (about 35 s on 2
// cores). Measured at 0.6 with the other options at their defaults: with no label noise the
// samples agree (avg@16 91.4%, maj@16 91.5%), so there is no majority to learn from; 450
// distinct sums generalise worse (72.3% / 81.5%, a gap under 10 points); 450 sums with noise
// 0.4 (61.9% / 76%) give majority labels right only 74% of the time, and TTRL on that model
// falls short of its majority (74.8%). Which step count learns the sums at all is chaotic at
// higher rates (lr 3e-3 with noise 0.3: 650 steps part-way, 700 and 1000 not started): another
// option needs the measurement again (bench/tiny-arith-base.ts).
//
// A judge too (issue 14; the committed model: 16 digits rows and 8 inverse rows, see below): --judge-rows N adds N verification rows
// to each batch ("Compute 12+34. Answer: 46 Correct? " → "yes"/"no", the answer right or moved by
// ten, the verdict flipped at --judge-noise) and --inverse-rows N inverse sums ("Compute ?+34=46.
// Answer: " → "12"), all from the same fixed set of sums, so the model is an imperfect judge of
// its own answers, as real ones are. `npx tsx bench/tiny-arith-base.ts --judge` measures it
// (verdict accuracy and AUC on right vs moved answers of eval sums, inverse accuracy); the model
// trained without those rows scores AUC 0.504 and inverse 2% (50 problems).
// Measured so far (200 eval problems, AUC of P(yes) right vs moved): the verdict is NOT learned:
//   --judge-rows 8 --inverse-rows 4                           AUC 0.510, inverse 29.5%
//   --judge-rows 16 --judge-noise 0.1 --inverse-rows 4        AUC 0.513, inverse 12%
//   the same with --layers 3                                  AUC 0.533, inverse 5.5% (avg@16 84.3, maj@16 96)
//   --layers 3 --judge-rows 32 --judge-noise 0 --inverse-rows 4  AUC 0.515 (0.509 on train sums)
// P(yes) stays at the rows' 50% prior: in one forward pass at "Correct? " the model must both
// compute the sum and compare it with the shown digits, which these small models do not learn in
// 1,400 steps, while re-solving and comparing in code (svd.json's ask/match stages) works.
// Re-solving first (--judge-format resolve / compare, judged with consistency-judge's judgeMode
// written-verdict: the score is P(yes) at the verdict the model writes after its own sum; bench
// with --judge-format and greedy re-solves; compare AUC: agreeing against differing written pairs):
//   --judge-format resolve (8 rows, noise 0.2)            AUC 0.505 (random wrong 0.528), verdicts right 50.2%, re-solved right 62.7%;
//                                                         sums avg@16 74.3%, maj@16 87%
//   --judge-format compare --judge-rows 24 --judge-noise 0.1  AUC 0.563 (random 0.605), verdicts right 53.3%, re-solved 64.2%,
//                                                         compare AUC 0.60; sums 45.6% / 53% (the long verification rows crowd the sums out)
//   probes (--batch 8 --judge-rows 32 --judge-noise 0 --inverse-rows 0 --steps 600: mostly verification rows):
//     compare                                             AUC 0.516, compare AUC 0.614, re-solved 37.7%
//     digits                                              AUC 0.559 (random 0.733), compare AUC 0.989, re-solved 35.8%
//   --judge-format digits --judge-rows 8 --judge-noise 0.1   AUC 0.488 (random 0.567), verdicts right 50.5%, re-solved 62.5%,
//                                                         compare AUC 0.744; sums 71.5% / 87.5%
//   --judge-format digits --judge-rows 16 --judge-noise 0.1 --judge-random 0.5
//                                                         AUC 0.550, against random wrong answers 0.761, verdicts right 53%,
//                                                         re-solved 90.2%, compare AUC 0.856; sums 72.9% / 90.5%
//   --judge-format digits --judge-rows 16 --judge-noise 0 --judge-random 0.9
//                                                         AUC 0.745, against random wrong answers 0.936, verdicts right 76%,
//                                                         P(yes) 0.95 right / 0.43 moved / 0.095 random, re-solved 94%,
//                                                         compare AUC 0.991; sums 78.9% / 94.5% (about 4 min on an idle machine);
//                                                         sampled as consistency-judge's defaults (temperature 1, top-p 0.9)
//                                                         AUC 0.662 (random 0.868), verdicts right 66.5%; inverse sums 12%
//                                                         greedy, against 52.5% for the committed model (SVD's cycle stage asks them)
// In the resolve and compare forms the verdict sits at the prior (P(yes) 0.44-0.46 whatever it
// wrote, "176 vs 176 no"): the model learns to re-solve (in part) and to copy the shown answer
// next to its own ("vs 166" right almost always), but not to tell two numbers it wrote a few
// tokens apart equal or not. Place by place ('digits': "6!5 8=8") each comparison is of two
// neighbouring digits and the verdict only asks whether a "!" was written: that comparison is
// learned (0.989), and what is left is the re-solve, which copies the proposed answer ("Is it
// 31? Compute 2+39. Answer: 31 3=3 1=1 yes"). With 8 such rows among the sums (and their
// label noise) it learns a prior by place instead: the tens place of a wrong answer moved by ten
// always differs, so it writes "7!7" there whatever the digits ("176 1=1 7!7 6=6 no");
// --judge-random shows random wrong answers too, so that every place has to be compared: with
// half the wrong answers random the re-solve stops copying (90.2% right) and random wrong answers
// are told apart (AUC 0.761), but the tens place keeps its prior ("176 1=1 7!7 6=6 no" for the
// right answer), so answers moved by ten, the ones the self-judge sees, are not (0.550). With 90%
// of them random and clean verdicts the judge works, imperfectly (AUC 0.745 on answers moved by
// ten): where it fails it copies its own digit into the pair ("Is it 166? ... 176 1=1 7=7 6=6
// yes"). That build is the committed model (the defaults), asked as tinyArithJudgeSettings says:
// consistency-judge's judgeMode written-verdict, judgeYes ["yes"], judgeNo ["no"], judgeMaxTokens
// 20, judgeTemperature 0; svd.json's factuality stage asks the same prompt. The model it replaced
// (--judge-format direct --judge-rows 8 --judge-noise 0.2 --inverse-rows 8) judged at chance (AUC
// 0.517, random wrong answers 0.480, P(yes) 0.48 whatever the answer) and answered 52.5% of the
// inverse sums; its base avg@16 / maj@16 at 0.6: 77.7% / 90.5% (seed 0).
// Its inverse sums (12%) are the price. Inverse rows to win them back (one build each):
//   --inverse-rows 16                                     AUC 0.784 (random 0.882), verdicts right 76%, re-solved 85%,
//                                                         inverse 34%; sums 68.4% / 80% (seed 0)
//   --inverse-rows 16 --steps 2000                        AUC 0.894 (random 0.970), verdicts right 88.5%, re-solved 87.3%,
//                                                         inverse 50%; sums 74.2% / 87%
// Both lose sums (the TTRL demo needs a majority that is mostly right), so the committed model
// keeps 8 inverse rows and SVD's cycle stage passes few candidates (bench/svd-demo.ts).
//
// Reproducible: the random init (make-builtin-models.ts), the problems (the seeded `arithmetic`
// generator, train split only), the noise and the trainer are all seeded, so the same options
// give the same model. The written folder is an ordinary Hugging Face model folder (no
// optimizer state).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModelFolder } from '../../main/engine/nn/hf-model.ts';
import { fillJudgeTemplate } from '../../main/engine/rl/methods/consistency-judge.ts';
import { SVD_MODEL_FILE } from '../../main/engine/rl/methods/svd.ts';
import { fnv1a32, mulberry32Uniform } from '../../main/engine/runtime/rng.ts';
import type { BatchShape, SequenceExample } from '../../main/engine/runtime/trainer.ts';
import { type ArithmeticDifficulty, type ArithmeticProblem, generateArithmetic } from '../../main/engine/tasks/generators.ts';
import { type BuiltinModelOptions, writeBuiltinModel } from './make-builtin-models.ts';
import { trainSupervised } from './sft.ts';

export interface TinyArithOptions {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seed: number;
  /** Difficulty levels of the training problems (train split of the `arithmetic` generator). */
  levels: ArithmeticDifficulty[];
  /** Only problems whose expression uses these operators (all of + - * by default). */
  ops: string;
  steps: number;
  batch: number;
  lr: number;
  /** Share of the answers shown whose tens digit is moved by one (answer ± 10): noisy supervision. */
  labelNoise: number;
  /** Distinct training problems per level, drawn from again and again (0 = fresh problems every step). */
  distinct: number;
  /**
   * Verification rows added to each batch: "Compute 12+34. Answer: 46 Correct? " → "yes" / "no",
   * the answer shown right or moved by ten (half each), from the same fixed set of sums.
   */
  judgeRows: number;
  /** Share of the verdicts shown flipped: the judge learns from few, noisy labels, as the sums do. */
  judgeNoise: number;
  /**
   * How a verification row asks (TINY_ARITH_JUDGE_TEMPLATES): 'direct', the verdict straight after
   * the proposed answer; 'resolve', the model first writes the sum again (noised as the sums are),
   * then the verdict of comparing the two ("Is it 58? Compute 23+45. Answer: " → "68 no");
   * 'compare', as resolve but the model copies the proposed answer next to its own before the
   * verdict ("68 vs 58 no"), so the two numbers it compares stand a fixed few tokens apart;
   * 'digits', as resolve but then each place of its own sum beside the proposed answer's with "="
   * or "!" between them, so each comparison is of two neighbouring digits and the verdict is
   * whether any "!" was written ("68 6!5 8=8 no"; the shorter number padded with 0).
   */
  judgeFormat: TinyArithJudgeFormat;
  /** Share of the wrong answers shown drawn at random (0-198) instead of moved by ten, so every digit has to be compared. */
  judgeRandom: number;
  /** Inverse rows added to each batch: "Compute ?+34=46. Answer: " → "12" (two-operand sums only), noised as the sums are. */
  inverseRows: number;
}

export const TINY_ARITH_DEFAULTS: TinyArithOptions = {
  hidden: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 384,
  seed: 1,
  levels: [1],
  ops: '+',
  steps: 1400,
  batch: 32,
  lr: 1e-3,
  labelNoise: 0.3,
  distinct: 600,
  // The committed model is trained with both (issue 14, 17): it judges in the digits form,
  // imperfectly (AUC 0.745 on answers off by ten, see the header), answers a few inverse sums
  // (12%), which the self-verified distillation's cycle stage (svd.json) asks, and keeps its sums.
  judgeRows: 16,
  judgeNoise: 0,
  judgeFormat: 'digits',
  judgeRandom: 0.9,
  inverseRows: 8,
};

export const TINY_ARITH_JUDGE_FORMATS = ['direct', 'resolve', 'compare', 'digits'] as const;
export type TinyArithJudgeFormat = (typeof TINY_ARITH_JUDGE_FORMATS)[number];

/**
 * The verification prompts tiny-arith is taught, as consistency-judge templates. 'resolve' puts
 * the proposed answer first, so the model re-solves the sum where it always has, after
 * "Answer: ", and only has to copy-and-compare for the verdict.
 */
export const TINY_ARITH_JUDGE_TEMPLATES: Record<TinyArithJudgeFormat, string> = {
  direct: '{question}{answer} Correct? ',
  resolve: 'Is it {answer}? {question}',
  compare: 'Is it {answer}? {question}',
  digits: 'Is it {answer}? {question}',
};

/** The verification prompt the committed tiny-arith was taught: its own problem, a proposed answer, and the question. */
export const TINY_ARITH_JUDGE_TEMPLATE = TINY_ARITH_JUDGE_TEMPLATES[TINY_ARITH_DEFAULTS.judgeFormat];

/** The most tokens a written verdict takes: "198 1=1 9!5 8=8 no" and EOS. */
export const TINY_ARITH_JUDGE_MAX_TOKENS = 20;

/**
 * consistency-judge's settings that ask a tiny-arith taught `format` as it was taught: 'direct'
 * reads P(yes) at the first token after the prompt (judgeMode verdict); the others let it write
 * its own sum (and digit pairs) first and read P(yes) at the verdict it writes, greedily (the
 * verdict's word after a sampled re-solve is right less often: see the header).
 */
export function tinyArithJudgeSettings(format: TinyArithJudgeFormat = TINY_ARITH_DEFAULTS.judgeFormat): Record<string, unknown> {
  const words = { judgeTemplate: TINY_ARITH_JUDGE_TEMPLATES[format], judgeYes: ['yes'], judgeNo: ['no'] };
  if (format === 'direct') return { ...words, judgeMode: 'verdict' };
  return { ...words, judgeMode: 'written-verdict', judgeMaxTokens: TINY_ARITH_JUDGE_MAX_TOKENS, judgeTemperature: 0 };
}

/** Tokens per training sequence: the longest prompt of levels 1-3 plus answer and EOS fits; with verification rows, their verdict too. */
const seqLen = (o: TinyArithOptions) => (o.judgeRows > 0 && (o.judgeFormat === 'compare' || o.judgeFormat === 'digits') ? 56 : o.judgeRows > 0 || o.inverseRows > 0 ? 48 : 32);
/** Positions the model is built for (prompt + a few answer characters, with room to spare). */
const MAX_POSITIONS = 64;

/** True when every operator of the expression is one of `ops`. */
export function usesOnly(expression: string, ops: string): boolean {
  return [...expression.replace(/^-/, '')].every((c) => !'+-*'.includes(c) || ops.includes(c));
}

/** The training problems of step `step` (answers noised as `labelNoise` says): seeded by (seed, step). */
export function trainingProblems(o: TinyArithOptions, step: number): ArithmeticProblem[] {
  return withLabelNoise(o, step, o.distinct > 0 ? fromFixedSet(o, step) : freshProblems(o, step));
}

/** `batch` problems never seen before (almost: the train split is large), levels taken in turn. */
function freshProblems(o: TinyArithOptions, step: number): ArithmeticProblem[] {
  const pools = o.levels.map((difficulty, k) =>
    generateArithmetic({ difficulty, count: 4 * o.batch, seed: o.seed * 1_000_003 + step * 131 + k, split: 'train' }).filter((p) => usesOnly(p.expression, o.ops)),
  );
  const out: ArithmeticProblem[] = [];
  for (let i = 0; out.length < o.batch; i++) {
    const pool = pools[i % pools.length];
    const p = pool[Math.floor(i / pools.length)];
    if (!p) throw new Error(`levels ${o.levels.join(',')} with ops ${o.ops} give too few problems for a batch of ${o.batch}`);
    out.push(p);
  }
  return out;
}

/** The `distinct` problems per level the model is limited to (the first of the seeded train split). */
export function fixedTrainingSet(o: TinyArithOptions): ArithmeticProblem[][] {
  return o.levels.map((difficulty) => {
    const set = generateArithmetic({ difficulty, count: 3 * o.distinct, seed: o.seed, split: 'train' })
      .filter((p) => usesOnly(p.expression, o.ops))
      .slice(0, o.distinct);
    if (set.length < o.distinct) throw new Error(`level ${difficulty} with ops ${o.ops} gives only ${set.length} of the ${o.distinct} distinct problems asked for`);
    return set;
  });
}

const fixedSets = new Map<string, ArithmeticProblem[][]>();

/** `batch` problems drawn at random (seeded by step) from the fixed set, levels taken in turn. */
function fromFixedSet(o: TinyArithOptions, step: number): ArithmeticProblem[] {
  const key = `${o.seed}/${o.levels}/${o.ops}/${o.distinct}`;
  const sets = fixedSets.get(key) ?? fixedTrainingSet(o);
  fixedSets.set(key, sets);
  const rand = mulberry32Uniform(fnv1a32(`batch/${o.seed}/${step}`));
  return Array.from({ length: o.batch }, (_, i) => {
    const set = sets[i % sets.length];
    return set[Math.floor(rand() * set.length)];
  });
}

/** Each answer moved by ± 10 with probability `labelNoise` (never below 0), seeded by step. */
function withLabelNoise(o: TinyArithOptions, step: number, problems: ArithmeticProblem[]): ArithmeticProblem[] {
  if (o.labelNoise <= 0) return problems;
  const rand = mulberry32Uniform(fnv1a32(`noise/${o.seed}/${step}`));
  return problems.map((p) => {
    const shift = rand() < o.labelNoise ? (rand() < 0.5 ? -10 : 10) : 0;
    const answer = Number(p.answer) + shift;
    return shift !== 0 && answer >= 0 ? { ...p, answer: String(answer) } : p;
  });
}

/** A prompt and the answer the model is taught to write after it. */
export interface TrainingRow {
  prompt: string;
  answer: string;
}

/**
 * The verification rows of step `step`: a problem of the fixed set with its answer shown right or
 * moved by ten (never below 0), and the verdict, flipped at `judgeNoise`. In the 'resolve' format
 * the verdict follows the model's own sum, written first and moved by ten at `labelNoise` as the
 * sums are: the verdict says whether the two agree (a copy-and-compare), not whether the shown
 * answer is true. Seeded by (seed, step).
 */
export function judgeRows(o: TinyArithOptions, step: number): TrainingRow[] {
  if (o.judgeRows <= 0) return [];
  const rand = mulberry32Uniform(fnv1a32(`judge/${o.seed}/${step}`));
  return drawFromFixedSet(o, `judge-draw/${o.seed}/${step}`, o.judgeRows).map((p) => {
    const truth = Number(p.answer);
    const wrong = rand() < 0.5;
    const shift = rand() < 0.5 && truth >= 10 ? -10 : 10;
    let shown = wrong ? truth + shift : truth;
    // Drawn only when asked for, so builds without it keep their rows.
    if (wrong && o.judgeRandom > 0 && rand() < o.judgeRandom) {
      do shown = Math.floor(rand() * 199);
      while (shown === truth);
    }
    if (o.judgeFormat === 'direct') {
      const verdict = rand() < o.judgeNoise ? wrong : !wrong;
      return { prompt: judgePrompt(p.prompt, String(shown), 'direct'), answer: verdict ? 'yes' : 'no' };
    }
    const move = rand() < o.labelNoise ? (rand() < 0.5 ? -10 : 10) : 0;
    const resolved = truth + move >= 0 ? truth + move : truth;
    const agree = resolved === shown;
    const verdict = rand() < o.judgeNoise ? !agree : agree;
    const restated = o.judgeFormat === 'compare' ? ` vs ${shown}` : o.judgeFormat === 'digits' ? ` ${digitPairs(String(resolved), String(shown))}` : '';
    return { prompt: judgePrompt(p.prompt, String(shown), o.judgeFormat), answer: `${resolved}${restated} ${verdict ? 'yes' : 'no'}` };
  });
}

/** Two numbers place by place, the shorter padded with 0: "6!5 8=8" for 68 and 58. */
export function digitPairs(own: string, shown: string): string {
  const n = Math.max(own.length, shown.length);
  const [a, b] = [own.padStart(n, '0'), shown.padStart(n, '0')];
  return [...a].map((d, i) => `${d}${d === b[i] ? '=' : '!'}${b[i]}`).join(' ');
}

/** The verification prompt for a problem's prompt and a proposed answer. */
export function judgePrompt(problemPrompt: string, answer: string, format: TinyArithJudgeFormat = TINY_ARITH_DEFAULTS.judgeFormat): string {
  // Filled as the self-judge fills its template, so the model learns the prompt it will be asked.
  return fillJudgeTemplate(TINY_ARITH_JUDGE_TEMPLATES[format], { question: problemPrompt, response: answer, answer });
}

/**
 * The inverse rows of step `step`: a two-operand sum a+b=c of the fixed set asked as "?+b=c", its
 * answer a moved by ten at `labelNoise` as the sums are (never below 0). Seeded by (seed, step).
 */
export function inverseRows(o: TinyArithOptions, step: number): TrainingRow[] {
  if (o.inverseRows <= 0) return [];
  const rand = mulberry32Uniform(fnv1a32(`inverse/${o.seed}/${step}`));
  const sums = drawFromFixedSet(o, `inverse-draw/${o.seed}/${step}`, 4 * o.inverseRows)
    .filter((p) => /^\d+\+\d+$/.test(p.expression))
    .slice(0, o.inverseRows);
  return sums.map((p) => {
    const [a, b] = p.expression.split('+');
    const shift = rand() < o.labelNoise ? (rand() < 0.5 ? -10 : 10) : 0;
    const shown = Number(a) + shift >= 0 ? Number(a) + shift : Number(a);
    return { prompt: `Compute ?+${b}=${p.answer}. Answer: `, answer: String(shown) };
  });
}

/** `n` problems drawn at random (seeded by `key`) from the fixed set, levels taken in turn. */
function drawFromFixedSet(o: TinyArithOptions, key: string, n: number): ArithmeticProblem[] {
  if (o.distinct <= 0) {
    // Fresh problems every step, as the sums are then.
    return generateArithmetic({ difficulty: o.levels[0], count: 4 * n, seed: fnv1a32(key), split: 'train' })
      .filter((p) => usesOnly(p.expression, o.ops))
      .slice(0, n);
  }
  const setKey = `${o.seed}/${o.levels}/${o.ops}/${o.distinct}`;
  const sets = fixedSets.get(setKey) ?? fixedTrainingSet(o);
  fixedSets.set(setKey, sets);
  const rand = mulberry32Uniform(fnv1a32(key));
  return Array.from({ length: n }, (_, i) => {
    const set = sets[i % sets.length];
    return set[Math.floor(rand() * set.length)];
  });
}

/** Everything step `step` trains on: its sums, then its verification and inverse rows. */
export function trainingRows(o: TinyArithOptions, step: number): TrainingRow[] {
  return [...trainingProblems(o, step), ...judgeRows(o, step), ...inverseRows(o, step)];
}

export async function makeTinyArith(dir: string, o: TinyArithOptions, log: (s: string) => void = console.log): Promise<{ finalLoss: number; seconds: number }> {
  const started = Date.now();
  const init = await fs.mkdtemp(path.join(os.tmpdir(), 'tiny-arith-init-'));
  try {
    const builtin: BuiltinModelOptions = { name: 'tiny-arith', hidden: o.hidden, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, intermediate: o.intermediate, seed: o.seed, maxPositions: MAX_POSITIONS, vocab: 0, tied: true };
    await writeBuiltinModel(init, builtin);
    const model = await loadModelFolder(init);
    const tok = model.tokenizer!;
    const eos = model.config.eosTokenIds[0];
    log(`tiny-arith: hidden ${o.hidden}, ${o.layers} layers, ${o.heads} heads, ${o.kvHeads} kv heads, intermediate ${o.intermediate} (${model.parameterCount} parameters), seed ${o.seed}`);
    const data = `${o.distinct > 0 ? `${o.distinct} distinct problems per level` : 'fresh problems every step'}, label noise ${o.labelNoise}`;
    log(`training by SFT on levels ${o.levels.join(',')} (ops ${o.ops}; ${data}), ${o.steps} steps of ${o.batch} sums + ${o.judgeRows} verifications (${o.judgeFormat}, verdict noise ${o.judgeNoise}, random wrong answers ${o.judgeRandom}) + ${o.inverseRows} inverse sums, lr ${o.lr} (cosine)`);
    const shape: BatchShape = { size: o.batch + o.judgeRows + o.inverseRows, seqLen: seqLen(o) };
    const example = (p: TrainingRow): SequenceExample => {
      const prompt = tok.encode(p.prompt);
      const answer = tok.encode(p.answer, { addSpecialTokens: false });
      return { tokens: [...prompt, ...answer, eos], lossStart: prompt.length };
    };
    const finalLoss = await trainSupervised(model, {
      out: dir,
      steps: o.steps,
      lr: o.lr,
      warmupSteps: Math.min(50, Math.floor(o.steps / 10)),
      seed: o.seed,
      shape,
      batch: (step) => ({ rows: trainingRows(o, step).map(example) }),
      // The model's own self-verified distillation stages (svd.json, written for the prompts it is taught here) are kept.
      keep: [SVD_MODEL_FILE],
      log,
      logEvery: 50,
      started,
    });
    const seconds = (Date.now() - started) / 1000;
    log(`wrote ${dir} (final mean loss ${finalLoss.toFixed(4)}, ${seconds.toFixed(0)} s)`);
    return { finalLoss, seconds };
  } finally {
    await fs.rm(init, { recursive: true, force: true });
  }
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

export function judgeFormat(s: string): TinyArithJudgeFormat {
  if (!(TINY_ARITH_JUDGE_FORMATS as readonly string[]).includes(s)) throw new Error(`--judge-format must be one of ${TINY_ARITH_JUDGE_FORMATS.join(', ')}, got "${s}"`);
  return s as TinyArithJudgeFormat;
}

export function parseLevels(s: string): ArithmeticDifficulty[] {
  const levels = s.split(',').map((x) => Number(x.trim()));
  if (!levels.length || levels.some((l) => ![1, 2, 3, 4].includes(l))) throw new Error(`--levels must be a comma list of 1-4, got "${s}"`);
  return levels as ArithmeticDifficulty[];
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      hidden: { type: 'string' },
      layers: { type: 'string' },
      heads: { type: 'string' },
      'kv-heads': { type: 'string' },
      intermediate: { type: 'string' },
      seed: { type: 'string' },
      levels: { type: 'string' },
      ops: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      'label-noise': { type: 'string' },
      distinct: { type: 'string' },
      'judge-rows': { type: 'string' },
      'judge-noise': { type: 'string' },
      'judge-format': { type: 'string' },
      'judge-random': { type: 'string' },
      'inverse-rows': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: npx tsx resources/models/make-tiny-arith.ts [--out DIR] [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--intermediate N] [--seed N] [--levels 1,2] [--ops +-*] [--steps N] [--batch N] [--lr X] [--distinct N (0 = fresh sums every step)] [--label-noise P] [--judge-rows N] [--judge-noise P] [--judge-format direct|resolve|compare|digits] [--judge-random P] [--inverse-rows N]');
    return;
  }
  const d = TINY_ARITH_DEFAULTS;
  // One parser for every numeric flag; each says what it accepts.
  const option = (v: string | undefined, fallback: number, flag: string, valid: (n: number) => boolean, expected: string) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (v.trim() === '' || !valid(n)) throw new Error(`--${flag} must be ${expected}, got "${v}"`);
    return n;
  };
  const num = (v: string | undefined, fallback: number, flag: string) => option(v, fallback, flag, (n) => Number.isFinite(n) && n > 0, 'a positive number');
  const share = (v: string | undefined, fallback: number, flag: string) => option(v, fallback, flag, (n) => n >= 0 && n < 1, 'a share in [0, 1)');
  const count = (v: string | undefined, fallback: number, flag: string) => option(v, fallback, flag, (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0');
  const o: TinyArithOptions = {
    hidden: num(values.hidden, d.hidden, 'hidden'),
    layers: num(values.layers, d.layers, 'layers'),
    heads: num(values.heads, d.heads, 'heads'),
    kvHeads: num(values['kv-heads'], d.kvHeads, 'kv-heads'),
    intermediate: num(values.intermediate, d.intermediate, 'intermediate'),
    seed: num(values.seed, d.seed, 'seed'),
    levels: values.levels ? parseLevels(values.levels) : d.levels,
    ops: values.ops ?? d.ops,
    steps: num(values.steps, d.steps, 'steps'),
    batch: num(values.batch, d.batch, 'batch'),
    lr: num(values.lr, d.lr, 'lr'),
    labelNoise: share(values['label-noise'], d.labelNoise, 'label-noise'),
    distinct: count(values.distinct, d.distinct, 'distinct'),
    judgeRows: count(values['judge-rows'], d.judgeRows, 'judge-rows'),
    judgeNoise: share(values['judge-noise'], d.judgeNoise, 'judge-noise'),
    judgeFormat: judgeFormat(values['judge-format'] ?? d.judgeFormat),
    judgeRandom: share(values['judge-random'], d.judgeRandom, 'judge-random'),
    inverseRows: count(values['inverse-rows'], d.inverseRows, 'inverse-rows'),
  };
  if (!/^[+\-*]+$/.test(o.ops)) throw new Error(`--ops must use only + - *, got "${o.ops}"`);
  await makeTinyArith(path.resolve(values.out ?? path.join(HERE, 'tiny-arith')), o);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`make-tiny-arith: ${e.message}`);
    process.exit(1);
  });
}
