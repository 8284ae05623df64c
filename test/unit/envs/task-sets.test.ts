import { describe, expect, it } from 'vitest';
import { DIFFICULTIES, ENVIRONMENTS, environment, taskSet, taskSplitOf } from '../../../main/engine/envs/index.ts';

describe('task sets', () => {
  for (const def of ENVIRONMENTS) {
    it(`${def.id}: the same options give the same tasks, a longer set extends a shorter one, splits never share a task`, () => {
      for (const difficulty of DIFFICULTIES) {
        const a = taskSet({ env: def.id, difficulty, count: 40, seed: 1, split: 'train' });
        expect(taskSet({ env: def.id, difficulty, count: 40, seed: 1, split: 'train' })).toEqual(a);
        expect(taskSet({ env: def.id, difficulty, count: 60, seed: 1, split: 'train' }).slice(0, 40)).toEqual(a);
        expect(taskSet({ env: def.id, difficulty, count: 40, seed: 2, split: 'train' })).not.toEqual(a);
        const keys = a.map((t) => def.taskKey(t));
        expect(new Set(keys).size).toBe(40);
        const test = taskSet({ env: def.id, difficulty, count: 40, seed: 1, split: 'test' });
        for (const t of test) {
          expect(taskSplitOf(def, t)).toBe('test');
          expect(keys).not.toContain(def.taskKey(t));
        }
        // The first observation is a function of the task alone.
        expect(def.create().reset(a[3])).toEqual(def.create().reset(a[3]));
      }
    });
  }

  it('names the environments there are when one is unknown', () => {
    expect(() => environment('sokoban')).toThrow('unknown environment "sokoban" (environments: household, shop)');
  });
});
