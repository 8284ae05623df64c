// The base model's numbers that make the TTRL demo meaningful: on a labeled set of harder
// arithmetic problems (eval split), avg@16 (mean accuracy of 16 samples), maj@16 (accuracy of
// the majority answer of the 16) and pass@16 (any of the 16 right). The demo needs
// maj@16 − avg@16 ≥ 10 points with avg@16 well above 0: a model that is often right but noisy.
// Sampling follows TTRL's validation (METHODS.md): temperature 0.6, top-p 0.95.
//
//   npx tsx bench/tiny-arith-base.ts [--model tiny-arith|DIR] [--levels 1] [--ops +] [--count 200]
//     [--k 16] [--temperature 0.6] [--top-p 0.95] [--seed 0]
//   npx tsx bench/tiny-arith-base.ts --judge [--judge-format direct|resolve] [--judge-temperature 0] [--judge-top-p 1] [--show N]
//
// --judge measures the model as the self-judge asks it (evaluateJudge below): AUC of its score
// on right answers against answers moved by ten and against random ones, verdict accuracy, and
// in the resolve format how often it re-solves the sum right and how often the verdict word it
// writes is right; --judge-format must be the one the model was built with.
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
import { FrozenJudge } from '../main/engine/rl/judge.ts';
import { fnv1a32, mulberry32Uniform } from '../main/engine/runtime/rng.ts';
import { TINY_ARITH_DEFAULTS, TINY_ARITH_JUDGE_MAX_TOKENS, TINY_ARITH_JUDGE_TEMPLATES, type TinyArithJudgeFormat, judgeFormat, judgePrompt } from '../resources/models/make-tiny-arith.ts';

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
  /** Share of verdicts right over the right and the moved answers (score > 1/2 exactly when the shown answer is right). */
  accuracy: number;
  /** Probability that a right answer scores higher than one moved by ten (ROC AUC; ties count half). */
  auc: number;
  /** The same against a random wrong answer (0-198). */
  aucRandom: number;
  /** Mean score when the shown answer is right, moved by ten, random. */
  yesRight: number;
  yesWrong: number;
  yesRandom: number;
  /** Resolve and compare formats: share of the sums the judge re-solved right, of its written verdicts that are right, and of responses without a verdict (they score 1/2). */
  resolved?: number;
  writtenAccuracy?: number;
  /**
   * The comparison alone: AUC of the score where the two numbers the judge wrote agree against
   * where they differ (compare format; whether or not its own sum is right).
   */
  compareAuc?: number;
  abstained?: number;
  /** Share of inverse problems ("Compute ?+34=46. Answer: ") answered right, greedily. */
  inverse: number;
  problems: number;
}

export interface JudgeEvalOptions extends Pick<BaseEvalOptions, 'model' | 'levels' | 'ops' | 'count' | 'dataSeed'> {
  /** The verification form the model was taught (resources/models/make-tiny-arith.ts). */
  format: TinyArithJudgeFormat;
  /** Resolve and compare formats: the judge's sampling temperature (0 = greedy) and top-p, as consistency-judge's settings. */
  temperature: number;
  topP: number;
  /** Print the judge's first `show` exchanges (stderr). */
  show: number;
}

/** Whether the two numbers a compare or digits judge wrote agree (null: it wrote no such pair). */
function writtenAgreement(text: string, format: TinyArithJudgeFormat): boolean | null {
  if (format === 'compare') {
    const pair = /^\s*(\d+) vs (\d+)/.exec(text);
    return pair ? pair[1] === pair[2] : null;
  }
  if (format !== 'digits') return null;
  const places = [...text.matchAll(/(\d)([=!])(\d)/g)];
  return places.length > 0 ? places.every((m) => m[1] === m[3]) : null;
}

/** ROC AUC of scores `a` (positives) against `b` (negatives): ties count half. */
function auc(a: readonly number[], b: readonly number[]): number {
  let wins = 0;
  for (const x of a) for (const y of b) wins += x > y ? 1 : x === y ? 0.5 : 0;
  return wins / Math.max(1, a.length * b.length);
}

/**
 * The built-in model as a judge (resources/models/make-tiny-arith.ts teaches it to verify),
 * asked through the judge service the consistency-judge method uses (rl/judge.ts): each eval
 * problem shown with its right answer, with the answer moved by ten, and with a random wrong one,
 * in the recipe's verification prompt. 'direct': the score is P(yes) at the verdict's first
 * character (judgeMode verdict); 'resolve': the judge writes its own sum and a verdict, and the
 * score is P(yes) at the verdict it wrote (judgeMode written-verdict). Then the inverse sums.
 */
