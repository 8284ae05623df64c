// An agent run's tasks as a dataset: an environment's seeded task set stored like the built-in
// arithmetic generator's problems, so an agent run names its tasks as any run names its data
// (`--dataset household`, `shop-hard`), lists and resumes the same way, and the inspector shows
// each group's goal. Each item's prompt is the task's goal, its metadata the task (environment,
// difficulty, seed) the loop rebuilds the world from; the eval split holds the held-out tasks.
import { type DatasetInfo, type DatasetItem, type ExperimentDb, getDataset, importDataset } from '../db/index.ts';
import { DIFFICULTIES, type Difficulty, ENVIRONMENTS, type TaskRef, environment, taskSet } from '../engine/envs/index.ts';

/** Training and held-out tasks of an environment dataset. */
export const AGENT_TRAIN_TASKS = 256;
export const AGENT_EVAL_TASKS = 32;

/** `household`, `household-medium`, `shop-hard`: an environment and a difficulty (default easy); null for any other name. */
export function parseEnvironmentSpec(spec: string): { env: string; difficulty: Difficulty } | null {
  const m = /^([a-z]+)(?:-([a-z]+))?$/.exec(spec);
  if (!m || !ENVIRONMENTS.some((e) => e.id === m[1])) return null;
  const difficulty = (m[2] ?? 'easy') as Difficulty;
  return DIFFICULTIES.includes(difficulty) ? { env: m[1], difficulty } : null;
}

export const ENVIRONMENT_SPECS_HINT = `${ENVIRONMENTS.map((e) => e.id).join(' or ')}, optionally with -${DIFFICULTIES.join('|-')} (e.g. household-medium)`;

/** The dataset of an environment's tasks for a run seed (created on first use). */
export function ensureEnvironmentDataset(db: ExperimentDb, spec: { env: string; difficulty: Difficulty }, seed: number): DatasetInfo {
  const name = `${spec.env}-${spec.difficulty}-s${seed}`;
  const existing = getDataset(db, name);
  if (existing) return existing;
  const env = environment(spec.env);
  const items = (['train', 'test'] as const).flatMap((split) =>
    taskSet({ env: spec.env, difficulty: spec.difficulty, count: split === 'train' ? AGENT_TRAIN_TASKS : AGENT_EVAL_TASKS, seed, split }).map((task) => ({
      prompt: env.create().reset(task).task,
      split: split === 'train' ? ('train' as const) : ('eval' as const),
      metadata: { env: task.env, difficulty: task.difficulty, seed: task.seed },
    })),
  );
  return importDataset(db, { name, source: `environment:${spec.env}`, fieldMapping: { difficulty: spec.difficulty, seed } }, items);
}

/** The task an item names, or null when it names none (an item of an ordinary dataset). */
export function taskOfItem(item: Pick<DatasetItem, 'metadata'>): TaskRef | null {
  const m = item.metadata;
  if (!m || typeof m.env !== 'string' || typeof m.seed !== 'number' || !DIFFICULTIES.includes(m.difficulty as Difficulty)) return null;
  if (!ENVIRONMENTS.some((e) => e.id === m.env)) return null;
  return { env: m.env, difficulty: m.difficulty as Difficulty, seed: m.seed };
}
