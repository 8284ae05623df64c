// The built-in environments, by id, and seeded task sets over them.
import { fnv1a32, mulberry32 } from '../runtime/rng.ts';
import { HouseholdEnv } from './household/world.ts';
import { householdTask, householdTaskKey } from './household/tasks.ts';
import { ShopEnv } from './shop/site.ts';
import { shopGoal, shopTaskKey } from './shop/tasks.ts';
import type { Difficulty, EnvironmentDefinition, TaskRef } from './types.ts';

export * from './types.ts';

export const ENVIRONMENTS: readonly EnvironmentDefinition[] = [
  {
    id: 'household',
    label: 'Household (ALFWorld-like)',
    description: 'A room of receptacles and objects; put an object, cleaned, heated or cooled where asked.',
    create: () => new HouseholdEnv(),
    taskKey: (t) => householdTaskKey(householdTask(t.difficulty, t.seed)),
  },
  {
    id: 'shop',
    label: 'Shop (WebShop-like)',
    description: 'Search a catalogue, open products, pick options and buy what the instruction asks for, within its price.',
    create: () => new ShopEnv(),
    taskKey: (t) => shopTaskKey(shopGoal(t.difficulty, t.seed)),
  },
];

export function environment(id: string): EnvironmentDefinition {
  const env = ENVIRONMENTS.find((e) => e.id === id);
  if (!env) throw new Error(`unknown environment "${id}" (environments: ${ENVIRONMENTS.map((e) => e.id).join(', ')})`);
  return env;
}

export type TaskSplit = 'train' | 'test';

/** The share of all tasks held out for testing; a task's split is a hash of its content. */
export const TEST_SHARE_PERCENT = 20;

export function taskSplitOf(env: EnvironmentDefinition, task: TaskRef, key = env.taskKey(task)): TaskSplit {
  return fnv1a32(`${env.id}/${task.difficulty}/${key}`) % 100 < TEST_SHARE_PERCENT ? 'test' : 'train';
}

export interface TaskSetOptions {
  env: string;
  difficulty: Difficulty;
  count: number;
  seed: number;
  split: TaskSplit;
}

/**
 * `count` distinct tasks of one split, the same for the same options on every machine, each list a
 * prefix of any longer one. Held-out and training tasks never share content, whatever the seeds:
 * a task's split is decided by a hash of what it is (layout and goal), as the arithmetic dataset's.
 */
export function taskSet({ env: id, difficulty, count, seed, split }: TaskSetOptions): TaskRef[] {
  const env = environment(id);
  const next = mulberry32(fnv1a32(`${id}/${difficulty}/${seed}`));
  const tasks: TaskRef[] = [];
  const seen = new Set<string>();
  // Every environment has far more distinct tasks than a set asks for; the bound only turns a
  // mistake (a count beyond what exists) into an error instead of a hang.
  for (let tries = 0; tasks.length < count; tries++) {
    if (tries > 1000 + count * 200) throw new Error(`the ${id} environment has fewer than ${count} distinct ${difficulty} ${split} tasks`);
    const task: TaskRef = { env: id, difficulty, seed: next() };
    const key = env.taskKey(task);
    if (seen.has(key) || taskSplitOf(env, task, key) !== split) continue;
    seen.add(key);
    tasks.push(task);
  }
  return tasks;
}
