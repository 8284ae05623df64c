// Extraction, equivalence and majority vote on answer formats as models and datasets write them.
import { describe, expect, it } from 'vitest';
import {
  answersEquivalent,
  extractAnswer,
  extractBoxed,
  extractChoice,
  formatForDataset,
  majorityVote,
  normalizeAnswer,
  type AnswerFormat,
} from '../../../main/engine/tasks/answers.ts';

// [response text, format, expected extracted answer]
const EXTRACTION: [string, AnswerFormat, string | null][] = [
  // MATH / Minerva style
  ['So the area is $\\boxed{12}$.', 'math', '12'],
  ['Thus $x = \\boxed{\\frac{3}{4}}$', 'math', '\\frac{3}{4}'],
  ['First \\boxed{1}, then corrected: \\boxed{2}', 'math', '2'],
  ['$\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$', 'math', '\\left(3, \\frac{\\pi}{2}\\right)'],
  ['The answer is \\boxed {5}.', 'math', '5'],
  ['\\fbox{42}', 'math', '42'],
  ['so we get $\\boxed 7$.', 'math', '7'],
  ['\\boxed{\\{1, 2\\}}', 'math', '\\{1, 2\\}'],
  ['Earlier \\boxed{3}. Final: \\boxed{\\frac{1}{', 'math', '3'], // truncated last box
  ['Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.', 'math', '$\\frac{1}{2}$'],
  ['The answer is 17.', 'auto', '17'],
  ['THE ANSWER IS: 3.5.', 'auto', '3.5'],
  ['**Answer:** 204', 'auto', '204'],
  ['The final answer is **72**.', 'auto', '72'],
  ['Answer: $x^2+1$', 'auto', '$x^2+1$'],
  ['The answer is $\\boxed{8}$ apples', 'auto', '8'],
  // GSM8K
  ['Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n48+24 = <<48+24=72>>72\n#### 72', 'gsm8k', '72'],
  ['He pays 1,000 + 200 = 1,200 dollars.\n#### 1,200', 'gsm8k', '1,200'],
  ['#### $18.', 'gsm8k', '$18'],
  ['She has 5 apples and buys 3 more, so 8 apples in total.', 'gsm8k', '8'],
  ['The total is 1,234,567 people.', 'auto', '1234567'],
  ['Temperature drops to -12 degrees.', 'auto', '-12'],
  ['It costs 3.75 each', 'auto', '3.75'],
  ['Pages 3-4 are missing', 'auto', '4'],
  ['No numbers here at all.', 'auto', null],
  ['', 'auto', null],
  // AIME style
  ['Therefore m+n = 109, and the answer is $\\boxed{109}$.', 'math', '109'],
  ['The remainder when divided by 1000 is \\boxed{025}', 'math', '025'],
  // multiple choice
  ['The correct option is (B).', 'multiple-choice', 'B'],
  ['So the answer is C because the others fail.', 'multiple-choice', 'C'],
  ['Answer: (D)', 'multiple-choice', 'D'],
  ['After eliminating options, I choose\nB.', 'multiple-choice', 'B'],
  ['$\\boxed{\\text{(E)}}$', 'multiple-choice', 'E'],
  ['\\boxed{A}', 'multiple-choice', 'A'],
  ['**Answer: A**', 'multiple-choice', 'A'],
  ['The answer is 42.', 'multiple-choice', null], // no letter: never falls back to numbers
  ['A cat sat on the mat with 3 legs', 'multiple-choice', null],
];

