// The built-in dataset `arithmetic`: seeded integer arithmetic problems at four difficulty levels,
// for demos and tests. Deterministic for (seed, difficulty, split, count), and each list is a
// prefix of any longer one with the same settings.
// Train/eval disjointness is by construction: a problem's split is a hash of its expression
// alone, so no seed, count or difficulty can ever put the same problem in both splits.
import type { DatasetItem } from './datasets.ts';
import { fnv1a32, mulberry32Uniform } from '../runtime/rng.ts';

export const ARITHMETIC_DATASET_NAME = 'arithmetic';

export type ArithmeticDifficulty = 1 | 2 | 3 | 4;
export type ArithmeticSplit = 'train' | 'eval';
type Op = '+' | '-' | '*';

/** What each level draws from (tests check generated problems against this table). */
export const ARITHMETIC_LEVELS: Record<ArithmeticDifficulty, { description: string; operands: [number, number]; ops: Op[]; min: number; max: number; parentheses: boolean }> = {
  1: { description: 'two operands 0-99, + or - (never negative)', operands: [2, 2], ops: ['+', '-'], min: 0, max: 99, parentheses: false },
  2: { description: 'two operands 10-999 for + and -, 2-99 for *', operands: [2, 2], ops: ['+', '-', '*'], min: 2, max: 999, parentheses: false },
  3: { description: 'three operands 2-30, + - * with precedence', operands: [3, 3], ops: ['+', '-', '*'], min: 2, max: 30, parentheses: false },
  4: { description: 'three or four operands 2-30 with parentheses', operands: [3, 4], ops: ['+', '-', '*'], min: 2, max: 30, parentheses: true },
};

/** The share of all problems that belong to the eval split (fixed, so the split never moves). */
export const EVAL_SHARE_PERCENT = 20;

export interface ArithmeticProblem {
  prompt: string;
  /** The exact integer result, as text. */
  answer: string;
  /** The bare expression, e.g. "3+4*5". */
  expression: string;
  difficulty: ArithmeticDifficulty;
  split: ArithmeticSplit;
}

export interface ArithmeticOptions {
  difficulty: ArithmeticDifficulty;
  count: number;
  seed?: number;
  split?: ArithmeticSplit;
  /** Turns an expression into a prompt; the default suits a small completion model. */
  template?: (expression: string) => string;
}

export const defaultArithmeticTemplate = (expression: string): string => `Compute ${expression}. Answer: `;

type Node = number | { op: Op; left: Node; right: Node };

/** Which split a problem belongs to, from its expression alone. */
export function arithmeticSplitOf(expression: string): ArithmeticSplit {
  return fnv1a32(`arithmetic/${expression}`) % 100 < EVAL_SHARE_PERCENT ? 'eval' : 'train';
}

function evaluate(n: Node): number {
  if (typeof n === 'number') return n;
  const a = evaluate(n.left);
  const b = evaluate(n.right);
  return n.op === '+' ? a + b : n.op === '-' ? a - b : a * b;
}

const PRECEDENCE: Record<Op, number> = { '+': 1, '-': 1, '*': 2 };

// Parenthesises only where needed, so a level-4 tree that happens to need none reads naturally
// and level 3 (no parentheses at all) relies on precedence.
function render(n: Node, parentPrec = 0, rightOfMinusOrTimes = false): string {
  if (typeof n === 'number') return String(n);
  const p = PRECEDENCE[n.op];
  const s = `${render(n.left, p)}${n.op}${render(n.right, p, n.op !== '+')}`;
  const needs = p < parentPrec || (p === parentPrec && rightOfMinusOrTimes);
  return needs ? `(${s})` : s;
}

function draw(level: ArithmeticDifficulty, rand: () => number): Node {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pickOp = (ops: Op[]) => ops[Math.floor(rand() * ops.length)];
  switch (level) {
    case 1: {
      const op = pickOp(['+', '-']);
      const a = int(0, 99);
      const b = int(0, 99);
      // Keep answers non-negative at the easiest level.
      return op === '-' ? { op, left: Math.max(a, b), right: Math.min(a, b) } : { op, left: a, right: b };
    }
    case 2: {
      const op = pickOp(['+', '-', '*']);
      return op === '*' ? { op, left: int(2, 99), right: int(2, 99) } : { op, left: int(10, 999), right: int(10, 999) };
    }
    case 3: {
      const [o1, o2] = [pickOp(['+', '-', '*']), pickOp(['+', '-', '*'])];
      const [a, b, c] = [int(2, 30), int(2, 30), int(2, 30)];
      // Left-to-right unless the second operator binds tighter: exactly what precedence says.
      return PRECEDENCE[o2] > PRECEDENCE[o1]
        ? { op: o1, left: a, right: { op: o2, left: b, right: c } }
        : { op: o2, left: { op: o1, left: a, right: b }, right: c };
    }
    case 4: {
      const v = () => int(2, 30);
      const shape = int(0, 2);
      // Shapes chosen so every problem needs its parentheses: (a±b)*c, a*(b±c), a-(b±c),
      // (a±b)*(c±d), (a±b)-(c±d). A '+' between two sums would print without any.
      const sum = (): Node => ({ op: pickOp(['+', '-']), left: v(), right: v() });
      if (shape === 0) return { op: '*', left: sum(), right: v() };
      if (shape === 1) return { op: pickOp(['*', '-']), left: v(), right: sum() };
      return { op: pickOp(['*', '-']), left: sum(), right: sum() };
    }
  }
}

/**
 * `count` distinct problems of one split. Throws a RangeError when the level has too few
 * distinct problems in that split for `count`.
 */
export function generateArithmetic(options: ArithmeticOptions): ArithmeticProblem[] {
  const { difficulty, count, seed = 0, split = 'train', template = defaultArithmeticTemplate } = options;
  if (!(difficulty in ARITHMETIC_LEVELS)) throw new RangeError(`difficulty must be 1-4, got ${difficulty}`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  // Different streams per split and level, so eval does not just skip over train's draws.
  // mulberry32 and FNV-1a are fully specified, so lists are identical on every platform.
  const rand = mulberry32Uniform(fnv1a32(`${seed}/${difficulty}/${split}`));
  const seen = new Set<string>();
  const out: ArithmeticProblem[] = [];
  const maxAttempts = 200 * count + 10_000;
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt >= maxAttempts) {
      throw new RangeError(`difficulty ${difficulty} has only about ${out.length} distinct ${split} problems; ask for fewer or a harder level`);
    }
    const tree = draw(difficulty, rand);
    const expression = render(tree);
    if (seen.has(expression) || arithmeticSplitOf(expression) !== split) continue;
    seen.add(expression);
    out.push({ prompt: template(expression), answer: String(evaluate(tree)), expression, difficulty, split });
  }
  return out;
}

/** The same problems as dataset items, the shape an imported file produces. */
export function arithmeticItems(options: ArithmeticOptions): DatasetItem[] {
  return generateArithmetic(options).map((p) => ({
    prompt: p.prompt,
    answer: p.answer,
    metadata: { generator: ARITHMETIC_DATASET_NAME, expression: p.expression, difficulty: p.difficulty, split: p.split, seed: options.seed ?? 0 },
  }));
}
