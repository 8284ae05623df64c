// The base model's numbers that make the TTRL demo meaningful: on a labeled set of harder
// arithmetic problems (eval split), avg@16 (mean accuracy of 16 samples), maj@16 (accuracy of
// the majority answer of the 16) and pass@16 (any of the 16 right). The demo needs
// maj@16 − avg@16 ≥ 10 points with avg@16 well above 0: a model that is often right but noisy.
// Sampling follows TTRL's validation (METHODS.md): temperature 0.6, top-p 0.95.
//
//   npx tsx bench/tiny-arith-base.ts [--model tiny-arith|DIR] [--levels 1] [--ops +] [--count 200]
//     [--k 16] [--temperature 0.6] [--top-p 0.95] [--seed 0]
//
// Progress goes to stderr; stdout gets one JSON line.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Generator } from '../main/engine/generate/generator.ts';
import { resolveModelPath } from '../main/engine/model-paths.ts';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { resolveDevice } from '../main/engine/runtime/devices.ts';
import { HostWeights } from '../main/engine/runtime/weights.ts';
import { type ArithmeticDifficulty, type ArithmeticProblem, generateArithmetic } from '../main/engine/tasks/generators.ts';
import { answersEquivalent, extractAnswer, majorityVote } from '../main/engine/tasks/answers.ts';
import { TokenScorer } from '../main/engine/runtime/token-logprobs.ts';
import { TINY_ARITH_JUDGE_TEMPLATE, judgePrompt } from '../resources/models/make-tiny-arith.ts';

export interface BaseEvalOptions {
  model: string;
  levels: ArithmeticDifficulty[];
  ops: string;
  count: number;
  k: number;
  temperature: number;
  topP: number;
  seed: number;
  /** Seed of the problem list (the `arithmetic` generator's). */
  dataSeed: number;
  /** Print the samples' answers of the first `show` problems (stderr). */
  show: number;
}

export interface BaseEvalResult {
  avg: number;
  maj: number;
  pass: number;
  /** Share of samples with no extractable answer. */
  noAnswer: number;
  problems: number;
}

/** True when every operator of the expression is one of `ops`. */
function usesOnly(expression: string, ops: string): boolean {
  return [...expression].every((c) => !'+-*'.includes(c) || ops.includes(c));
}

/** `count` eval-split problems, levels taken in turn, filtered to the operators asked for. */
export function evalProblems(levels: ArithmeticDifficulty[], ops: string, count: number, seed: number): ArithmeticProblem[] {
  // Ask for room to filter; a small level (1) may hold fewer distinct problems than that.
  const pool = (difficulty: ArithmeticDifficulty): ArithmeticProblem[] => {
    for (const n of [4 * count, 2 * count, count]) {
      try {
        return generateArithmetic({ difficulty, count: n, seed, split: 'eval' });
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
      }
    }
    throw new Error(`difficulty ${difficulty} has fewer than ${count} eval problems`);
  };
  const pools = levels.map((difficulty) => pool(difficulty).filter((p) => usesOnly(p.expression, ops)));
  const out: ArithmeticProblem[] = [];
  for (let i = 0; out.length < count; i++) {
    const p = pools[i % pools.length][Math.floor(i / pools.length)];
    if (!p) throw new Error(`too few eval problems at levels ${levels.join(',')} with ops ${ops}`);
    out.push(p);
  }
  return out;
}