// [a, b, equivalent?] in the math format
const EQUIV: [string, string, boolean][] = [
  // integers and signs
  ['72', '72', true],
  ['72', '72.0', true],
  ['-5', '- 5', true],
  ['-5', '5', false],
  ['025', '25', true],
  ['1000000', '1000001', false],
  // decimals and fractions
  ['0.5', '\\frac{1}{2}', true],
  ['1/2', '\\frac12', true],
  ['\\dfrac{3}{4}', '0.75', true],
  ['\\tfrac{3}{4}', '3/4', true],
  ['\\frac{3}{4}', '\\frac{4}{3}', false],
  ['0.333', '\\frac{1}{3}', false],
  ['0.3333333', '\\frac13', true],
  ['-\\frac{2}{3}', '\\frac{-2}{3}', true],
  ['.5', '0.50', true],
  // mixed numbers
  ['3\\frac{1}{2}', '3.5', true],
  ['2 1/4', '\\frac{9}{4}', true],
  ['-1\\frac{1}{2}', '-1.5', true],
  // percentages (stripped as a unit)
  ['50\\%', '50', true],
  ['50%', '50', true],
  ['50%', '0.5', false],
  // thousands separators
  ['1,000', '1000', true],
  ['1\\,000', '1000', true],
  ['1 000 000', '1000000', true],
  ['1{,}234', '1234', true],
  ['12,345.5', '12345.5', true],
  // units, currency and text wrappers
  ['\\$5', '5', true],
  ['$5.00', '5', true],
  ['5 dollars', '5', true],
  ['12\\text{ cm}', '12', true],
  ['12 \\mbox{cm}^2', '12', true],
  ['90^\\circ', '90', true],
  ['90^{\\circ}', '\\frac{\\pi}{2}', false],
  ['\\text{18 apples}', '18', true],
  // LaTeX wrappers and assignments
  ['$\\frac{1}{2}$', '0.5', true],
  ['\\(7\\)', '7', true],
  ['x = 5', '5', true],
  ['k=-3', '-3', true],
  ['\\left( 1, 2 \\right)', '(1,2)', true],
  ['**42**', '42', true],
  // radicals, pi, scientific notation
  ['\\sqrt{2}', '1.41421356', true],
  ['\\frac{\\sqrt{2}}{2}', '\\frac{1}{\\sqrt2}', true],
  ['2\\sqrt{3}', '\\sqrt{12}', true],
  ['\\sqrt[3]{8}', '2', true],
  ['\\sqrt{2}', '\\sqrt{3}', false],
  ['2\\pi', '6.283185307', true],
  ['\\pi r^2', 'r^2\\pi', true],
  ['1.5 \\times 10^{3}', '1500', true],
  ['1.5e3', '1500', true],
  ['3 \\cdot 10^{-2}', '0.03', true],
  // symbolic
  ['2x+1', '1+2x', true],
  ['(x+1)^2', 'x^2+2x+1', true],
  ['(x+1)^2', 'x^2+1', false],
  ['\\frac{x^2-1}{x-1}', 'x+1', true],
  ['2ab', 'ba \\cdot 2', true],
  ['\\log_2 8', '3', true],
  ['x_{1} + x_2', 'x_2 + x_1', true],
  ['x_1', 'x_2', false],
  ['e^{i\\pi}', '-1', true],
  ['2i', '\\sqrt{-4}', true],
  ['6\\sqrt{2} \\text{ units}', '\\sqrt{72}', true],
  ['3.14', '\\pi', false],
  ['10^{10}', '10000000000', true],
  ['y = 2x + 3', '2x+3', true],
  ['x^2 + y^2 = 1', 'y^2 + x^2 = 1', true],
  ['\\frac{a}{b}', '\\frac{b}{a}', false],
  // tuples, intervals, sets, lists
  ['(1, 2)', '(1,2)', true],
  ['(1, 2)', '(2, 1)', false],
  ['(\\frac12, 3)', '(0.5, 3)', true],
  ['[1, 2)', '[1, 2]', false],
  ['(-\\infty, 3]', '(-\\infty,3]', true],
  ['(-\\infty, 0) \\cup (1, \\infty)', '(-\\infty,0)\\cup(1,\\infty)', true],
  ['\\{1, 2\\}', '\\{2, 1\\}', true],
  ['-2, 3', '3, -2', true],
  ['-2, 3', '3, 2', false],
  ['(1,2,3)', '(1,2)', false],
  // cross-kind and text
  ['5', '(5, 5)', false],
  ['\\text{yes}', 'Yes', true],
  ['yes', 'no', false],
];

