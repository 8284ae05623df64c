// The code demo (issue 19, acceptance 2): the built-in tiny-coder on held-out built-in code tasks
// (`code-functions-js`, the eval split), hidden-test pass@1 of the base, after self-play with
// code-consensus and group-relative advantages (GRPO, no critic), and after self-play with the
// actor–critic (PPO with a learned value head, GAE), with the same budget (steps, tasks a step,
// samples a task) and three seeds. Each run is the app's own run loop (runLoop) with the
// method's own scorer: k functions × the group's pooled tests in the sandbox, CodeT's dual
// agreement as the reward. The hidden tests are read only by the loop's measurement (the
// method's `hidden` check), never by a reward.
//
// The tasks: tiny-coder was taught training-split tasks only (resources/models/make-tiny-coder.ts;
// a description's split is a hash of it, so no eval-split task was ever shown); the demo's come
// from the eval split, its first --held-out measured and the others self-play's, unlabeled.
// pass@1 is the mean over each held-out task's k samples of passing its hidden tests (the unbiased pass@1 estimator
// with n = k), at the validation temperature; CodeT's pick (the first function of the top
// consensus set of the k samples' own functions and tests) is the loop's maj@k beside it.
//
// Consensus accuracy (the reward's accuracy): over the self-play groups the scorer labeled, how
// often the functions of the top consensus set pass their task's hidden tests, beside how often
// a single sample's function does; what decides whether dual agreement can teach anything.
//
//   npm run bench -- code-demo [--seeds 0,1,2] [--steps N] [--configs grpo,gae] [--val-samples K] [--lr LR] [--critic-warmup N]
//
// The budget (the defaults below): 3 seeds × 2 configurations of 48 steps × 4 tasks × 8 samples
// of up to 384 tokens (the PPO + GAE runs' first 8 steps train the critic alone, the policy
// waiting, so its first advantages come from a critic that has seen returns), plus a validation
// of 40 tasks × 16 samples per run and one more per seed for the base: about 12 minutes for the
// whole table on 2 cores. Sampling at temperature 0.7 for the rollouts and the measurement both.
// 16 samples per held-out task because the measurement's own noise is the samples': the
// held-out tasks are the same for every seed and run, a seed changes only which samples are
// drawn, and the standard error of a mean over 40 × k samples is at most √(p(1-p)/(40k)), 3.9
// points at k = 4, 1.9 at k = 16 (the base's seed-to-seed sd fell from 6.3 to 1.0 points).
//
// Progress goes to stderr; stdout gets one JSON line per run, then a table, where each
// configuration's "change from the seed's base" is its after less the same seed's base, mean ±
// sd over the seeds.
//
// Measured (`npm run bench -- code-demo`, the defaults, the committed tiny-coder of the copying
// recipe: make-tiny-coder.ts), 12.4 min wall under the shared bench lock (`time`: 22.3 min user
// + 0.8 min sys CPU), the table (its lines wrapped):
//
//   tiny-coder, 40 held-out code-functions-js tasks (eval split), hidden-test pass@1 = mean over 16
//   samples per task at temperature 0.7 (CodeT: the top consensus set's function among the 16);
//   self-play on 60 other unlabeled eval-split tasks: per run 48 steps × 4 tasks × 8 samples, lr
//   0.00005, KL 0.001, critic lr 0.001, critic warmup 8 steps; mean ± sd over seeds 0, 1, 2
//     base                              pass@1 59.5% ± 1.0%    CodeT 56.7% ± 2.9%    (seeds 0: 59.5%, 1: 58.6%, 2: 60.5%)
//     code-consensus, GRPO (no critic)  pass@1 59.5% ± 4.5%    CodeT 56.7% ± 7.6%    (seeds 0: 63.4%, 1: 60.5%, 2: 54.5%;
//                                       change from the seed's base -0.1% ± 5.2%; consensus right 86.9%,
//                                       samples right 78.1% → 92.7%, runnable 95.9% → 95.8%, labeled 75.2%; 6.1 min)
//     code-consensus, PPO + GAE critic  pass@1 42.3% ± 11.1%   CodeT 40.8% ± 21.3%   (seeds 0: 41.4%, 1: 31.6%, 2: 53.8%;
//                                       change from the seed's base -17.3% ± 10.2%; consensus right 76.5%,
//                                       samples right 78.1% → 64.6%, runnable 95.9% → 87.5%, labeled 73.1%;
//                                       critic explained variance -0.62 / -0.22 / -0.74; 6.2 min)
//
// The settings were chosen before the table from the first one's reading (below): 3× its steps
// and 4× its validation samples, and a critic warmup. lr 1e-4 was the plan; the one short check
// beforehand (seed 0, GRPO, 4 steps, 8 validation samples; outside the lock) took held-out pass@1
// from 60.3% to 41.9% at lr 1e-4 while the self-play samples still ran (runnable 94% → 91%), against
// 60.0% at lr 5e-5 and 60.6% at lr 0 (the same model, the validation's other seed: the
// measurement's noise), so the table kept lr 5e-5. One seed's check: 1e-4 is not shown to fail in
// general, only to be risky enough not to spend the table on it.
//
// What it says. The measurement is now tight enough (the base 58.6-60.5% over seeds) that
// self-play's effect would show at a few points, and there is none without the critic: 59.5%
// after against 59.5% before, the seeds' changes +3.9, +1.9 and -6.0 points. Its spread after
// (sd 4.5) is mostly the training's own, no longer the measurement's (at most 1.9): 48 steps
// move the model a few points, in a direction that differs by seed. The reward is informative and the self-play
// samples seem to improve on their own tasks: the top consensus set's function passed the hidden
// tests in 87% of the labeled groups, and the last step's samples passed 93% against the first
// step's 78% (4 tasks a seed at each end; runnable stays 96%). That gain did not carry to the
// held-out tasks: 60 self-play tasks seen about 3 times each at lr 5e-5 look like reinforcement
// of what the model writes for those tasks rather than a skill that transfers (not measured
// apart: the held-out tasks are of the same families, other constants). With the critic it is
// clearly worse, 42.3% (-17.3 ± 10.2 points, every seed down), and the self-play samples got
// worse too (78% → 65%, runnable 96% → 88%): the value head still does not predict the reward
// after 8 steps of warmup and 40 more (explained variance, the last quarter of steps' mean,
// -0.62 / -0.22 / -0.74), so GAE's advantages (λ = 1: the reward less the value, whitened over
// the whole batch, gae.ts) have in effect no per-task baseline (the likely cause, not measured
// apart), so a task whose samples all score high pushes all of them up and one
// whose samples all fail pushes all down, noise to the policy that the group-relative baseline
// removes exactly within a group. A critic that learns a per-task value (more critic epochs, a
// critic on the prompt's hidden state) is what the actor–critic would need here; not tried.
//
// The first table (the defaults then, `--steps 16 --val-samples 4 --critic-warmup 0` now; same
// model, 4.9 min wall under the shared bench lock, 7.3 min user + 0.6 min sys CPU), as measured:
//
//   tiny-coder, 40 held-out code-functions-js tasks (eval split), hidden-test pass@1 = mean over 4
//   samples per task at temperature 0.7 (CodeT: the top consensus set's function among the 4);
//   self-play on 60 other unlabeled eval-split tasks: per run 16 steps × 4 tasks × 8 samples, lr
//   0.00005, KL 0.001; mean ± sd over seeds 0, 1, 2
//     base                              pass@1 59.0% ± 6.3%    CodeT 47.5% ± 8.7%    (seeds 0: 63.8%, 1: 51.9%, 2: 61.3%)
//     code-consensus, GRPO (no critic)  pass@1 60.4% ± 2.0%    CodeT 50.0% ± 9.0%    (seeds 0: 58.1%, 1: 61.9%, 2: 61.3%;
//                                       consensus right 84.6%, samples right 78.1% → 84.4%, labeled 76.0%; 2.5 min)
//     code-consensus, PPO + GAE critic  pass@1 49.4% ± 12.5%   CodeT 35.8% ± 15.9%   (seeds 0: 55.6%, 1: 57.5%, 2: 35.0%;
//                                       consensus right 80.6%, samples right 78.1% → 82.3%, labeled 75.5%;
//                                       critic explained variance -0.67 / -0.32 / -1.39; 2.4 min)
//
// Its reading then: the reward is informative (the top consensus set's function passed the hidden
// tests 85% (GRPO) and 81% (critic) of the labeled groups, against 78-84% for a single sample),
// but self-play did not improve held-out pass@1 beyond the seeds' spread (the base alone varied
// 51.9-63.8% between seeds, which differ only in the validation's 4 samples a task), and the
// critic, explained variance negative on every seed, made it worse (seed 2: 61.3% → 35.0%). The
// second table answers what it left open (a longer budget, a critic warmed up, a less noisy
// measurement): the same, now beyond the noise. CodeT's pick can score below pass@1: a task where
// no function passes any test (about a third of the tests the model writes hold,
// make-tiny-coder.ts) has no pick, which counts as a miss, and a wrong test can put a wrong
// function on top; at 16 samples it is closer (56.7% against 59.5%).
//
// The earlier table (the tiny-coder that did not copy a task's constants, lr 5e-4): base 4.6%,
// 0% after self-play with and without the critic; the top consensus set was never right and the
// first updates broke the model's syntax.
import { resolveModelPath } from '../main/engine/model-paths.ts';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { type RunConfigInput, parseRunConfig } from '../main/engine/rl/config.ts';
import { type LoopItem, type StepRecord, runLoop } from '../main/engine/rl/loop.ts';
import { CRITIC_METRICS } from '../main/engine/rl/metrics.ts';
import { closeCodeSandbox } from '../main/engine/rl/methods/code-consensus.ts';
import { resolveDevice } from '../main/engine/runtime/devices.ts';
import { type GeneratedCodeTask, generateCodeTasks } from '../main/engine/tasks/code-generators.ts';
import { TINY_CODER_LANGUAGE, TINY_CODER_RUN_SETTINGS } from '../resources/models/make-tiny-coder.ts';
import { round } from './common.ts';

