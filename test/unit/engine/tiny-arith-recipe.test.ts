// The data recipe of the built-in base model tiny-arith (resources/models/make-tiny-arith.ts):
// few distinct sums, answers moved by ten at the stated rate, everything seeded.
import { describe, expect, it } from 'vitest';
import { TINY_ARITH_DEFAULTS, digitPairs, fixedTrainingSet, inverseRows, judgePrompt, judgeRows, tinyArithJudgeSettings, trainingProblems, trainingRows } from '../../../resources/models/make-tiny-arith.ts';

const STEPS = 300;
const batches = (o = TINY_ARITH_DEFAULTS) => Array.from({ length: STEPS }, (_, step) => trainingProblems(o, step));
const truth = (expression: string) => expression.split('+').reduce((s, x) => s + Number(x), 0);

describe('tiny-arith training data', () => {
  it('draws every problem from the fixed set of `distinct` sums, and nearly all of them come round', () => {
    const [set] = fixedTrainingSet(TINY_ARITH_DEFAULTS);
    expect(set).toHaveLength(TINY_ARITH_DEFAULTS.distinct);
    const allowed = new Set(set.map((p) => p.expression));
    expect(allowed.size).toBe(TINY_ARITH_DEFAULTS.distinct);
    const seen = new Set(batches().flat().map((p) => p.expression));
    for (const e of seen) expect(allowed.has(e), e).toBe(true);
    // 300 batches of 32 = 9,600 draws from 600: all but a handful are seen.
    expect(seen.size).toBeGreaterThan(0.98 * TINY_ARITH_DEFAULTS.distinct);
  });

  it('moves the stated share of answers by exactly ten, never below zero', () => {
    const shown = batches().flat();
    const moved = shown.filter((p) => Number(p.answer) !== truth(p.expression));
    for (const p of moved) {
      expect(Math.abs(Number(p.answer) - truth(p.expression)), p.expression).toBe(10);
      expect(Number(p.answer)).toBeGreaterThanOrEqual(0);
    }
    // 9,600 draws at 30% (sums below 10 lose the downward half): within about three standard errors.
    const share = moved.length / shown.length;
    expect(share).toBeGreaterThan(0.28);
    expect(share).toBeLessThan(0.32);
    expect(moved.some((p) => Number(p.answer) > truth(p.expression))).toBe(true);
    expect(moved.some((p) => Number(p.answer) < truth(p.expression))).toBe(true);
  });

  it('is the same for the same options and different for another seed', () => {
    expect(trainingProblems(TINY_ARITH_DEFAULTS, 7)).toEqual(trainingProblems(TINY_ARITH_DEFAULTS, 7));
    expect(trainingProblems({ ...TINY_ARITH_DEFAULTS, seed: 2 }, 7)).not.toEqual(trainingProblems(TINY_ARITH_DEFAULTS, 7));
  });

  it('leaves answers alone without noise, and draws fresh sums without a fixed set', () => {
    const clean = batches({ ...TINY_ARITH_DEFAULTS, labelNoise: 0, distinct: 0 }).flat();
    for (const p of clean) expect(Number(p.answer)).toBe(truth(p.expression));
    expect(new Set(clean.map((p) => p.expression)).size).toBeGreaterThan(2 * TINY_ARITH_DEFAULTS.distinct);
  });
});

