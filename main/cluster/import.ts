// `autodidact cluster import`: a cluster run's metrics and rollouts (what verl wrote into the
// exported folder) as a run of kind 'external', step by step: its charts, inspector and reviews
// work as for a run of this app. Each step is recorded once (recordStep refuses a second), with
// its rollout dump when verl wrote one; what is read in one pass is checked whole before any of
// it is stored, so a malformed file (named with its line) leaves nothing of that pass behind.
import fs from 'node:fs';
import path from 'node:path';
import {
  type ExperimentDb,
  type RunInfo,
  type StepRecord,
  type StepRollout,
  createRun,
  evaluationAnswers,
  getDataset,
  getRun,
  listRuns,
  listSteps,
  recordStep,
  stepTimeline,
  updateRunStatus,
} from '../db/index.ts';
import { TRAIN_METRICS } from '../engine/rl/metrics.ts';
import { SIGNAL_METRICS } from '../engine/rl/signal.ts';
import { answersEquivalent } from '../engine/tasks/equivalence.ts';
import type { AnswerFormat } from '../engine/tasks/extract.ts';
import { keyMetricName, positiveInt, storedConfig } from '../runs/key-metric.ts';
import { claimRun, clearControlRequest, controlRequest, liveRunOwner } from '../runs/owner.ts';
import type { ClusterManifest } from './export.ts';
import { CLUSTER_FILES } from './launch.ts';
import { externalSource } from './reviewed-labels.ts';
import { type DumpLine, JsonlTail, type MetricsLine, parseMetricsLine, readDumpFile } from './verl-files.ts';

/**
 * verl's names for what the app's charts draw under its own (engine/rl/metrics.ts); the verl
 * key is kept too. TTRL's fork already logs train/label_accuracy, train/majority_ratio, ...
 */
const VERL_ALIASES: readonly [verl: string, app: string][] = [
  ['actor/entropy', TRAIN_METRICS.entropy],
  ['response_length/mean', TRAIN_METRICS.responseLength],
  ['actor/kl_loss', TRAIN_METRICS.kl],
  ['actor/pg_clipfrac', TRAIN_METRICS.clipRatio],
  ['critic/score/mean', TRAIN_METRICS.majorityVotingReward],
  ['timing_s/step', TRAIN_METRICS.timingStep],
  ['timing_s/gen', TRAIN_METRICS.timingRollout],
  ['timing_s/update_actor', TRAIN_METRICS.timingUpdate],
  ['perf/throughput', TRAIN_METRICS.tokensPerSecond],
];

/** verl's validation keys, val-core/<data_source>/<acc|reward>/<metric>, as the app's val/avg@k, val/maj@k, val/pass@k. */
function validationAlias(key: string): string | null {
  const m = /^val-core\/.+\/(?:acc|reward)\/(mean@(\d+)|maj@(\d+)\/mean|best@(\d+)\/mean)$/.exec(key);
  if (!m) return null;
  if (m[2]) return `val/avg@${m[2]}`;
  if (m[3]) return `val/maj@${m[3]}`;
  return `val/pass@${m[4]}`;
}

/** The keys the reward function adds to each response (reward-function.ts); the rest of a dump line's numbers are its reward's parts. */
const DUMP_KEYS = new Set(['gts', 'step', 'index', 'answer', 'pseudo_label', 'label_source', 'votes', 'majority_ratio', 'truth_correct', 'pred', 'acc', 'request_id']);

export class ClusterImportError extends Error {
  override name = 'ClusterImportError';
}

export function readManifest(dir: string): ClusterManifest {
  const file = path.join(dir, CLUSTER_FILES.manifest);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ClusterImportError(`${dir} has no ${CLUSTER_FILES.manifest}: import a folder written by 'autodidact cluster export' (with verl's verl/metrics.jsonl and verl/rollouts/ in it)`);
    }
    throw e;
  }
  let m: Partial<ClusterManifest>;
  try {
    m = JSON.parse(text) as Partial<ClusterManifest>;
  } catch (e) {
    throw new ClusterImportError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== 'autodidact-cluster' || m.version !== 1 || typeof m.name !== 'string' || !m.config || typeof m.config !== 'object' || !m.dataset) {
    throw new ClusterImportError(`${file}: not an autodidact-cluster manifest of version 1 (export the run again with this version)`);
  }
  return m as ClusterManifest;
}

