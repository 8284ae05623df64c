// The built-in code tasks `code-functions` (issue 19): seeded small function tasks with hidden
// reference solutions and hidden tests, in Python or JavaScript, for measuring what self-play
// on code does (hidden-test pass@1); a run's rewards never read them (code-tasks.ts: they are
// the items' evaluation-only answers). Each family fixes a function from a few drawn constants
// (which character to count, which divisors, ...) so tasks differ beyond their names; its tests
// are inputs drawn per task with the outputs the family's own TypeScript implementation gives.
// Deterministic for (seed, language, split, count); each list is a prefix of a longer one, and a
// task's split is a hash of its description alone (as the arithmetic generator's).
import type { SandboxLanguage } from '../../sandbox/protocol.ts';
import { fnv1a32, mulberry32Uniform } from '../runtime/rng.ts';
import { type HiddenCodeAnswer, codeTaskPrompt } from './code-tasks.ts';
import type { DatasetItem } from './datasets.ts';

export const CODE_DATASET_NAME = 'code-functions';
/** The built-in code datasets a run may name, and their language. */
export const CODE_DATASETS: Readonly<Record<string, SandboxLanguage>> = { [CODE_DATASET_NAME]: 'python', [`${CODE_DATASET_NAME}-js`]: 'javascript' };
/** Sizes of a built-in code dataset as a run stores it (the eval split has about 100 distinct tasks). */
export const CODE_TRAIN = 256;
export const CODE_EVAL = 64;

/** The language of a built-in code dataset's name, or null for any other name. */
export function codeDatasetLanguage(name: string): SandboxLanguage | null {
  return Object.hasOwn(CODE_DATASETS, name) ? CODE_DATASETS[name] : null;
}
export type CodeSplit = 'train' | 'eval';
/** The share of all tasks in the eval split. */
export const CODE_EVAL_SHARE_PERCENT = 20;
/** Hidden tests per task. */
export const CODE_HIDDEN_TESTS = 5;

export type CodeValue = number | string | boolean | number[];
type Value = CodeValue;

export interface CodeFamily {
  id: string;
  /** The drawn constants' part of a task. */
  draw(int: (lo: number, hi: number) => number): Record<string, number | string>;
  name: { python: string; javascript: string };
  params: string[];
  description(c: Record<string, number | string>): string;
  /** One input per parameter. */
  input(int: (lo: number, hi: number) => number, c: Record<string, number | string>): Value[];
  compute(c: Record<string, number | string>, args: Value[]): Value;
  python(c: Record<string, number | string>, name: string): string;
  javascript(c: Record<string, number | string>, name: string): string;
}

const LETTERS = 'abcdefghij';
const randomWord = (int: (lo: number, hi: number) => number) => Array.from({ length: int(0, 9) }, () => LETTERS[int(0, LETTERS.length - 1)]).join('');
const randomList = (int: (lo: number, hi: number) => number, lo = -20, hi = 20) => Array.from({ length: int(0, 6) }, () => int(lo, hi));
const n = (c: Record<string, number | string>, k: string) => c[k] as number;
const s = (c: Record<string, number | string>, k: string) => c[k] as string;