export const CODE_DEMO_CONFIGS = ['grpo', 'gae'] as const;
export type CodeDemoConfig = (typeof CODE_DEMO_CONFIGS)[number];

export interface CodeDemoOptions {
  model: string;
  configs: readonly CodeDemoConfig[];
  seeds: number[];
  steps: number;
  tasksPerStep: number;
  /** Samples per task (each writes a function and tests; all are trained). */
  samples: number;
  /** Held-out eval-split tasks measured. */
  heldOut: number;
  /** Samples per held-out task for pass@1 (and CodeT's pick among them). */
  valSamples: number;
  /** Sampling temperature of the rollouts and of the pass@1 measurement (the policy loss's too). */
  temperature: number;
  lr: number;
  klCoef: number;
  criticLr: number;
  /** GAE: the first this many steps train only the critic (the policy waits), within the same steps. */
  criticWarmup: number;
  timeoutMs: number;
}

export const CODE_DEMO_DEFAULTS: CodeDemoOptions = {
  model: 'tiny-coder',
  configs: CODE_DEMO_CONFIGS,
  seeds: [0, 1, 2],
  steps: 48,
  tasksPerStep: 4,
  samples: 8,
  heldOut: 40,
  valSamples: 16,
  temperature: 0.7,
  lr: 5e-5,
  klCoef: 0.001,
  criticLr: 1e-3,
  criticWarmup: 8,
  timeoutMs: 1000,
};