describe('tiny-arith verification and inverse rows', () => {
  const judging = { ...TINY_ARITH_DEFAULTS, judgeRows: 8, judgeNoise: 0.2, judgeFormat: 'direct' as const, judgeRandom: 0, inverseRows: 4 };
  const parse = (prompt: string) => /^Compute (\d+)\+(\d+)\. Answer: (\d+) Correct\? $/.exec(prompt);

  it("are in the committed model's recipe (16 verifications in the digits form, 8 inverse sums), after its sums; without them a step is its sums alone", () => {
    const rows = trainingRows(TINY_ARITH_DEFAULTS, 5);
    expect(rows.slice(0, TINY_ARITH_DEFAULTS.batch)).toEqual(trainingProblems(TINY_ARITH_DEFAULTS, 5));
    expect(rows).toHaveLength(TINY_ARITH_DEFAULTS.batch + 16 + 8);
    expect(rows.slice(TINY_ARITH_DEFAULTS.batch, TINY_ARITH_DEFAULTS.batch + 16).every((r) => /^Is it \d+\? Compute \d+\+\d+\. Answer: $/.test(r.prompt) && /^\d+ [\d=! ]+ (yes|no)$/.test(r.answer))).toBe(true);
    // The judge the self-judge asks is the one taught: its template, read at the verdict it writes.
    expect(tinyArithJudgeSettings()).toEqual({ judgeTemplate: 'Is it {answer}? {question}', judgeYes: ['yes'], judgeNo: ['no'], judgeMode: 'written-verdict', judgeMaxTokens: 20, judgeTemperature: 0 });
    expect(tinyArithJudgeSettings('direct')).toEqual({ judgeTemplate: '{question}{answer} Correct? ', judgeYes: ['yes'], judgeNo: ['no'], judgeMode: 'verdict' });
    expect(trainingRows({ ...TINY_ARITH_DEFAULTS, judgeRows: 0, inverseRows: 0 }, 5)).toEqual(trainingProblems(TINY_ARITH_DEFAULTS, 5));
  });

  it('show an answer right or moved by exactly ten, with the verdict flipped at the stated rate', () => {
    const rows = Array.from({ length: 300 }, (_, step) => judgeRows(judging, step)).flat();
    expect(rows).toHaveLength(300 * 8);
    const set = new Set(fixedTrainingSet(judging)[0].map((p) => p.expression));
    let flipped = 0;
    let wrongShown = 0;
    for (const r of rows) {
      const m = parse(r.prompt);
      expect(m, r.prompt).not.toBeNull();
      const [a, b, shown] = [Number(m![1]), Number(m![2]), Number(m![3])];
      expect(set.has(`${a}+${b}`)).toBe(true);
      const right = shown === a + b;
      if (!right) {
        expect(Math.abs(shown - (a + b))).toBe(10);
        wrongShown++;
      }
      expect(['yes', 'no']).toContain(r.answer);
      if ((r.answer === 'yes') !== right) flipped++;
    }
    // 2,400 rows: half shown wrong, a fifth of the verdicts flipped, within about three standard errors.
    expect(wrongShown / rows.length).toBeGreaterThan(0.47);
    expect(wrongShown / rows.length).toBeLessThan(0.53);
    expect(flipped / rows.length).toBeGreaterThan(0.175);
    expect(flipped / rows.length).toBeLessThan(0.225);
    expect(judgePrompt('Compute 1+2. Answer: ', '3', 'direct')).toBe('Compute 1+2. Answer: 3 Correct? ');
  });

  it.each(['resolve', 'compare', 'digits'] as const)('in the %s form re-solve the sum, noised as the sums are, and judge whether it agrees with the shown answer', (judgeFormat) => {
    const o = { ...judging, judgeFormat, judgeNoise: 0.1 };
    const rows = Array.from({ length: 300 }, (_, step) => judgeRows(o, step)).flat();
    let moved = 0;
    let flipped = 0;
    let shownWrong = 0;
    for (const r of rows) {
      const m = /^Is it (\d+)\? Compute (\d+)\+(\d+)\. Answer: $/.exec(r.prompt);
      expect(m, r.prompt).not.toBeNull();
      const [shown, truth] = [Number(m![1]), Number(m![2]) + Number(m![3])];
      const a = { resolve: /^(\d+) (yes|no)$/, compare: /^(\d+) vs (\d+) (yes|no)$/, digits: /^(\d+) ([\d=! ]+) (yes|no)$/ }[judgeFormat].exec(r.answer);
      expect(a, r.answer).not.toBeNull();
      const resolved = Number(a![1]);
      // The compare form copies the shown answer next to its own.
      if (judgeFormat === 'compare') expect(Number(a![2])).toBe(shown);
      // The digits form sets the two side by side, place by place.
      if (judgeFormat === 'digits') expect(a![2]).toBe(digitPairs(String(resolved), String(shown)));
      if (shown !== truth) {
        expect(Math.abs(shown - truth)).toBe(10);
        shownWrong++;
      }
      if (resolved !== truth) {
        expect(Math.abs(resolved - truth)).toBe(10);
        moved++;
      }
      // The verdict says whether the two numbers agree, flipped at judgeNoise.
      if ((a!.at(-1) === 'yes') !== (resolved === shown)) flipped++;
    }
    expect(shownWrong / rows.length).toBeGreaterThan(0.46);
    expect(shownWrong / rows.length).toBeLessThan(0.54);
    expect(moved / rows.length).toBeGreaterThan(0.26);
    expect(moved / rows.length).toBeLessThan(0.32);
    expect(flipped / rows.length).toBeGreaterThan(0.08);
    expect(flipped / rows.length).toBeLessThan(0.12);
    expect(judgePrompt('Compute 1+2. Answer: ', '3', judgeFormat)).toBe('Is it 3? Compute 1+2. Answer: ');
  });

  it('show random wrong answers at --judge-random, and without it the rows they always had', () => {
    const o = { ...judging, judgeFormat: 'digits' as const, judgeNoise: 0 };
    const rows = Array.from({ length: 300 }, (_, step) => judgeRows({ ...o, judgeRandom: 0.5 }, step)).flat();
    let wrong = 0;
    let random = 0;
    for (const r of rows) {
      const [, shown, a, b] = /^Is it (\d+)\? Compute (\d+)\+(\d+)/.exec(r.prompt)!.map(Number);
      if (shown === a + b) continue;
      wrong++;
      if (Math.abs(shown - (a + b)) === 10) continue;
      random++;
      expect(shown).toBeLessThanOrEqual(198);
    }
    // Half shown wrong, half of those random (a random one ten off counts as moved: 1 in 100).
    expect(wrong / rows.length).toBeGreaterThan(0.46);
    expect(wrong / rows.length).toBeLessThan(0.54);
    expect(random / wrong).toBeGreaterThan(0.44);
    expect(random / wrong).toBeLessThan(0.54);
    expect(judgeRows({ ...o, judgeRandom: 0 }, 4).every((r) => {
      const [, shown, a, b] = /^Is it (\d+)\? Compute (\d+)\+(\d+)/.exec(r.prompt)!.map(Number);
      return shown === a + b || Math.abs(shown - (a + b)) === 10;
    })).toBe(true);
  });

  it('set two numbers side by side place by place, the shorter padded with zeros', () => {
    expect(digitPairs('68', '58')).toBe('6!5 8=8');
    expect(digitPairs('176', '176')).toBe('1=1 7=7 6=6');
    expect(digitPairs('105', '95')).toBe('1!0 0!9 5=5');
    expect(digitPairs('7', '17')).toBe('0!1 7=7');
  });

  it('ask a sum backwards, its answer noised as the sums are', () => {
    const rows = Array.from({ length: 300 }, (_, step) => inverseRows(judging, step)).flat();
    expect(rows).toHaveLength(300 * 4);
    let moved = 0;
    for (const r of rows) {
      const m = /^Compute \?\+(\d+)=(\d+)\. Answer: $/.exec(r.prompt);
      expect(m, r.prompt).not.toBeNull();
      const a = Number(m![2]) - Number(m![1]);
      if (Number(r.answer) !== a) {
        expect(Math.abs(Number(r.answer) - a)).toBe(10);
        moved++;
      }
    }
    expect(moved / rows.length).toBeGreaterThan(0.25);
    expect(moved / rows.length).toBeLessThan(0.32);
  });

  it('are seeded: the same step gives the same rows, another seed others', () => {
    expect(trainingRows(judging, 9)).toEqual(trainingRows(judging, 9));
    expect(judgeRows({ ...judging, seed: 2 }, 9)).not.toEqual(judgeRows(judging, 9));
  });
});
