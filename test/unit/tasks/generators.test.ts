import { describe, expect, it } from 'vitest';
import { evaluate } from 'mathjs';
import {
  ARITHMETIC_DATASET_NAME,
  ARITHMETIC_LEVELS,
  arithmeticItems,
  arithmeticSplitOf,
  generateArithmetic,
  type ArithmeticDifficulty,
} from '../../../main/engine/tasks/generators.ts';

const LEVELS: ArithmeticDifficulty[] = [1, 2, 3, 4];
const numbers = (expr: string) => (expr.match(/\d+/g) ?? []).map(Number);
const operators = (expr: string) => expr.match(/[+\-*]/g) ?? [];

describe('arithmetic generator', () => {
  it('is named arithmetic', () => {
    expect(ARITHMETIC_DATASET_NAME).toBe('arithmetic');
  });

  it('is deterministic for (seed, difficulty, count), and shorter lists are prefixes', () => {
    for (const difficulty of LEVELS) {
      const a = generateArithmetic({ seed: 7, difficulty, count: 50 });
      const b = generateArithmetic({ seed: 7, difficulty, count: 50 });
      expect(a).toEqual(b);
      expect(generateArithmetic({ seed: 7, difficulty, count: 20 })).toEqual(a.slice(0, 20));
      const other = generateArithmetic({ seed: 8, difficulty, count: 50 });
      expect(other.map((p) => p.expression)).not.toEqual(a.map((p) => p.expression));
    }
  });

  it('gives exact answers (checked with an independent evaluator)', () => {
    for (const difficulty of LEVELS) {
      for (const p of generateArithmetic({ seed: 1, difficulty, count: 300 })) {
        const value = evaluate(p.expression) as number;
        expect(Number.isInteger(value)).toBe(true);
        expect(p.answer).toBe(String(value));
        expect(p.answer).toMatch(/^-?\d+$/);
      }
    }
  });

  it('phrases prompts for a small model, and accepts a template', () => {
    const [p] = generateArithmetic({ seed: 3, difficulty: 1, count: 1 });
    expect(p.prompt).toBe(`Compute ${p.expression}. Answer: `);
    const [q] = generateArithmetic({ seed: 3, difficulty: 1, count: 1, template: (e) => `Q: ${e}\nA:` });
    expect(q.prompt).toBe(`Q: ${p.expression}\nA:`);
  });

  it('keeps each level inside its ranges and shapes', () => {
    for (const difficulty of LEVELS) {
      const level = ARITHMETIC_LEVELS[difficulty];
      const problems = generateArithmetic({ seed: 11, difficulty, count: 400 });
      const opsSeen = new Set<string>();
      for (const p of problems) {
        const nums = numbers(p.expression);
        expect(nums.length).toBeGreaterThanOrEqual(level.operands[0]);
        expect(nums.length).toBeLessThanOrEqual(level.operands[1]);
        for (const n of nums) {
          expect(n).toBeGreaterThanOrEqual(level.min);
          expect(n).toBeLessThanOrEqual(level.max);
        }
        for (const op of operators(p.expression)) {
          expect(level.ops).toContain(op);
          opsSeen.add(op);
        }
        expect(p.expression.includes('(')).toBe(level.parentheses);
        expect(p.difficulty).toBe(difficulty);
      }
      // Every operator the level offers actually shows up.
      expect([...opsSeen].sort()).toEqual([...level.ops].sort());
    }
    // Level specifics the table cannot express.
    for (const p of generateArithmetic({ seed: 2, difficulty: 1, count: 300 })) expect(Number(p.answer)).toBeGreaterThanOrEqual(0);
    for (const p of generateArithmetic({ seed: 2, difficulty: 2, count: 300 })) {
      const [a, b] = numbers(p.expression);
      if (p.expression.includes('*')) expect(Math.max(a, b)).toBeLessThanOrEqual(99);
      else expect(Math.min(a, b)).toBeGreaterThanOrEqual(10);
    }
    // Level 3 exercises precedence: some problems put * after + or -.
    const l3 = generateArithmetic({ seed: 2, difficulty: 3, count: 300 });
    expect(l3.some((p) => /^\d+[+-]\d+\*\d+$/.test(p.expression))).toBe(true);
    // Level 4's parentheses matter: evaluating without them gives a different answer somewhere.
    const l4 = generateArithmetic({ seed: 2, difficulty: 4, count: 300 });
    expect(l4.some((p) => String(evaluate(p.expression.replace(/[()]/g, ''))) !== p.answer)).toBe(true);
  });

  it('never repeats a problem within a list', () => {
    for (const difficulty of LEVELS) {
      const exprs = generateArithmetic({ seed: 5, difficulty, count: 500 }).map((p) => p.expression);
      expect(new Set(exprs).size).toBe(exprs.length);
    }
  });

  it('keeps train and eval disjoint, whatever the seeds', () => {
    for (const difficulty of LEVELS) {
      const train = new Set<string>();
      for (const seed of [0, 1, 2]) {
        for (const p of generateArithmetic({ seed, difficulty, count: 300, split: 'train' })) train.add(p.expression);
      }
      for (const seed of [0, 1, 2, 99]) {
        for (const p of generateArithmetic({ seed, difficulty, count: 150, split: 'eval' })) {
          expect(p.split).toBe('eval');
          expect(arithmeticSplitOf(p.expression)).toBe('eval');
          expect(train.has(p.expression)).toBe(false);
        }
      }
    }
  });

  it('refuses counts a level cannot fill, and bad arguments', () => {
    // Level 1 has about 15,000 distinct problems, about a fifth of them in eval.
    expect(() => generateArithmetic({ difficulty: 1, count: 5000, split: 'eval' })).toThrow(RangeError);
    expect(() => generateArithmetic({ difficulty: 5 as ArithmeticDifficulty, count: 1 })).toThrow(/difficulty/);
    expect(() => generateArithmetic({ difficulty: 1, count: -1 })).toThrow(/count/);
    expect(generateArithmetic({ difficulty: 1, count: 0 })).toEqual([]);
  });

  it('produces dataset items with the answer in its own field', () => {
    const items = arithmeticItems({ seed: 4, difficulty: 3, count: 5, split: 'eval' });
    expect(items).toHaveLength(5);
    for (const item of items) {
      expect(item.answer).toMatch(/^-?\d+$/);
      expect(item.metadata).toMatchObject({ generator: 'arithmetic', difficulty: 3, split: 'eval', seed: 4 });
      expect(Object.values(item.metadata)).not.toContain(item.answer);
    }
  });
});