describe('extraction', () => {
  // Titles are built by hand: it.each would read "$1…" in an answer as a placeholder.
  for (const [text, format, expected] of EXTRACTION) {
    it(`${JSON.stringify(text)} (${format}) → ${JSON.stringify(expected)}`, () => {
      expect(extractAnswer(text, format)).toBe(expected);
    });
  }

  it('brace matching handles nesting and escaped set braces', () => {
    expect(extractBoxed('\\boxed{\\frac{\\sqrt{3}}{2}} and more')).toBe('\\frac{\\sqrt{3}}{2}');
    expect(extractBoxed('no box here')).toBeNull();
    expect(extractBoxed('\\boxed{}')).toBeNull();
  });

  it('choice extraction ignores lower-case prose letters', () => {
    expect(extractChoice('I think a good choice is hard')).toBeNull();
  });

  it('chooses the chain from the dataset name', () => {
    expect(formatForDataset('openai/gsm8k')).toBe('gsm8k');
    expect(formatForDataset('MATH-500')).toBe('math');
    expect(formatForDataset('AIME-2024')).toBe('math');
    expect(formatForDataset('cais/mmlu')).toBe('multiple-choice');
    expect(formatForDataset('arithmetic')).toBe('auto');
  });
});

describe('equivalence', () => {
  for (const [a, b, eq] of EQUIV) {
    it(`${JSON.stringify(a)} ≡ ${JSON.stringify(b)} is ${eq}`, () => {
      expect(answersEquivalent(a, b)).toBe(eq);
      expect(answersEquivalent(b, a)).toBe(eq); // symmetric
    });
  }

  it('multiple-choice letters compare by letter', () => {
    const mc = { format: 'multiple-choice' as const };
    expect(answersEquivalent('(B)', 'B', mc)).toBe(true);
    expect(answersEquivalent('b', 'B.', mc)).toBe(true);
    expect(answersEquivalent('B', 'C', mc)).toBe(false);
  });

  it('marks prose and unknown LaTeX as unparseable text', () => {
    expect(normalizeAnswer('the triangle is isosceles').parseable).toBe(false);
    expect(normalizeAnswer('\\mathcal{F}').parseable).toBe(false);
    expect(normalizeAnswer('x^2').parseable).toBe(true);
    expect(normalizeAnswer('A', 'multiple-choice').parsed).toEqual({ kind: 'choice', letter: 'A' });
    expect(normalizeAnswer('42', 'multiple-choice').parseable).toBe(false);
  });

  it('never lets mathjs see units, assignments or function definitions', () => {
    expect(normalizeAnswer('5 m').parsed.kind).toBe('scalar'); // 5·m with m a variable, not metres
    expect(answersEquivalent('5 m', '5')).toBe(false);
    expect(normalizeAnswer('f(x) = import("fs")').parseable).toBe(false);
    expect(normalizeAnswer('a[1]').parseable).toBe(false);
    expect(normalizeAnswer('blue').parseable).toBe(false); // a word, not b·l·u·e
    expect(normalizeAnswer('0/0').parseable).toBe(false);
  });

  it('stays fast on pathological inputs', () => {
    const t = Date.now();
    normalizeAnswer('5 ' + 'ab '.repeat(5000) + '1');
    normalizeAnswer('5 ' + 'a'.repeat(200) + '1');
    extractAnswer('word 12 '.repeat(20000) + ' \\boxed{' + 'a'.repeat(50000), 'auto');
    expect(Date.now() - t).toBeLessThan(2000);
  });
});