/** The imported run of a folder: the one recorded before from it, else a new one. */
export function externalRunFor(db: ExperimentDb, dir: string, manifest: ClusterManifest): RunInfo {
  const existing = listRuns(db).find((r) => externalSource(r)?.dir === dir);
  if (existing) return existing;
  const byId = getDataset(db, manifest.dataset.id);
  const dataset = byId && byId.name === manifest.dataset.name ? byId : getDataset(db, manifest.dataset.name);
  return createRun(db, {
    name: `${manifest.name} (verl)`,
    kind: 'external',
    method: manifest.method,
    model: manifest.model,
    dataset: manifest.dataset.name,
    datasetId: dataset?.id ?? null,
    config: { ...manifest.config, external: { source: 'verl', dir } },
  });
}

export interface ImportedStep {
  step: number;
  rollouts: number;
  samples: number;
  metrics: number;
}

/** One pass over the folder's files. */
export interface PassResult {
  recorded: ImportedStep[];
  /** Steps already in the database, met again in the file (a re-import, or verl logging a step twice). */
  skipped: number;
  /** Steps whose rollout dump is not all there yet: read again at the next pass. */
  waiting: number[];
}

/** Reads a cluster folder pass after pass; keeps its place in the metrics file between passes. */
export class ClusterReader {
  private readonly metrics: JsonlTail;
  private readonly pending = new Map<number, MetricsLine['data']>();
  readonly metricsFile: string;
  readonly rolloutDir: string;
  private readonly format: AnswerFormat;
  private readonly bestKey: string;
  private truths: Map<number, string> | null = null;

  constructor(
    private readonly db: ExperimentDb,
    readonly run: RunInfo,
    readonly dir: string,
  ) {
    this.metricsFile = path.join(dir, CLUSTER_FILES.metrics);
    this.rolloutDir = path.join(dir, CLUSTER_FILES.rollouts);
    this.metrics = new JsonlTail(this.metricsFile);
    const config = storedConfig(run);
    this.format = (['auto', 'math', 'gsm8k', 'multiple-choice'] as const).find((f) => f === config.answerFormat) ?? 'auto';
    this.bestKey = keyMetricName(config);
  }

  /** Reads what is new, checks it whole, then records each new step in one transaction. */
  pass(): PassResult {
    const { lines } = this.metrics.read();
    const parsed = lines.map((l) => parseMetricsLine(this.metricsFile, l));
    // A step logged twice (validation before training, after a resume) is one step: its values merged.
    for (const m of parsed) this.pending.set(m.step, { ...(this.pending.get(m.step) ?? {}), ...m.data });
    const done = new Set(listSteps(this.db, this.run.id));
    let skipped = 0;
    const records: { step: number; rec: StepRecord; info: ImportedStep }[] = [];
    const waiting: number[] = [];
    for (const step of [...this.pending.keys()].sort((a, b) => a - b)) {
      if (done.has(step)) {
        this.pending.delete(step);
        skipped++;
        continue;
      }
      const dumpFile = path.join(this.rolloutDir, `${step}.jsonl`);
      const dump = fs.existsSync(dumpFile) ? readDumpFile(dumpFile) : [];
      if (dump === null) {
        waiting.push(step);
        continue;
      }
      const rec = this.stepRecord(this.pending.get(step)!, dump);
      records.push({ step, rec, info: { step, rollouts: rec.rollouts?.length ?? 0, samples: dump.length, metrics: Object.keys(rec.metrics ?? {}).length } });
    }
    if (records.length) {
      this.timeSteps(records);
      this.db.write(`importing ${records.length} step(s) of run ${this.run.id}`, () => {
        let best = getRun(this.db, this.run.id)?.bestMetric ?? null;
        for (const r of records) {
          const value = r.rec.metrics?.[this.bestKey];
          if (value !== undefined && Number.isFinite(value) && (best === null || value > best)) {
            best = value;
            r.rec.best = value;
          }
          recordStep(this.db, this.run.id, r.step, r.rec);
        }
      });
      for (const r of records) this.pending.delete(r.step);
    }
    return { recorded: records.map((r) => r.info), skipped, waiting };
  }