export const CODE_FAMILIES: CodeFamily[] = [
  {
    id: 'affine',
    draw: (int) => ({ a: int(2, 9), b: int(-9, 9) }),
    name: { python: 'affine', javascript: 'affine' },
    params: ['x'],
    description: (c) => `Return ${n(c, 'a')} times the integer x, plus ${n(c, 'b')}.`,
    input: (int) => [int(-50, 50)],
    compute: (c, [x]) => n(c, 'a') * (x as number) + n(c, 'b'),
    python: (c, f) => `def ${f}(x):\n    return ${n(c, 'a')} * x + ${n(c, 'b')}\n`,
    javascript: (c, f) => `function ${f}(x) {\n  return ${n(c, 'a')} * x + ${n(c, 'b')};\n}\n`,
  },
  {
    id: 'count-char',
    draw: (int) => ({ ch: LETTERS[int(0, 4)] }),
    name: { python: 'count_char', javascript: 'countChar' },
    params: ['s'],
    description: (c) => `Return how many times the letter "${s(c, 'ch')}" occurs in the string s.`,
    input: (int) => [randomWord(int)],
    compute: (c, [text]) => [...(text as string)].filter((x) => x === s(c, 'ch')).length,
    python: (c, f) => `def ${f}(s):\n    return s.count(${JSON.stringify(s(c, 'ch'))})\n`,
    javascript: (c, f) => `function ${f}(s) {\n  return s.split(${JSON.stringify(s(c, 'ch'))}).length - 1;\n}\n`,
  },
  {
    id: 'clamp',
    draw: (int) => {
      const lo = int(-10, 5);
      return { lo, hi: lo + int(1, 15) };
    },
    name: { python: 'clamp', javascript: 'clamp' },
    params: ['x'],
    description: (c) => `Return the integer x limited to the range from ${n(c, 'lo')} to ${n(c, 'hi')} inclusive: below it give ${n(c, 'lo')}, above it ${n(c, 'hi')}.`,
    input: (int) => [int(-30, 30)],
    compute: (c, [x]) => Math.min(n(c, 'hi'), Math.max(n(c, 'lo'), x as number)),
    python: (c, f) => `def ${f}(x):\n    return min(${n(c, 'hi')}, max(${n(c, 'lo')}, x))\n`,
    javascript: (c, f) => `function ${f}(x) {\n  return Math.min(${n(c, 'hi')}, Math.max(${n(c, 'lo')}, x));\n}\n`,
  },
  {
    id: 'sum-multiples',
    draw: (int) => {
      const a = int(2, 7);
      let b = int(2, 9);
      if (b === a) b = a + 1;
      return { a, b };
    },
    name: { python: 'sum_multiples', javascript: 'sumMultiples' },
    params: ['n'],
    description: (c) => `Return the sum of the non-negative integers below n that are divisible by ${n(c, 'a')} or by ${n(c, 'b')}.`,
    input: (int) => [int(0, 60)],
    compute: (c, [limit]) => {
      let total = 0;
      for (let i = 0; i < (limit as number); i++) if (i % n(c, 'a') === 0 || i % n(c, 'b') === 0) total += i;
      return total;
    },
    python: (c, f) => `def ${f}(n):\n    return sum(i for i in range(n) if i % ${n(c, 'a')} == 0 or i % ${n(c, 'b')} == 0)\n`,
    javascript: (c, f) => `function ${f}(n) {\n  let total = 0;\n  for (let i = 0; i < n; i++) if (i % ${n(c, 'a')} === 0 || i % ${n(c, 'b')} === 0) total += i;\n  return total;\n}\n`,
  },
  {
    id: 'count-above',
    draw: (int) => ({ t: int(-5, 10) }),
    name: { python: 'count_above', javascript: 'countAbove' },
    params: ['xs'],
    description: (c) => `Return how many numbers in the list of integers xs are greater than ${n(c, 't')}.`,
    input: (int) => [randomList(int)],
    compute: (c, [xs]) => (xs as number[]).filter((x) => x > n(c, 't')).length,
    python: (c, f) => `def ${f}(xs):\n    return sum(1 for x in xs if x > ${n(c, 't')})\n`,
    javascript: (c, f) => `function ${f}(xs) {\n  return xs.filter((x) => x > ${n(c, 't')}).length;\n}\n`,
  },
  {
    id: 'is-multiple',
    draw: (int) => ({ k: int(2, 12) }),
    name: { python: 'is_multiple', javascript: 'isMultiple' },
    params: ['n'],
    description: (c) => `Return True if the integer n is divisible by ${n(c, 'k')}, otherwise False.`,
    input: (int) => [int(-60, 60)],
    compute: (c, [x]) => (x as number) % n(c, 'k') === 0,
    python: (c, f) => `def ${f}(n):\n    return n % ${n(c, 'k')} == 0\n`,
    javascript: (c, f) => `function ${f}(n) {\n  return n % ${n(c, 'k')} === 0;\n}\n`,
  },
  {
    id: 'scale-list',
    draw: (int) => ({ k: int(2, 5), d: int(-3, 3) }),
    name: { python: 'scale_list', javascript: 'scaleList' },
    params: ['xs'],
    description: (c) => `Return a new list with every integer x of the list xs replaced by ${n(c, 'k')} * x + ${n(c, 'd')}, in the same order.`,
    input: (int) => [randomList(int)],
    compute: (c, [xs]) => (xs as number[]).map((x) => n(c, 'k') * x + n(c, 'd')),
    python: (c, f) => `def ${f}(xs):\n    return [${n(c, 'k')} * x + ${n(c, 'd')} for x in xs]\n`,
    javascript: (c, f) => `function ${f}(xs) {\n  return xs.map((x) => ${n(c, 'k')} * x + ${n(c, 'd')});\n}\n`,
  },
  {
    id: 'repeat-word',
    draw: (int) => ({ sep: ['-', '+', ',', '.'][int(0, 3)] }),
    name: { python: 'repeat_word', javascript: 'repeatWord' },
    params: ['s', 'k'],
    description: (c) => `Return the string s repeated k times (k is a non-negative integer), the copies joined by "${s(c, 'sep')}".`,
    input: (int) => [randomWord(int), int(0, 4)],
    compute: (c, [word, k]) => Array.from({ length: k as number }, () => word as string).join(s(c, 'sep')),
    python: (c, f) => `def ${f}(s, k):\n    return ${JSON.stringify(s(c, 'sep'))}.join([s] * k)\n`,
    javascript: (c, f) => `function ${f}(s, k) {\n  return Array(k).fill(s).join(${JSON.stringify(s(c, 'sep'))});\n}\n`,
  },
];