const asItem = (t: GeneratedCodeTask): LoopItem & { answer: string } => ({ prompt: t.prompt, answer: JSON.stringify(t.hidden) });

/** Distinct eval-split tasks the generator has (about 101): the held-out ones and the self-play ones are split from these. */
const EVAL_TASKS = 100;

/**
 * The demo's task sets, both of the eval split, which tiny-coder was never taught: the first
 * `heldOut` are measured, the rest are self-play's unlabeled tasks (their hidden tests only
 * measured, as every run measures them).
 */
export function codeDemoTasks(o: Pick<CodeDemoOptions, 'heldOut'>): { train: GeneratedCodeTask[]; heldOut: GeneratedCodeTask[] } {
  if (o.heldOut >= EVAL_TASKS) throw new Error(`--held-out ${o.heldOut} leaves no task to self-play on: the eval split has ${EVAL_TASKS} (held-out ones and self-play ones are split from it)`);
  const tasks = generateCodeTasks({ count: EVAL_TASKS, seed: 7, language: TINY_CODER_LANGUAGE, split: 'eval' });
  return { heldOut: tasks.slice(0, o.heldOut), train: tasks.slice(o.heldOut) };
}

export interface CodeDemoRow {
  bench: 'code-demo';
  config: CodeDemoConfig;
  seed: number;
  /** Hidden-test pass@1 (and CodeT's pick) of the base on the held-out tasks; null where another run of the seed measured it. */
  base_pass1: number | null;
  base_codet: number | null;
  after_pass1: number;
  after_codet: number;
  after_pass_k: number;
  /** Self-play: share of groups labeled (some solution passed some test), how often the top set passes the hidden tests, how often a sample does. */
  labeled_share: number;
  consensus_accuracy: number | null;
  sample_pass_first: number;
  sample_pass_last: number;
  /** Share of the self-play samples whose function ran (passed or failed some test rather than erroring on all), first and last step: whether updates broke the syntax. */
  runnable_first: number;
  runnable_last: number;
  critic_explained_var: number | null;
  wall_s: number;
}