  private hiddenAnswers(): Map<number, string> {
    // Evaluation only: whether a pseudo-label was right, as the app's own runs record it.
    this.truths ??= this.run.datasetId === null ? new Map() : evaluationAnswers(this.db, this.run.datasetId);
    return this.truths;
  }

  /**
   * When each step finished, from verl's own step times (`timing_s/step`): the previous step's
   * time plus this one's duration, so the wall-time axis shows the cluster's pace, not when the
   * files were imported (all at once for a finished run). A step without a previous one, or
   * without a duration, is timed when it is imported.
   */
  private timeSteps(records: readonly { step: number; rec: StepRecord }[]): void {
    const recorded = new Map(stepTimeline(this.db, this.run.id, -1).map((t) => [t.step, t.recordedAt]));
    let previous: { step: number; at: number } | null = null;
    for (const [step, at] of recorded) if (previous === null || step > previous.step) previous = { step, at: Date.parse(at) };
    for (const r of records) {
      const seconds = r.rec.metrics?.[TRAIN_METRICS.timingStep];
      const earlier = previous !== null && previous.step < r.step ? previous : null;
      const at = earlier !== null && seconds !== undefined && Number.isFinite(seconds) && seconds >= 0 ? earlier.at + seconds * 1000 : Date.now();
      r.rec.recordedAt = new Date(at).toISOString();
      previous = { step: r.step, at };
    }
  }

  private stepRecord(data: MetricsLine['data'], dump: DumpLine[]): StepRecord {
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(data)) metrics[k] = v ?? NaN;
    for (const [from, to] of VERL_ALIASES) if (from in metrics && !(to in metrics)) metrics[to] = metrics[from];
    for (const k of Object.keys(data)) {
      const alias = validationAlias(k);
      if (alias && !(alias in metrics)) metrics[alias] = metrics[k];
    }
    const rollouts = groupRollouts(dump);
    const truths = this.hiddenAnswers();
    for (const r of rollouts) {
      const truth = r.itemIdx == null ? undefined : truths.get(r.itemIdx);
      r.labelCorrect = truth === undefined || r.pseudoLabel == null ? null : answersEquivalent(r.pseudoLabel, truth, { format: this.format });
    }
    if (rollouts.length) {
      const ratios = rollouts.map((r) => r.majorityRatio).filter((x): x is number => typeof x === 'number');
      if (ratios.length && !(TRAIN_METRICS.majorityRatio in metrics)) metrics[TRAIN_METRICS.majorityRatio] = mean(ratios);
      const judged = rollouts.filter((r) => r.labelCorrect !== null);
      if (judged.length && !(TRAIN_METRICS.labelAccuracy in metrics)) metrics[TRAIN_METRICS.labelAccuracy] = mean(judged.map((r) => (r.labelCorrect ? 1 : 0)));
      if (!(TRAIN_METRICS.labeledRatio in metrics)) metrics[TRAIN_METRICS.labeledRatio] = mean(rollouts.map((r) => (r.pseudoLabel != null ? 1 : 0)));
      const samples = rollouts.flatMap((r) => r.samples ?? []);
      if (samples.length && !(SIGNAL_METRICS.extractionRate in metrics)) metrics[SIGNAL_METRICS.extractionRate] = mean(samples.map((s) => (s.extractedAnswer != null ? 1 : 0)));
    }
    const tokens = data['perf/total_num_tokens'];
    return { metrics, rollouts, tokens: typeof tokens === 'number' ? Math.round(tokens) : null };
  }
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