describe('majority vote', () => {
  it('clusters equivalent forms and reports the first member as representative', () => {
    const r = majorityVote(['1/2', '0.5', '\\frac12', '3', null]);
    expect(r.label).toBe('1/2');
    expect(r.clusters).toHaveLength(2);
    expect(r.clusters[0]).toMatchObject({ representative: '1/2', members: [0, 1, 2], count: 3 });
    expect(r.clusters[1]).toMatchObject({ representative: '3', members: [3], count: 1 });
    expect(r.majorityRatio).toBeCloseTo(3 / 5);
    expect(r.clusterOf).toEqual([0, 0, 0, 1, -1]);
  });

  it('gives no label on a tie for the most votes, but reports the tie and the top share', () => {
    // 2–2: no answer is better supported than the other.
    expect(majorityVote(['7', '8', '8', '7'])).toMatchObject({ label: null, labelCluster: -1, tied: true, majorityRatio: 0.5 });
    // 16 different answers from 16 samples: a "majority" of 1/16 = 0.0625 would be an arbitrary pick.
    const spread = majorityVote(Array.from({ length: 16 }, (_, i) => String(i + 1)));
    expect(spread).toMatchObject({ label: null, tied: true, majorityRatio: 1 / 16 });
    expect(spread.clusters).toHaveLength(16);
    // A plurality that is not shared is a label: 2 of 4 beats 1 and 1 (ratio 2/4 = 0.5).
    expect(majorityVote(['3', '5', '3', '9'])).toMatchObject({ label: '3', labelCluster: 0, tied: false, majorityRatio: 0.5 });
    // A tie below the top does not matter: 2 of 5 for '9', then 1–1–1... here 1 and 1 for '4', '6'.
    expect(majorityVote(['4', '9', '6', '9', null])).toMatchObject({ label: '9', tied: false, majorityRatio: 2 / 5 });
  });

  it("with ties: 'first', breaks ties by the cluster whose first member appears earliest (TTRL's Counter.most_common)", () => {
    expect(majorityVote(['7', '8', '8', '7'], { ties: 'first' })).toMatchObject({ label: '7', tied: true, majorityRatio: 0.5 });
    expect(majorityVote(['8', '7', '7', '8'], { ties: 'first' }).label).toBe('8');
    expect(majorityVote(['1', '2', '3'], { ties: 'first' })).toMatchObject({ label: '1', tied: true, majorityRatio: 1 / 3 });
  });

  it('counts no-answer samples in n and never lets them win', () => {
    const r = majorityVote([null, null, null, '5', '', null]);
    expect(r.label).toBe('5');
    expect(r.majorityRatio).toBeCloseTo(1 / 6);
    expect(r.n).toBe(6);
  });

  it('gives no label when no sample has an answer', () => {
    const r = majorityVote([null, null]);
    expect(r).toMatchObject({ label: null, labelCluster: -1, majorityRatio: 0, clusters: [], tied: false });
    expect(majorityVote([]).label).toBeNull();
  });

  it('excludes unparseable answers from the vote but keeps them in n', () => {
    const r = majorityVote(['blue', 'blue', 'blue', '4']);
    expect(r.label).toBe('4');
    expect(r.majorityRatio).toBeCloseTo(1 / 4);
    expect(r.clusterOf).toEqual([-1, -1, -1, 0]);
  });

  it('clusters thousands separators, units and symbolic forms', () => {
    const r = majorityVote(['1,200', '1200 dollars', '$1200', '1 200', '1201']);
    expect(r.clusters.map((c) => c.count)).toEqual([4, 1]);
    const s = majorityVote(['(x+1)^2', 'x^2+1', 'x^2+2x+1', '1+x^2'], { ties: 'first' });
    expect(s.label).toBe('(x+1)^2'); // 2–2 tie: under 'first' the earlier cluster wins
    expect(s.clusters.map((c) => c.members)).toEqual([
      [0, 2],
      [1, 3],
    ]);
  });

  it('votes on letters in the multiple-choice format', () => {
    const texts = ['The answer is (B).', 'Answer: B', 'I pick C.', 'So (B) it is', 'no idea'];
    const answers = texts.map((t) => extractAnswer(t, 'multiple-choice'));
    const r = majorityVote(answers, { format: 'multiple-choice' });
    expect(r.label).toBe('B');
    expect(r.majorityRatio).toBeCloseTo(3 / 5);
  });

  it('end to end: extracted GSM8K answers in mixed formats', () => {
    const outs = ['#### 18', 'The answer is $18.', 'so she makes 18 dollars', '#### 16', 'I cannot tell'];
    const r = majorityVote(outs.map((t) => extractAnswer(t, 'gsm8k')));
    expect(r.label).toBe('18');
    expect(r.clusters[0].count).toBe(3);
    expect(r.majorityRatio).toBeCloseTo(3 / 5);
  });
});