/** Over a run's labeled groups: the share whose top consensus set's first function passes the hidden tests. */
export function consensusAccuracy(records: readonly StepRecord[]): number | null {
  const hits: number[] = [];
  for (const r of records)
    for (const g of r.groups) {
      const ex = g.execution;
      if (!g.labeled || !ex || ex.top === null) continue;
      const first = ex.sets[ex.top].solutions[0];
      const outcome = g.samples[first]?.hiddenResult;
      if (outcome !== undefined) hits.push(outcome === 'pass' ? 1 : 0);
    }
  return hits.length ? hits.reduce((a, b) => a + b, 0) / hits.length : null;
}

export async function codeDemo(o: CodeDemoOptions, print: (row: CodeDemoRow) => void = () => {}): Promise<CodeDemoRow[]> {
  const dir = resolveModelPath(o.model);
  const m = await loadModelFolder(dir);
  if (!m.tokenizer) throw new Error(`${dir} has no tokenizer.json`);
  const model = { config: m.config, weights: m.weights, tokenizer: m.tokenizer, dir };
  const device = await resolveDevice('cpu');
  const { train, heldOut } = codeDemoTasks(o);
  const items = train.map(asItem);
  const validation = heldOut.map(asItem);
  const k = o.valSamples;
  const rows: CodeDemoRow[] = [];
  // Every run's rewards and checks share the process's sandbox, stopped at the end so the bench exits.
  try {
    for (const seed of o.seeds) for (const config of o.configs) {
      const started = Date.now();
      // The base's validation (step 0) depends on the seed alone: measured once per seed.
      const measureBase = !rows.some((r) => r.seed === seed);
      const input: RunConfigInput = {
        method: 'code-consensus',
        ...TINY_CODER_RUN_SETTINGS,
        codeTimeoutMs: o.timeoutMs,
        seed,
        steps: o.steps,
        promptsPerStep: o.tasksPerStep,
        votes: o.samples,
        trainSamples: o.samples,
        temperature: o.temperature,
        lr: o.lr,
        lrSchedule: 'constant',
        warmupRatio: 0,
        klCoef: o.klCoef,
        advantage: config,
        ...(config === 'gae' && { criticLr: o.criticLr, criticWarmup: o.criticWarmup }),
        valBeforeTrain: measureBase,
        valEvery: o.steps,
        valSamples: k,
        valTemperature: o.temperature,
        valTopP: 1,
        checkpointEvery: 0,
      };
      const records: StepRecord[] = [];
      await runLoop(
        { config: parseRunConfig(input), model, device, items, validation },
        {
          onStep: (r) => void records.push(r),
          onProgress: (p) => process.stderr.write(`\r${config} seed ${seed}: step ${p.step}/${p.totalSteps} ${p.phase}      `),
        },
      );
      process.stderr.write('\n');
      const trained = records.filter((r) => r.step > 0);
      const last = records.at(-1)!.metrics;
      const groups = trained.flatMap((r) => r.groups);
      const explained = trained.map((r) => r.metrics[CRITIC_METRICS.explainedVar]).filter((x) => x !== undefined && Number.isFinite(x));
      const tail = explained.slice(-Math.max(1, Math.floor(explained.length / 4)));
      const row: CodeDemoRow = {
        bench: 'code-demo',
        config,
        seed,
        base_pass1: measureBase ? round(records[0].metrics[`val/avg@${k}`]) : null,
        base_codet: measureBase ? round(records[0].metrics[`val/maj@${k}`]) : null,
        after_pass1: round(last[`val/avg@${k}`]),
        after_codet: round(last[`val/maj@${k}`]),
        after_pass_k: round(last[`val/pass@${k}`]),
        labeled_share: round(groups.filter((g) => g.labeled).length / Math.max(1, groups.length)),
        consensus_accuracy: ((x) => (x === null ? null : round(x)))(consensusAccuracy(trained)),
        sample_pass_first: round(trained[0].metrics['code/hidden_pass_rate']),
        sample_pass_last: round(trained.at(-1)!.metrics['code/hidden_pass_rate']),
        runnable_first: round(trained[0].metrics['code/runnable_share']),
        runnable_last: round(trained.at(-1)!.metrics['code/runnable_share']),
        critic_explained_var: config === 'gae' && explained.length ? round(tail.reduce((a, b) => a + b, 0) / tail.length) : null,
        wall_s: round((Date.now() - started) / 1000, 1),
      };
      rows.push(row);
      print(row);
    }
  } finally {
    await closeCodeSandbox();
  }
  return rows;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function spread(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, sd: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1)) };
}