export async function evaluateJudge(o: JudgeEvalOptions, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<JudgeEvalResult> {
  const model = await loadModelFolder(resolveModelPath(o.model));
  const tokenizer = model.tokenizer!;
  const problems = evalProblems(o.levels, o.ops, o.count, o.dataSeed);
  const device = await resolveDevice('cpu');
  const contextLength = model.config.maxPositionEmbeddings;
  const gen = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device, maxLength: contextLength });
  const judge = new FrozenJudge({ generator: gen, tokenizer, promptFormat: 'raw', contextLength });
  const rand = mulberry32Uniform(fnv1a32(`judge-eval/${o.dataSeed}`));
  type Shown = { problem: ArithmeticProblem; kind: 'right' | 'moved' | 'random'; answer: string };
  const shown: Shown[] = problems.flatMap((p) => {
    const truth = Number(p.answer);
    let random = truth;
    while (random === truth) random = Math.floor(rand() * 199);
    return [
      { problem: p, kind: 'right' as const, answer: p.answer },
      { problem: p, kind: 'moved' as const, answer: String(truth >= 10 ? truth - 10 : truth + 10) },
      { problem: p, kind: 'random' as const, answer: String(random) },
    ];
  });
  const classes = [['yes'], ['no']];
  const scores: number[] = [];
  const written: { verdict: number | null; resolvedRight: boolean; agree: boolean | null }[] = [];
  let inverseRight = 0;
  try {
    for (let start = 0; start < shown.length; start += 48) {
      const part = shown.slice(start, start + 48);
      const prompts = part.map((s) => judgePrompt(s.problem.prompt, s.answer, o.format));
      const bound = judge.bind(start);
      if (o.format === 'direct') {
        const v = await bound.verdicts(prompts, classes);
        scores.push(...v.map((x) => x.probabilities[0]));
      } else {
        const v = await bound.writtenVerdicts(prompts, classes, { maxNewTokens: TINY_ARITH_JUDGE_MAX_TOKENS, temperature: o.temperature, topP: o.topP });
        v.forEach((x, i) => {
          scores.push(x.probabilities ? x.probabilities[0] : x.verdict === null ? 0.5 : x.verdict === 0 ? 1 : 0);
          written.push({ verdict: x.verdict, resolvedRight: /^\s*(\d+)/.exec(x.text)?.[1] === part[i].problem.answer, agree: writtenAgreement(x.text, o.format) });
          if (start + i < o.show) log(`  ${prompts[i]}${x.text}   (${part[i].kind}, P(yes) ${x.probabilities ? x.probabilities[0].toFixed(3) : '-'})`);
        });
      }
    }
    // Inverse sums, greedily: "Compute ?+34=46. Answer: " → "12".
    const sums = problems.filter((p) => /^\d+\+\d+$/.test(p.expression));
    for (let start = 0; start < sums.length; start += 32) {
      const part = sums.slice(start, start + 32);
      const texts = await judge.bind(start).generate(
        part.map((p) => `Compute ?+${p.expression.split('+')[1]}=${p.answer}. Answer: `),
        { maxNewTokens: 6, temperature: 0 },
      );
      part.forEach((p, i) => {
        if (extractAnswer(texts[i], 'auto') === p.expression.split('+')[0]) inverseRight++;
      });
    }
  } finally {
    await gen.release();
  }
  const of = (kind: Shown['kind']) => scores.filter((_, i) => shown[i].kind === kind);
  const [right, moved, random] = [of('right'), of('moved'), of('random')];
  const avg = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length);
  const rightOrMoved = shown.map((s, i) => ({ s, i })).filter(({ s }) => s.kind !== 'random');
  const result: JudgeEvalResult = {
    accuracy: rightOrMoved.filter(({ s, i }) => scores[i] > 0.5 === (s.kind === 'right')).length / rightOrMoved.length,
    auc: auc(right, moved),
    aucRandom: auc(right, random),
    yesRight: avg(right),
    yesWrong: avg(moved),
    yesRandom: avg(random),
    inverse: inverseRight / Math.max(1, problems.filter((p) => /^\d+\+\d+$/.test(p.expression)).length),
    problems: problems.length,
  };
  if (o.format !== 'direct') {
    result.resolved = avg(written.map((w) => (w.resolvedRight ? 1 : 0)));
    result.writtenAccuracy = rightOrMoved.filter(({ s, i }) => written[i].verdict === (s.kind === 'right' ? 0 : 1)).length / rightOrMoved.length;
    result.abstained = avg(written.map((w) => (w.verdict === null ? 1 : 0)));
    if (o.format === 'compare' || o.format === 'digits') result.compareAuc = auc(scores.filter((_, i) => written[i].agree === true), scores.filter((_, i) => written[i].agree === false));
  }
  return result;
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
      'judge-format': { type: 'string', default: TINY_ARITH_DEFAULTS.judgeFormat },
      'judge-temperature': { type: 'string', default: '0' },
      'judge-top-p': { type: 'string', default: '1' },
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
    const format = judgeFormat(values['judge-format']!);
    const j = await evaluateJudge({ ...o, format, temperature: num(values['judge-temperature'], 'judge-temperature'), topP: num(values['judge-top-p'], 'judge-top-p') });
    const pct = (x: number) => Math.round(x * 1000) / 10;
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    console.log(
      JSON.stringify({
        bench: 'tiny-arith-judge',
        judge_accuracy: pct(j.accuracy),
        judge_auc: r3(j.auc),
        judge_auc_random: r3(j.aucRandom),
        p_yes_right: r3(j.yesRight),
        p_yes_wrong: r3(j.yesWrong),
        p_yes_random: r3(j.yesRandom),
        ...(j.resolved !== undefined && { resolved_right: pct(j.resolved), written_accuracy: pct(j.writtenAccuracy!), abstained: pct(j.abstained!) }),
        ...(j.compareAuc !== undefined && { compare_auc: r3(j.compareAuc) }),
        inverse_accuracy: pct(j.inverse),
        settings: { model: path.basename(resolveModelPath(o.model)), levels: o.levels, ops: o.ops, problems: j.problems, format, template: TINY_ARITH_JUDGE_TEMPLATES[format], ...(format !== 'direct' && { temperature: values['judge-temperature'], top_p: values['judge-top-p'] }) },
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