/** A value as a literal both languages read (JSON, but Python's booleans are capitalised). */
function literal(v: Value, language: SandboxLanguage): string {
  if (typeof v === 'boolean') return language === 'python' ? (v ? 'True' : 'False') : String(v);
  return Array.isArray(v) ? `[${v.join(', ')}]` : JSON.stringify(v);
}

/** One test of a call's expected value, as the hidden tests write it (and a model is asked to). */
export function assertLine(language: SandboxLanguage, name: string, args: Value[], expected: Value): string {
  const call = `${name}(${args.map((a) => literal(a, language)).join(', ')})`;
  if (language === 'python') return `assert ${call} == ${literal(expected, 'python')}`;
  return Array.isArray(expected)
    ? `assert(JSON.stringify(${call}) === ${JSON.stringify(JSON.stringify(expected))});`
    : `assert(${call} === ${literal(expected, 'javascript')});`;
}

export interface CodeTaskOptions {
  count: number;
  seed?: number;
  language?: SandboxLanguage;
  split?: CodeSplit;
}

export interface GeneratedCodeTask {
  prompt: string;
  family: string;
  description: string;
  signature: string;
  /** The family's drawn constants (what the description and the reference are made from). */
  constants: Record<string, number | string>;
  hidden: HiddenCodeAnswer;
  split: CodeSplit;
}

export function codeSplitOf(description: string): CodeSplit {
  return fnv1a32(`code-functions/${description}`) % 100 < CODE_EVAL_SHARE_PERCENT ? 'eval' : 'train';
}

/** `count` distinct tasks of one split (a RangeError when the families have too few). */
export function generateCodeTasks(options: CodeTaskOptions): GeneratedCodeTask[] {
  const { count, seed = 0, language = 'python', split = 'train' } = options;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  const rand = mulberry32Uniform(fnv1a32(`${seed}/code/${split}`));
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const seen = new Set<string>();
  const out: GeneratedCodeTask[] = [];
  const maxAttempts = 200 * count + 10_000;
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt >= maxAttempts) throw new RangeError(`the code families have only about ${out.length} distinct ${split} tasks; ask for fewer`);
    const family = CODE_FAMILIES[int(0, CODE_FAMILIES.length - 1)];
    const constants = family.draw(int);
    const description = family.description(constants);
    const inputs = Array.from({ length: CODE_HIDDEN_TESTS }, () => family.input(int, constants));
    if (seen.has(description) || codeSplitOf(description) !== split) continue;
    seen.add(description);
    const name = family.name[language];
    const signature = language === 'python' ? `def ${name}(${family.params.join(', ')}):` : `function ${name}(${family.params.join(', ')})`;
    const tests = inputs.map((args) => assertLine(language, name, args, family.compute(constants, args))).join('\n');
    const reference = language === 'python' ? family.python(constants, name) : family.javascript(constants, name);
    out.push({
      prompt: codeTaskPrompt(description, signature, language),
      family: family.id,
      description,
      signature,
      constants,
      hidden: { kind: 'code', language, entryPoint: name, setup: '', tests, reference },
      split,
    });
  }
  return out;
}

/** The same tasks as dataset items: the hidden tests and reference are the evaluation-only answer. */
export function codeTaskItems(options: CodeTaskOptions): DatasetItem[] {
  return generateCodeTasks(options).map((t) => ({
    prompt: t.prompt,
    answer: JSON.stringify(t.hidden),
    metadata: {
      generator: CODE_DATASET_NAME,
      family: t.family,
      language: t.hidden.language,
      entry_point: t.hidden.entryPoint,
      signature: t.signature,
      split: t.split,
      seed: options.seed ?? 0,
    },
  }));
}
