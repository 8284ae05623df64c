// The agent demo (issue 18): the built-in tiny-agent on the household's held-out easy tasks,
// as warm-started, after outcome-only GRPO, and after OPID, with the same budget (steps, tasks a
// step, episodes a task) and three seeds. Success is one greedy episode per held-out task.
//
// The analyzer: tiny-agent cannot analyse an episode (its 1,024 positions hold no trajectory, and
// it never learned JSON), and OPID's analyzer is a larger model. The bench stands in a scripted
// one that knows the environment, as a larger model that understood the task would: replaying
// the episode, each turn whose action differs from what the scripted expert would do there gets a
// step skill naming the expert's action (the first five such turns), and the episode skill is
// the expert's plan from the start (after a success, the episode's own actions). It is a hindsight
// teacher with privileged knowledge, so this measures what OPID's dense signal does with good
// skills, not how good skills are found. tiny-agent was warm-started with such skills in a share
// of its turns, so it reads them; Δ is weighted 0.1 (OPID's 1e-3 is sized for 3B models' many
// tokens and would be lost in the episode advantage here).
//
//   npm run bench -- agent-demo [--seeds 0,1,2] [--steps N]
//
// Progress goes to stderr; stdout gets one JSON line per run, then a table.
//
// Measured once (`npm run bench -- agent-demo`, the committed tiny-agent, 2 cores shared with other
// work, 41 min in all: outcome-only 6.4 min for its three runs, OPID 34.4 min): held-out success
// 0.0% for the base, 0.0% after outcome-only GRPO and 0.0% after OPID, on every seed (every
// held-out episode ran out its 8 turns; no training episode succeeded either). OPID does not beat
// outcome-only here, and neither learns: the warm start never reaches a goal (it garbles the
// names it must copy, see make-tiny-agent.ts), so every group's rewards are 0, GRPO's advantages
// are 0 and outcome-only takes no update at all; OPID's Δ does give every reply a signal (a skill
// taught 100% of the turns) and it trains on it, but 5 steps of 16 episodes at lr 1e-4 do not turn
// that into a success. The dense signal's case, learning where outcomes are all failures, is the
// one this shows mechanically (updates with Δ, none without), not yet as success; a warm start
// that succeeds sometimes, and a longer budget, are needed for the comparison to say more. OPID's
// runs cost 5× outcome-only's: they train every sequence of the step (outcome-only skips the
// all-zero ones), each padded to the model's 1,024 positions.
import { type AgentLoopInput, runAgentLoop } from '../main/engine/agent/loop.ts';
import type { Episode } from '../main/engine/agent/episode.ts';
import { environment, taskSet } from '../main/engine/envs/index.ts';
import { resolveModelPath } from '../main/engine/model-paths.ts';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { type RunConfigInput, parseRunConfig } from '../main/engine/rl/config.ts';
import { AGENT_METRICS } from '../main/engine/rl/methods/agent.ts';
import { resolveDevice } from '../main/engine/runtime/devices.ts';
import { TINY_AGENT_RUN_SETTINGS } from '../resources/models/make-tiny-agent.ts';
import { round } from './common.ts';

export interface AgentDemoOptions {
  model: string;
  seeds: number[];
  steps: number;
  tasksPerStep: number;
  episodesPerTask: number;
  heldOut: number;
  trainTasks: number;
  deltaWeight: number;
}

export const AGENT_DEMO_DEFAULTS: AgentDemoOptions = {
  model: 'tiny-agent',
  seeds: [0, 1, 2],
  steps: 5,
  tasksPerStep: 4,
  episodesPerTask: 4,
  heldOut: 32,
  trainTasks: 64,
  deltaWeight: 0.1,
};

/** The scripted hindsight analyzer's JSON for an episode (see the header). */
export function scriptedAnalysis(e: Episode): string {
  const def = environment(e.task.env);
  const plan = (() => {
    const env = def.create();
    env.reset(e.task);
    const actions: string[] = [];
    for (let a = env.expertAction(); a !== undefined && actions.length < 30; a = env.expertAction()) {
      actions.push(a);
      env.step(a);
    }
    return actions;
  })();
  const replay = def.create();
  replay.reset(e.task);
  const stepSkills: { step: number; skill: string }[] = [];
  e.turns.forEach((t, i) => {
    const expert = replay.expertAction();
    if (expert !== undefined && expert !== t.action && stepSkills.length < 5) stepSkills.push({ step: i + 1, skill: expert });
    replay.step(t.action);
  });
  const episodeSkill = (e.success ? e.turns.map((t) => t.action) : plan).join(', then ');
  return JSON.stringify({ episode_skill: episodeSkill, step_skills: stepSkills });
}

