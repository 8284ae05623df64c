// Reading a run back for the command line and the app: finding it by id or name, its summary
// (`show`), and its export (metrics CSV, samples JSONL, TRL-style completions Parquet), which
// `autodidact export` writes to a folder and the `runs.export` request hands to the app. A code
// run's samples carry their hidden-test outcome and their group's execution record.
import fs from 'node:fs';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import {
  type Alert,
  type Checkpoint,
  DatabaseError,
  type ExperimentDb,
  type RunInfo,
  type StepExecution,
  evaluationAnswers,
  executionOfRollout,
  getRun,
  latestCheckpoint,
  listAlerts,
  listRuns,
  listSteps,
  queryMetrics,
  rolloutsAtStep,
  samplesOfRollout,
} from '../db/index.ts';

/** A run by id ("12") or by name; an actionable NOT_FOUND error when there is none. */
export function findRun(db: ExperimentDb, ref: string): RunInfo {
  if (/^\d+$/.test(ref)) {
    const run = getRun(db, Number(ref));
    if (run) return run;
  }
  const named = listRuns(db).filter((r) => r.name === ref);
  if (named.length === 1) return named[0];
  if (named.length > 1) {
    throw new DatabaseError('NOT_FOUND', `${named.length} runs are named "${ref}" (ids ${named.map((r) => r.id).join(', ')}); give the id instead`);
  }
  throw new DatabaseError('NOT_FOUND', `no run "${ref}"; 'autodidact runs' lists the runs and their ids`);
}

export interface RunSummary {
  run: RunInfo;
  /** The latest value of each metric, and the step it is from. */
  lastMetrics: Record<string, { step: number; value: number | null }>;
  bestCheckpoint: Checkpoint | null;
  lastCheckpoint: Checkpoint | null;
  alerts: Alert[];
}

export function summarizeRun(db: ExperimentDb, run: RunInfo): RunSummary {
  return db.read(`reading run ${run.id}`, () => {
    const lastMetrics: RunSummary['lastMetrics'] = {};
    // queryMetrics orders by key then step, so the last point of each key wins.
    for (const m of queryMetrics(db, run.id)) lastMetrics[m.key] = { step: m.step, value: Number.isNaN(m.value) ? null : m.value };
    return {
      run,
      lastMetrics,
      bestCheckpoint: latestCheckpoint(db, run.id, 'best') ?? null,
      lastCheckpoint: latestCheckpoint(db, run.id, 'last') ?? null,
      alerts: listAlerts(db, run.id),
    };
  });
}

export type MetricsLayout = 'wide' | 'long';