export async function evaluateBase(o: BaseEvalOptions, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<BaseEvalResult> {
  const model = await loadModelFolder(resolveModelPath(o.model));
  const tokenizer = model.tokenizer!;
  const problems = evalProblems(o.levels, o.ops, o.count, o.dataSeed);
  const gen = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device: await resolveDevice('cpu'), maxLength: 48 });
  let correct = 0;
  let majRight = 0;
  let passRight = 0;
  let noAnswer = 0;
  const chunk = 16;
  try {
    for (let start = 0; start < problems.length; start += chunk) {
      const part = problems.slice(start, start + chunk);
      const { samples } = await gen.generate({
        promptIds: part.map((p) => tokenizer.encode(p.prompt)),
        samplesPerPrompt: o.k,
        maxNewTokens: 8,
        temperature: o.temperature,
        topP: o.topP,
        seed: o.seed + start,
        tokenizer,
      });
      part.forEach((p, i) => {
        const answers = samples.slice(i * o.k, (i + 1) * o.k).map((s) => extractAnswer(s.text ?? '', 'auto'));
        const right = answers.filter((a) => a !== null && answersEquivalent(a, p.answer)).length;
        noAnswer += answers.filter((a) => a === null).length;
        correct += right;
        if (right > 0) passRight++;
        const { label } = majorityVote(answers, { ties: 'first' }); // as validation's maj@k
        if (label !== null && answersEquivalent(label, p.answer)) majRight++;
        if (start + i < o.show) log(`  ${p.expression} = ${p.answer}: ${answers.join(' ')}`);
      });
      log(`  ${Math.min(start + chunk, problems.length)}/${problems.length} problems`);
    }
  } finally {
    await gen.release();
  }
  const n = problems.length;
  return { avg: correct / (n * o.k), maj: majRight / n, pass: passRight / n, noAnswer: noAnswer / (n * o.k), problems: n };
}

export interface JudgeEvalResult {
  /** Share of verdicts right (P(yes) > 1/2 exactly when the shown answer is right). */
  accuracy: number;
  /** Probability that a right answer gets a higher P(yes) than a wrong one (ROC AUC). */
  auc: number;
  /** Mean P(yes) when the shown answer is right, and when it is moved by ten. */
  yesRight: number;
  yesWrong: number;
  /** Share of inverse problems ("Compute ?+34=46. Answer: ") answered right, greedily. */
  inverse: number;
  problems: number;
}

/**
 * The built-in model as a judge (resources/models/make-tiny-arith.ts teaches it to verify): each
 * eval problem shown once with its right answer and once moved by ten, in the recipe's verification prompt, and
 * P(yes) = p("y") / (p("y") + p("n")) at the verdict's first character; then the inverse sums.
 */