function voteCounts(v: unknown): Record<string, number> {
  let o = v;
  if (typeof v === 'string') {
    try {
      o = JSON.parse(v);
    } catch {
      return {};
    }
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return {};
  return Object.fromEntries(Object.entries(o as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number'));
}

/** A step's dump lines as prompt groups: by extra_info.index where the reward function gave it, else by prompt text, in order of appearance. */
export function groupRollouts(dump: readonly DumpLine[]): StepRollout[] {
  const groups = new Map<string, DumpLine[]>();
  for (const d of dump) {
    const index = d.extra.index;
    const key = Number.isInteger(index) ? `i${String(index)}` : `p${d.input}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(d);
  }
  return [...groups.values()].map((lines) => {
    const first = lines[0].extra;
    const counts = voteCounts(first.votes);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const ratio = typeof first.majority_ratio === 'number' ? first.majority_ratio : total > 0 ? Math.max(...Object.values(counts)) / lines.length : null;
    const pseudo = text(first.pseudo_label);
    return {
      itemIdx: Number.isInteger(first.index) ? (first.index as number) : null,
      prompt: lines[0].input,
      pseudoLabel: pseudo,
      voteCounts: counts,
      majorityRatio: ratio,
      labelSource: first.label_source === 'review' ? 'review' : 'vote',
      samples: lines.map((d, i) => {
        const details: Record<string, number> = {};
        for (const [k, v] of Object.entries(d.extra)) if (!DUMP_KEYS.has(k) && typeof v === 'number' && Number.isFinite(v)) details[k] = v;
        return {
          idx: i,
          text: d.output,
          extractedAnswer: text(d.extra.answer),
          reward: d.score,
          usedForTraining: true,
          details: Object.keys(details).length ? details : null,
        };
      }),
    } satisfies StepRollout;
  });
}

export interface ImportOptions {
  /** The data folder (owner marker and control requests of a followed run). */
  home: string;
  /** Keep reading as the files grow, until the run reaches its steps or `signal` aborts. */
  follow?: boolean;
  pollMs?: number;
  signal?: AbortSignal;
  onPass?(result: PassResult, run: RunInfo): void;
}

export interface ImportSummary {
  run: RunInfo;
  steps: number;
  skipped: number;
  waiting: number[];
}

/**
 * Imports a cluster folder into its external run (created on the first import). With `follow`,
 * the run shows as running (its owner mark is this process, so the app's Stop reaches it) and the
 * folder is read every `pollMs` until the run has all its steps, Stop is asked, or `signal` aborts.
 */
export async function importClusterRun(db: ExperimentDb, dirArg: string, options: ImportOptions): Promise<ImportSummary> {
  const dir = path.resolve(dirArg);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ClusterImportError(`${dirArg} is not a folder`);
  const manifest = readManifest(dir);
  let run = externalRunFor(db, dir, manifest);
  // Two readers of one folder would fight over the run's status (and the second's summary would be wrong).
  const other = liveRunOwner(options.home, run.id);
  if (other && other.pid !== process.pid) {
    throw new ClusterImportError(`run ${run.id} ("${run.name}") is being followed by another process (pid ${other.pid}, since ${other.startedAt}): it imports the new steps already; stop it (Ctrl-C there, or Stop in the app) to import from here`);
  }
  const reader = new ClusterReader(db, run, dir);
  const total = positiveInt(storedConfig(run).steps, Number.MAX_SAFE_INTEGER);
  let steps = 0;
  let skipped = 0;
  let waiting: number[] = [];
  const onePass = () => {
    const r = reader.pass();
    steps += r.recorded.length;
    skipped += r.skipped;
    waiting = r.waiting;
    options.onPass?.(r, run);
  };
  const finished = () => (getRun(db, run.id)?.currentStep ?? -1) >= total;
  const release = options.follow ? claimRun(options.home, run.id) : null;
  let stopAsked = false;
  try {
    if (options.follow) {
      run = updateRunStatus(db, run.id, 'running');
      clearControlRequest(options.home, run.id);
    }
    onePass();
    while (options.follow && !finished() && !options.signal?.aborted) {
      if (controlRequest(options.home, run.id)) {
        stopAsked = true;
        break;
      }
      await sleep(options.pollMs ?? 1000, options.signal);
      if (!options.signal?.aborted) onePass();
    }
  } catch (e) {
    if (options.follow) updateRunStatus(db, run.id, 'stopped', `following the cluster folder stopped: ${(e as Error).message}`);
    throw e;
  } finally {
    if (stopAsked) clearControlRequest(options.home, run.id);
    release?.();
  }
  const at = getRun(db, run.id)?.currentStep ?? null;
  const done = finished();
  run = updateRunStatus(
    db,
    run.id,
    done ? 'completed' : 'stopped',
    done ? null : `imported from the cluster up to ${at === null ? 'no step yet' : `step ${at}`}; 'autodidact cluster import ${dir}' (with --follow to keep reading) brings the rest`,
  );
  return { run, steps, skipped, waiting };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