function csvCell(v: string | number | null): string {
  if (v === null || (typeof v === 'number' && Number.isNaN(v))) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * A run's metrics as CSV. wide: one row per step, a column per metric key (sorted), an empty
 * cell where a step did not record that metric. long: rows of step,key,value, by step then key.
 * A value recorded as NaN is an empty cell in both.
 */
export function metricsCsv(db: ExperimentDb, runId: number, layout: MetricsLayout = 'wide'): string {
  const points = queryMetrics(db, runId);
  if (layout === 'long') {
    const rows = [...points].sort((a, b) => a.step - b.step || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return ['step,key,value', ...rows.map((p) => [p.step, csvCell(p.key), csvCell(p.value)].join(','))].join('\n') + '\n';
  }
  const keys = [...new Set(points.map((p) => p.key))].sort();
  const byStep = new Map<number, Map<string, number>>();
  for (const p of points) {
    if (!byStep.has(p.step)) byStep.set(p.step, new Map());
    byStep.get(p.step)!.set(p.key, p.value);
  }
  const lines = [['step', ...keys].map(csvCell).join(',')];
  for (const step of [...byStep.keys()].sort((a, b) => a - b)) {
    const row = byStep.get(step)!;
    lines.push([step, ...keys.map((k) => csvCell(row.get(k) ?? null))].join(','));
  }
  return lines.join('\n') + '\n';
}

/** One line of samples.jsonl. */
export interface SampleLine {
  step: number;
  group: number;
  item_idx: number | null;
  prompt: string;
  /** The group's label: its majority answer, or (label_source "review") the person's label it trained with instead. */
  pseudo_label: string | null;
  /** "review" where the group took a person's reviewed label instead of its vote; absent otherwise. */
  label_source?: 'review';
  /** The item's hidden label (evaluation-only), null where the dataset has none. */
  label: string | null;
  label_correct: boolean | null;
  sample: number;
  text: string;
  /** The answer extracted from this sample's text. */
  answer: string | null;
  reward: number | null;
  advantage: number | null;
  used: boolean;
  /** Its outcome against the item's hidden answer where the method checks one (code: pass, fail, error, timeout); absent otherwise. */
  hidden_result?: string;
  /** The group's execution record (code: functions, pooled tests, matrix, consensus sets, self-debugging turns), on each of its samples; absent for other methods. */
  execution?: StepExecution;
}

/** The keys a sample line has only where the run recorded them (other runs' exports are unchanged). */
function codeFields(hiddenResult: string | null, execution: StepExecution | null): Pick<SampleLine, 'hidden_result' | 'execution'> {
  return { ...(hiddenResult !== null && { hidden_result: hiddenResult }), ...(execution !== null && { execution }) };
}

/** Every sample of a run, step by step, group by group (a generator: runs can be large). */
export function* sampleLines(db: ExperimentDb, run: RunInfo): Generator<SampleLine> {
  const labels = run.datasetId === null ? new Map<number, string>() : evaluationAnswers(db, run.datasetId);
  for (const step of listSteps(db, run.id)) {
    for (const r of rolloutsAtStep(db, run.id, step)) {
      const execution = executionOfRollout(db, r.id);
      for (const s of samplesOfRollout(db, r.id)) {
        yield {
          step,
          group: r.groupIdx,
          item_idx: r.itemIdx,
          prompt: r.prompt,
          pseudo_label: r.pseudoLabel,
          ...(r.labelSource === 'review' && { label_source: 'review' as const }),
          label: r.itemIdx === null ? null : (labels.get(r.itemIdx) ?? null),
          label_correct: r.labelCorrect,
          sample: s.idx,
          text: s.text,
          answer: s.extractedAnswer,
          reward: s.reward,
          advantage: s.advantage,
          used: s.usedForTraining,
          ...codeFields(s.hiddenResult, execution),
        };
      }
    }
  }
}

/** Every sample of a run as JSON Lines (samples.jsonl), in one string. */
export function samplesJsonl(db: ExperimentDb, run: RunInfo): string {
  let out = '';
  for (const line of sampleLines(db, run)) out += JSON.stringify(line) + '\n';
  return out;
}

/** The fixed columns of completions.parquet, in order; the method's reward parts follow `reward` as `reward/<part>`. */
export const COMPLETION_COLUMNS = ['step', 'prompt', 'completion', 'reward', 'advantage', 'group', 'sample', 'answer', 'pseudo_label', 'used'] as const;

/**
 * Every sample of a run as a Parquet file shaped like TRL's completions log (GRPOTrainer's
 * `log_completions`: step, prompt, completion, the rewards, advantage), so the tools that read
 * TRL's tables read it: one row per sample; `reward` is the method's reward and `reward/<part>`
 * each part a method reports (self-certainty's certainty, ...), then group, sample, the extracted
 * answer, the group's pseudo-label and whether the sample was trained on; a code run's file adds
 * `hidden_result` (evaluation only, as in the inspector) and `execution` (the group's record,
 * JSON). Hidden labels stay out.
 */
export function completionsParquet(db: ExperimentDb, run: RunInfo): Uint8Array {
  return db.read(`exporting the completions of run ${run.id}`, () => {
    const rows: { line: SampleLine; details: Record<string, number> | null }[] = [];
    for (const step of listSteps(db, run.id)) {
      for (const r of rolloutsAtStep(db, run.id, step)) {
        const execution = executionOfRollout(db, r.id);
        for (const s of samplesOfRollout(db, r.id)) {
          rows.push({
            line: {
              step,
              group: r.groupIdx,
              item_idx: r.itemIdx,
              prompt: r.prompt,
              pseudo_label: r.pseudoLabel,
              label: null,
              label_correct: null,
              sample: s.idx,
              text: s.text,
              answer: s.extractedAnswer,
              reward: s.reward,
              advantage: s.advantage,
              used: s.usedForTraining,
              ...codeFields(s.hiddenResult, execution),
            },
            details: s.details,
          });
        }
      }
    }
    const parts = [...new Set(rows.flatMap((r) => Object.keys(r.details ?? {})))].sort();
    const col = <T>(f: (r: (typeof rows)[number]) => T) => rows.map(f);
    // A code run's columns, only where it recorded them: each sample's hidden-test outcome, its group's execution record as JSON.
    const code = [
      ...(rows.some((r) => r.line.hidden_result !== undefined) ? [{ name: 'hidden_result', data: col((r) => r.line.hidden_result ?? null), type: 'STRING' as const }] : []),
      ...(rows.some((r) => r.line.execution !== undefined) ? [{ name: 'execution', data: col((r) => r.line.execution ?? null), type: 'JSON' as const }] : []),
    ];
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'step', data: col((r) => r.line.step), type: 'INT32', nullable: false },
        { name: 'prompt', data: col((r) => r.line.prompt), type: 'STRING', nullable: false },
        { name: 'completion', data: col((r) => r.line.text), type: 'STRING', nullable: false },
        { name: 'reward', data: col((r) => r.line.reward), type: 'DOUBLE' },
        ...parts.map((part) => ({ name: `reward/${part}`, data: col((r) => r.details?.[part] ?? null), type: 'DOUBLE' as const })),
        { name: 'advantage', data: col((r) => r.line.advantage), type: 'DOUBLE' },
        { name: 'group', data: col((r) => r.line.group), type: 'INT32', nullable: false },
        { name: 'sample', data: col((r) => r.line.sample), type: 'INT32', nullable: false },
        { name: 'answer', data: col((r) => r.line.answer), type: 'STRING' },
        { name: 'pseudo_label', data: col((r) => r.line.pseudo_label), type: 'STRING' },
        { name: 'used', data: col((r) => r.line.used), type: 'BOOLEAN', nullable: false },
        ...code,
      ],
      kvMetadata: [{ key: 'autodidact.run', value: JSON.stringify({ id: run.id, name: run.name, method: run.method, model: run.model, dataset: run.dataset }) }],
      createdBy: 'autodidact',
    });
    return new Uint8Array(buffer);
  });
}

export interface ExportResult {
  metricsFile: string;
  samplesFile: string;
  completionsFile: string;
  samples: number;
}

/** Writes `<dir>/metrics.csv`, `<dir>/samples.jsonl` and `<dir>/completions.parquet` (creating dir). */
export function exportRun(db: ExperimentDb, run: RunInfo, dir: string, layout: MetricsLayout = 'wide'): ExportResult {
  fs.mkdirSync(dir, { recursive: true });
  const metricsFile = path.join(dir, 'metrics.csv');
  const samplesFile = path.join(dir, 'samples.jsonl');
  const completionsFile = path.join(dir, 'completions.parquet');
  // One read snapshot: a run still training meanwhile is exported as of one moment.
  return db.read(`exporting run ${run.id}`, () => {
    fs.writeFileSync(metricsFile, metricsCsv(db, run.id, layout));
    const fd = fs.openSync(samplesFile, 'w');
    let samples = 0;
    try {
      for (const line of sampleLines(db, run)) {
        fs.writeSync(fd, JSON.stringify(line) + '\n');
        samples++;
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(completionsFile, completionsParquet(db, run));
    return { metricsFile, samplesFile, completionsFile, samples };
  });
}
