// Every label-free method on the arithmetic demo with the same budget: the TTRL demo's setup
// (bench/ttrl-demo.ts: tiny-arith, 200 labeled level-1 sums to measure, the other sums unlabeled
// to train on, its learning rate and KL anchor) with the reward swapped. Per method and seed:
// base and after avg@16 / maj@16, how often the majority label is right (vote methods), how often
// the reward agrees with the hidden answer's, the per-step point-biserial correlation of reward
// and correctness (is the proxy honest on this data?), and wall time.
//
// The common settings are the demo's for every method, so only the reward differs; a method's
// own settings take their defaults (but SRT's τ, whose default 0 makes it TTRL: the bench runs
// it at 0.5), and so does its advantage estimator where the method sets one (consistency-judge:
// no std normalisation), since that is part of its formula. A method that cannot run on the
// demo's model (its judge prompt does not fit the context, say) gets a row with its error, and
// the others still run.
//
//   npm run bench -- methods [--methods ttrl,srt,...] [--advantages grpo,gae] [--seeds 0,1,2] [--steps N] [--minutes M]
//
// --advantages runs each method once per estimator named (gae: the actor–critic), on the same
// base: a comparison of advantage estimators with the reward fixed.
//
// Measured (`--methods ttrl --advantages grpo,gae --seeds 0,1,2 --steps 200`, tiny-arith before its judge and inverse rows, the
// critic at its defaults: criticLr 1e-3, γ = λ = 1, valueClip 0.5, one update a step; about 14
// minutes of CPU, 38 of wall time on 2 shared cores), after avg@16 minus base avg@16:
//   ttrl (grpo): +11.2 points (sd 0.4; seeds 92.0, 92.2, 93.0 from 80.6, 81.5, 81.5)
//   ttrl (gae):  +11.3 points (sd 0.8; seeds 92.3, 93.3, 91.8), label accuracy 85-88% as GRPO's
// No difference at this budget, and the steps take about a quarter longer (the extra forward
// pass). The critic's explained variance over the last 50 steps is −0.31 to −0.38: it predicts
// the returns worse than their mean. A TTRL reward is 1 or 0 by the answer a sample ends up
// writing, which no prefix before the answer tokens can tell, and the value head has to chase
// hidden states the policy keeps moving; GRPO's group mean is an exact per-prompt baseline here.
//
// Progress goes to stderr; stdout gets a table, then one JSON line per method and seed.
//
// Measured on the committed tiny-arith (its digits judge: AUC 0.745 on answers off by ten) on 2
// cores shared with other work (`npm run bench -- methods --steps 150`, seeds 0-2: 400 steps for
// the 24 runs would have taken about 3 hours there), after avg@16 minus base (base 77.6-78.9%,
// maj@16 93-95.5%), mean and sd over the seeds:
//   ttrl: +1.0 points (sd 2.1; labels right 66-68%, reward-truth r 0.42-0.46)
//   srt: -0.9 (sd 0.9; labels right 57-63%, r 0.35-0.43)
//   self-certainty: -28.7 (sd 1.3; r -0.11 to -0.15)   token-entropy: -27.5 (sd 0.4; r -0.05 to -0.07)
//   semantic-clusters: +4.6 (sd 0.2; r 0.48-0.52)     trajectory-likelihood: +4.7 (sd 1.9; r 0.46-0.49)
//   consistency-judge: +2.8 (sd 1.1; r 0.71-0.72; maj@16 92-94.5% against 82-86% for TTRL; 4-6× TTRL's wall time)
//   co-rewarding: +7.3 (sd 3.1; teacher labels right 86.5-88%, r 0.81-0.83)
// 150 steps are TTRL's dip on this model: at the demo's lr 4e-4 its own majority on the training
// sums gets worse before it gets better (labels right 57.5% over steps 51-100, 90% over 351-400
// in a 400-step seed-0 run, which ended at avg@16 89.0%, maj@16 91.0% from 78.9% / 94.5%), and a
// 0/1 reward from a wrong majority pushes the policy the wrong way a third of the time. Rewards
// that label with something steadier beat it: co-rewarding's slowly updated teacher keeps its
// labels right 88% of the time; the judge's nudge makes consistency-judge's reward the best
// correlated with the truth after co-rewarding's (0.71) and keeps maj@16 near the base, though
// its unnormalised (Dr. GRPO) advantages move avg@16 slowly, and the judge writing ~19 tokens
// for each of 128 responses a step makes it 4-6 times slower; a share-of-cluster reward (semantic
// clusters) or the sample's own likelihood costs less when the majority is wrong. Self-certainty
// and token entropy collapse as before: confidence does not track correctness here (r < 0).
//
// Measured on 2 cores (`npm run bench -- methods`, 400 steps, seeds 0-2, tiny-arith before its judge and inverse rows; base avg@16
// 80.6-81.5%, maj@16 93.5-95%), after avg@16 minus base avg@16, mean and sd over the seeds:
//   ttrl: avg@16 +12.4 points over the base (sd 0.8, 3 seeds)
//   srt: avg@16 +12.5 points over the base (sd 0.6, 3 seeds)
//   self-certainty: avg@16 -26.7 points over the base (sd 18.6, 3 seeds)
//   token-entropy: avg@16 -26.5 points over the base (sd 0.6, 3 seeds)
//   semantic-clusters: avg@16 +13.4 points over the base (sd 0.8, 3 seeds)
//   trajectory-likelihood: avg@16 +13.9 points over the base (sd 1.4, 3 seeds)
//   consistency-judge: avg@16 +5.1 points over the base (sd 0.5, 3 seeds)
//   co-rewarding: avg@16 +13.9 points over the base (sd 0.6, 3 seeds)
// Majority-style rewards (TTRL, SRT, clusters, trajectory likelihood, co-rewarding) gain 12-14
// points in 400 steps (the TTRL demo's 1,600 go further); co-rewarding's teacher labels are right more often (94% against TTRL's 88-89%).
// Self-certainty and token entropy reward confidence, which does not track correctness here
// (reward-truth r -0.12 to 0.03: the model's ten-off answers are as confident as its right ones),
// and collapse at the demo's lr 4e-4; the self-judge's tiny-arith was no judge then (AUC 0.5).
import { listMethods } from '../main/engine/rl/methods/registry.ts';
import { resolveModelPath } from '../main/engine/model-paths.ts';
import { TTRL_DEMO_DEFAULTS, type TtrlDemoOptions, ttrlDemo } from './ttrl-demo.ts';
import { evaluateBase } from './tiny-arith-base.ts';
import { tinyArithJudgeSettings } from '../resources/models/make-tiny-arith.ts';