export interface AgentDemoRow {
  bench: 'agent-demo';
  method: 'outcome' | 'opid';
  seed: number;
  base_success: number | null;
  after_success: number;
  after_length: number;
  train_success_first: number;
  train_success_last: number;
  teacher_available: number | null;
  wall_s: number;
}

export async function agentDemo(o: AgentDemoOptions, print: (row: AgentDemoRow) => void = () => {}): Promise<AgentDemoRow[]> {
  const dir = resolveModelPath(o.model);
  const m = await loadModelFolder(dir);
  const model = { config: m.config, weights: m.weights, tokenizer: m.tokenizer!, dir };
  const device = await resolveDevice('cpu');
  const tasks = taskSet({ env: 'household', difficulty: 'easy', count: o.trainTasks, seed: 7, split: 'train' });
  const validation = taskSet({ env: 'household', difficulty: 'easy', count: o.heldOut, seed: 7, split: 'test' });
  const rows: AgentDemoRow[] = [];
  for (const seed of o.seeds) {
    for (const method of ['outcome', 'opid'] as const) {
      const started = Date.now();
      // Greedy validation is the same for every run at step 0: measured once, in the first run.
      const measureBase = rows.length === 0;
      const config: RunConfigInput = {
        method: 'agent',
        seed,
        steps: o.steps,
        promptsPerStep: o.tasksPerStep,
        votes: o.episodesPerTask,
        lr: 1e-4,
        klCoef: 0,
        warmupRatio: 0,
        temperature: 1,
        valBeforeTrain: measureBase,
        valEvery: o.steps,
        valTemperature: 0,
        checkpointEvery: 0,
        agentSignal: method,
        agentMaxSteps: 8,
        agentMiniBatch: 16,
        opidEpisodeWeight: o.deltaWeight,
        opidStepWeight: o.deltaWeight,
        ...TINY_AGENT_RUN_SETTINGS,
      };
      const metrics: Record<string, number>[] = [];
      // The scripted analyzer reads the episode it is asked about rather than the prompt.
      const input: AgentLoopInput = { config: parseRunConfig(config), model, device, tasks, validation, analyzer: async (_messages, e) => scriptedAnalysis(e!) };
      await runAgentLoop(
        input,
        {
          onStep: (r) => void metrics.push({ step: r.step, ...r.metrics }),
          onProgress: (p) => process.stderr.write(`\r${method} seed ${seed}: step ${p.step}/${p.totalSteps} ${p.phase}      `),
        },
      );
      const last = metrics.at(-1)!;
      const trainSteps = metrics.filter((x) => x.step > 0);
      const row: AgentDemoRow = {
        bench: 'agent-demo',
        method,
        seed,
        base_success: measureBase ? metrics[0][AGENT_METRICS.valSuccess] : null,
        after_success: last[AGENT_METRICS.valSuccess],
        after_length: round(last[AGENT_METRICS.valLength], 2),
        train_success_first: round(trainSteps[0][AGENT_METRICS.success]),
        train_success_last: round(trainSteps.at(-1)![AGENT_METRICS.success]),
        teacher_available: method === 'opid' ? round(trainSteps.reduce((a, x) => a + x[AGENT_METRICS.teacherAvailable], 0) / trainSteps.length) : null,
        wall_s: round((Date.now() - started) / 1000, 1),
      };
      process.stderr.write('\n');
      rows.push(row);
      print(row);
    }
  }
  return rows;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function agentDemoTable(rows: readonly AgentDemoRow[], o: AgentDemoOptions): string {
  const base = rows.find((r) => r.base_success !== null)?.base_success ?? NaN;
  const lines = [`tiny-agent, household easy, ${o.heldOut} held-out tasks (greedy); ${o.steps} steps × ${o.tasksPerStep} tasks × ${o.episodesPerTask} episodes per run`, `base (warm start): ${pct(base)}`];
  for (const method of ['outcome', 'opid'] as const) {
    const r = rows.filter((x) => x.method === method);
    const after = r.map((x) => x.after_success);
    const mean = after.reduce((a, b) => a + b, 0) / after.length;
    const sd = Math.sqrt(after.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, after.length - 1));
    lines.push(`${method === 'outcome' ? 'outcome-only GRPO' : 'OPID'}: ${pct(mean)} (sd ${pct(sd)}; seeds ${r.map((x) => `${x.seed}: ${pct(x.after_success)}`).join(', ')}; ${round(r.reduce((a, x) => a + x.wall_s, 0) / 60, 1)} min)`);
  }
  return `${lines.join('\n')}\n`;
}