const LABELS: Record<CodeDemoConfig, string> = { grpo: 'code-consensus, GRPO (no critic)', gae: 'code-consensus, PPO + GAE critic' };

export function codeDemoTable(rows: readonly CodeDemoRow[], o: CodeDemoOptions): string {
  const { train, heldOut } = codeDemoTasks(o);
  const k = o.valSamples;
  const lines = [
    `${o.model}, ${heldOut.length} held-out code-functions-js tasks (eval split), hidden-test pass@1 = mean over ${k} samples per task at temperature ${o.temperature} (CodeT: the top consensus set's function among the ${k});`,
    `self-play on ${train.length} other unlabeled eval-split tasks: per run ${o.steps} steps × ${o.tasksPerStep} tasks × ${o.samples} samples, lr ${o.lr}, KL ${o.klCoef}${o.configs.includes('gae') ? `, critic lr ${o.criticLr}, critic warmup ${o.criticWarmup} steps` : ''}; mean ± sd over seeds ${o.seeds.join(', ')}`,
  ];
  const base = rows.filter((r) => r.base_pass1 !== null);
  if (base.length) {
    const b = spread(base.map((r) => r.base_pass1!));
    const c = spread(base.map((r) => r.base_codet!));
    lines.push(`  base                               pass@1 ${pct(b.mean)} ± ${pct(b.sd)}   CodeT ${pct(c.mean)} ± ${pct(c.sd)}   (seeds ${base.map((r) => `${r.seed}: ${pct(r.base_pass1!)}`).join(', ')})`);
  }
  for (const config of o.configs) {
    const r = rows.filter((x) => x.config === config);
    if (r.length === 0) continue;
    const a = spread(r.map((x) => x.after_pass1));
    const c = spread(r.map((x) => x.after_codet));
    const acc = r.map((x) => x.consensus_accuracy).filter((x): x is number => x !== null);
    // The change from the same seed's base, seed by seed: what self-play did, beside the spread.
    const deltas = r.flatMap((x) => {
      const b = base.find((y) => y.seed === x.seed);
      return b ? [x.after_pass1 - b.base_pass1!] : [];
    });
    const d = deltas.length ? spread(deltas) : null;
    const ev = r.map((x) => x.critic_explained_var).filter((x): x is number => x !== null);
    lines.push(
      `  ${LABELS[config].padEnd(34)} pass@1 ${pct(a.mean)} ± ${pct(a.sd)}   CodeT ${pct(c.mean)} ± ${pct(c.sd)}   (seeds ${r.map((x) => `${x.seed}: ${pct(x.after_pass1)}`).join(', ')}; ` +
        `${d ? `change from the seed's base ${d.mean >= 0 ? '+' : ''}${pct(d.mean)} ± ${pct(d.sd)}; ` : ''}` +
        `consensus right ${acc.length ? pct(spread(acc).mean) : 'n/a'}, samples right ${pct(spread(r.map((x) => x.sample_pass_first)).mean)} → ${pct(spread(r.map((x) => x.sample_pass_last)).mean)}, ` +
        `runnable ${pct(spread(r.map((x) => x.runnable_first)).mean)} → ${pct(spread(r.map((x) => x.runnable_last)).mean)}, labeled ${pct(spread(r.map((x) => x.labeled_share)).mean)}; ` +
        `${ev.length ? `critic explained variance ${ev.map((x) => x.toFixed(2)).join(' / ')}; ` : ''}${round(r.reduce((s, x) => s + x.wall_s, 0) / 60, 1)} min)`,
    );
  }
  lines.push(`total ${round(rows.reduce((a, x) => a + x.wall_s, 0) / 60, 1)} min`);
  return `${lines.join('\n')}\n`;
}