export interface MethodsBenchOptions {
  methods: string[];
  /** Run each method once per estimator (absent: once, with the method's own). */
  advantages?: TtrlDemoOptions['advantage'][];
  seeds: number[];
  /** The demo's options shared by every run (steps and minutes are the budget). */
  demo: TtrlDemoOptions;
}

export type MethodRow = Record<string, unknown> & { method: string; seed: number; advantage?: string };

/** Settings the bench gives a method instead of its defaults, and why (see above). */
export const BENCH_METHOD_SETTINGS: Record<string, Record<string, unknown>> = { srt: { srtThreshold: 0.5 } };

/**
 * On the built-in tiny-arith, a judge method asks in the verification form its recipe teaches
 * and reads the verdict as it was taught to give it (resources/models/make-tiny-arith.ts): the
 * default template is written for chat models and is longer than tiny-arith's 64 positions.
 */
function methodSettingsFor(id: string, model: string): Record<string, unknown> {
  const own = BENCH_METHOD_SETTINGS[id] ?? {};
  if (model !== 'tiny-arith') return own;
  if (id === 'consistency-judge') return { ...tinyArithJudgeSettings(), ...own };
  return own;
}

/** The runs, one per method and seed, each a JSON-able row; `onRow` sees each as it finishes. */
export async function methodsBench(o: MethodsBenchOptions, onRow: (row: MethodRow) => void = () => {}, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<MethodRow[]> {
  const known = new Map(listMethods().map((m) => [m.id, m]));
  for (const id of o.methods) if (!known.has(id)) throw new Error(`unknown method "${id}"; the methods are ${[...known.keys()].join(', ')}`);
  for (const id of o.methods) if (known.get(id)!.pipeline !== 'group-reward') throw new Error(`method "${id}" runs the ${known.get(id)!.pipeline} pipeline, not an RL reward; it has a bench of its own (svd-demo for svd)`);
  const rows: MethodRow[] = [];
  for (const seed of o.seeds) {
    // The base model is measured once per seed: every method starts from the same numbers.
    const d = { ...o.demo, seed };
    log(`seed ${seed}: measuring the base model's avg@16 / maj@16`);
    const base = await evaluateBase(
      { model: resolveModelPath(d.model), levels: [1], ops: '+', count: d.count, k: 16, temperature: d.evalTemperature, topP: 0.95, seed, dataSeed: 0, show: 0 },
      () => {},
    );
    for (const id of o.methods) {
      const method = known.get(id)!;
      const own = (method.defaults?.advantage as TtrlDemoOptions['advantage'] | undefined) ?? d.advantage;
      for (const advantage of o.advantages ?? [own]) {
        log(`seed ${seed}: ${method.label} (${id})${o.advantages ? `, advantage ${advantage}` : ''}`);
        const methodSettings = methodSettingsFor(id, d.model);
        const tag = o.advantages ? { advantage } : {};
        let row: MethodRow;
        try {
          const r = await ttrlDemo({ ...d, method: id, methodSettings, srtThreshold: 0, advantage, base }, (s) => log(`  ${s}`));
          row = { bench: 'methods', method: id, seed, ...tag, ...without(r, ['bench', 'method', 'trend']), method_settings: methodSettings };
        } catch (e) {
          const error = e instanceof Error ? e.message : String(e);
          log(`  ${id} failed: ${error}`);
          row = { bench: 'methods', method: id, seed, ...tag, error, base_avg16: Math.round(base.avg * 1000) / 10, base_maj16: Math.round(base.maj * 1000) / 10 };
        }
        rows.push(row);
        onRow(row);
      }
    }
  }
  return rows;
}

function without(r: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !keys.includes(k)));
}