export async function evaluateJudge(o: Pick<BaseEvalOptions, 'model' | 'levels' | 'ops' | 'count' | 'dataSeed'>): Promise<JudgeEvalResult> {
  const model = await loadModelFolder(resolveModelPath(o.model));
  const tokenizer = model.tokenizer!;
  const problems = evalProblems(o.levels, o.ops, o.count, o.dataSeed);
  const device = await resolveDevice('cpu');
  const scorer = new TokenScorer({ config: model.config, weights: new HostWeights(model.weights), device });
  const [yes] = tokenizer.encode('y', { addSpecialTokens: false });
  const [no] = tokenizer.encode('n', { addSpecialTokens: false });
  const shown = problems.flatMap((p) => {
    const truth = Number(p.answer);
    return [
      { prompt: judgePrompt(p.prompt, p.answer), right: true },
      { prompt: judgePrompt(p.prompt, String(truth >= 10 ? truth - 10 : truth + 10)), right: false },
    ];
  });
  const pYes: number[] = [];
  try {
    for (let start = 0; start < shown.length; start += 32) {
      const part = shown.slice(start, start + 32);
      const seqs = part.flatMap((s) => {
        const ids = tokenizer.encode(s.prompt);
        return [
          [...ids, yes],
          [...ids, no],
        ];
      });
      const scored = await scorer.score(seqs);
      for (let i = 0; i < part.length; i++) {
        const ly = scored[2 * i][seqs[2 * i].length - 2];
        const ln = scored[2 * i + 1][seqs[2 * i + 1].length - 2];
        pYes.push(1 / (1 + Math.exp(ln - ly)));
      }
    }
  } finally {
    await scorer.release();
  }
  const right = shown.map((s, i) => ({ p: pYes[i], right: s.right }));
  const accuracy = right.filter((r) => r.p > 0.5 === r.right).length / right.length;
  const rs = right.filter((r) => r.right).map((r) => r.p);
  const ws = right.filter((r) => !r.right).map((r) => r.p);
  let wins = 0;
  for (const a of rs) for (const b of ws) wins += a > b ? 1 : a === b ? 0.5 : 0;
  const avg = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length);

  // Inverse sums, greedily: "Compute ?+34=46. Answer: " → "12".
  const sums = problems.filter((p) => /^\d+\+\d+$/.test(p.expression));
  const gen = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device, maxLength: 48 });
  let inverseRight = 0;
  try {
    for (let start = 0; start < sums.length; start += 32) {
      const part = sums.slice(start, start + 32);
      const { samples } = await gen.generate({
        promptIds: part.map((p) => tokenizer.encode(`Compute ?+${p.expression.split('+')[1]}=${p.answer}. Answer: `)),
        samplesPerPrompt: 1,
        maxNewTokens: 6,
        temperature: 0,
        seed: start,
        tokenizer,
      });
      part.forEach((p, i) => {
        if (extractAnswer(samples[i].text ?? '', 'auto') === p.expression.split('+')[0]) inverseRight++;
      });
    }
  } finally {
    await gen.release();
  }
  return { accuracy, auc: wins / Math.max(1, rs.length * ws.length), yesRight: avg(rs), yesWrong: avg(ws), inverse: inverseRight / Math.max(1, sums.length), problems: problems.length };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: 'tiny-arith' },
      levels: { type: 'string', default: '1' },
      ops: { type: 'string', default: '+' },
      count: { type: 'string', default: '200' },
      k: { type: 'string', default: '16' },
      temperature: { type: 'string', default: '0.6' },
      'top-p': { type: 'string', default: '0.95' },
      seed: { type: 'string', default: '0' },
      'data-seed': { type: 'string', default: '0' },
      show: { type: 'string', default: '0' },
      judge: { type: 'boolean', default: false },
    },
  });
  const num = (v: string | undefined, flag: string) => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(n)) throw new Error(`--${flag} must be a number, got "${v}"`);
    return n;
  };
  const levels = values.levels!.split(',').map((x) => Number(x)) as ArithmeticDifficulty[];
  if (levels.some((l) => ![1, 2, 3, 4].includes(l))) throw new Error(`--levels must be a comma list of 1-4, got "${values.levels}"`);
  const o: BaseEvalOptions = {
    model: values.model!,
    levels,
    ops: values.ops!,
    count: num(values.count, 'count'),
    k: num(values.k, 'k'),
    temperature: num(values.temperature, 'temperature'),
    topP: num(values['top-p'], 'top-p'),
    seed: num(values.seed, 'seed'),
    dataSeed: num(values['data-seed'], 'data-seed'),
    show: num(values.show, 'show'),
  };
  const started = Date.now();
  if (values.judge) {
    const j = await evaluateJudge(o);
    const pct = (x: number) => Math.round(x * 1000) / 10;
    console.log(
      JSON.stringify({
        bench: 'tiny-arith-judge',
        judge_accuracy: pct(j.accuracy),
        judge_auc: Math.round(j.auc * 1000) / 1000,
        p_yes_right: Math.round(j.yesRight * 1000) / 1000,
        p_yes_wrong: Math.round(j.yesWrong * 1000) / 1000,
        inverse_accuracy: pct(j.inverse),
        settings: { model: path.basename(resolveModelPath(o.model)), levels: o.levels, ops: o.ops, problems: j.problems, template: TINY_ARITH_JUDGE_TEMPLATE },
        wall_s: Math.round((Date.now() - started) / 100) / 10,
      }),
    );
    return;
  }
  const r = await evaluateBase(o);
  const pct = (x: number) => Math.round(x * 1000) / 10;
  const wall = (Date.now() - started) / 1000;
  process.stderr.write(`base avg@${o.k} ${pct(r.avg)}%  maj@${o.k} ${pct(r.maj)}%  pass@${o.k} ${pct(r.pass)}%  (gap ${pct(r.maj - r.avg)} points, no answer ${pct(r.noAnswer)}%)  ${wall.toFixed(1)} s\n`);
  console.log(
    JSON.stringify({
      bench: 'tiny-arith-base',
      base_avg16: pct(r.avg),
      base_maj16: pct(r.maj),
      base_pass16: pct(r.pass),
      gap_points: pct(r.maj - r.avg),
      no_answer: pct(r.noAnswer),
      settings: { model: path.basename(resolveModelPath(o.model)), levels: o.levels, ops: o.ops, problems: r.problems, k: o.k, temperature: o.temperature, top_p: o.topP, seed: o.seed, data_seed: o.dataSeed },
      wall_s: Math.round(wall * 10) / 10,
    }),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`tiny-arith-base: ${e.message}`);
    process.exit(1);
  });
}