const fmt = (v: unknown, digits = 1): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');

/** The rows as a table, then per method the mean ± standard deviation over seeds of after avg@16. */
export function methodsTable(rows: readonly MethodRow[]): string {
  const header = ['method', 'seed', 'base avg@16', 'base maj@16', 'after avg@16', 'after maj@16', 'label acc', 'reward acc', 'reward~truth r', 'steps', 'wall s'];
  const ran = rows.filter((r) => r.error === undefined);
  // With --advantages a row is a method with an estimator.
  const name = (r: MethodRow) => (r.advantage ? `${r.method} (${r.advantage})` : r.method);
  const body = ran.map((r) => [
    name(r),
    String(r.seed),
    fmt(r.base_avg16),
    fmt(r.base_maj16),
    fmt(r.after_avg16),
    fmt(r.after_maj16),
    fmt(r.label_accuracy),
    fmt(r.reward_accuracy),
    fmt(r.reward_truth_correlation, 3),
    String(r.steps),
    fmt(r.wall_s, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const out = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line), ''];
  const methods = [...new Set(ran.map(name))];
  for (const m of methods) {
    const gains = ran.filter((r) => name(r) === m).map((r) => (r.after_avg16 as number) - (r.base_avg16 as number));
    const mean = gains.reduce((a, b) => a + b, 0) / gains.length;
    const sd = gains.length > 1 ? Math.sqrt(gains.reduce((a, b) => a + (b - mean) ** 2, 0) / (gains.length - 1)) : NaN;
    out.push(`${m}: avg@16 ${mean >= 0 ? '+' : ''}${mean.toFixed(1)} points over the base (sd ${fmt(sd)}, ${gains.length} seed${gains.length > 1 ? 's' : ''})`);
  }
  for (const r of rows.filter((x) => x.error !== undefined)) out.push(`${name(r)} (seed ${r.seed}) failed: ${String(r.error)}`);
  return out.join('\n') + '\n';
}

export const METHODS_BENCH_DEFAULTS = { seeds: [0, 1, 2], steps: 400, minutes: TTRL_DEMO_DEFAULTS.minutes } as const;
