// `autodidact runs`, `autodidact show RUN` and `autodidact export RUN`: reading recorded runs.
import path from 'node:path';
import { listRuns, type RunInfo, tagRun } from '../db/index.ts';
import { liveRunOwner } from '../runs/owner.ts';
import { exportRun, findRun, summarizeRun } from '../runs/report.ts';
import { UsageError, choiceFlag, command, positionalArgs } from './args.ts';
import { withDatabase } from './db.ts';
import { InputError, writeLine } from './jsonl.ts';
import { fileProblem, makeOutputFolder } from './output-folder.ts';
import { printable } from './printable.ts';
import { MAX_TAG_LENGTH } from '../../contract/index.ts';

// Four significant digits without trailing zeros (0.75, not 0.7500).
const fmt = (v: number | null | undefined): string => (v == null ? '-' : String(Number(v.toPrecision(4))));

/** Steps done as "12" or "12/100" when the config says how many steps the run has. */
function progress(r: RunInfo): string {
  // The loop numbers training steps from 1 (step 0 is the validation of the starting model).
  const done = r.currentStep ?? 0;
  const total = (r.config as { steps?: unknown } | null)?.steps;
  return typeof total === 'number' ? `${done}/${total}` : String(done);
}

/**
 * A run's status as the table shows it: 'running' with no live process training it (killed, or
 * its terminal closed) reads 'interrupted', as the app marks it 'stopped' when it next starts.
 */
function shownStatus(home: string, r: Pick<RunInfo, 'id' | 'status'>): string {
  return r.status === 'running' && liveRunOwner(home, r.id) === null ? 'interrupted' : r.status;
}

export const runsCommand = command({
  name: 'runs',
  summary: 'List the recorded runs, newest first, with their tags.',
  synopsis: '[--tag TAG] [--json]',
  flags: {
    tag: { type: 'string', value: 'TAG', description: "only the runs with this tag ('autodidact runs tag' sets them)" },
    json: { type: 'boolean', description: 'print one JSON array instead of a table' },
  },
  async run(values) {
    const { runs, home } = await withDatabase((db, home) => ({ runs: listRuns(db, values.tag === undefined ? {} : { tag: values.tag.trim() }), home }));
    if (values.json) {
      await writeLine(JSON.stringify(runs));
      return 0;
    }
    if (runs.length === 0) {
      await writeLine(values.tag === undefined ? "no runs yet; start one with 'autodidact run'" : printable(`no run has the tag "${values.tag}"`));
      return 0;
    }
    const rows = runs.map((r) => [String(r.id), r.name, shownStatus(home, r), r.method, r.model, r.dataset, progress(r), fmt(r.bestMetric), r.createdAt, r.tags.join(',')]);
    const head = ['id', 'name', 'status', 'method', 'model', 'dataset', 'steps', 'best', 'created', 'tags'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    // Names and tags are a person's text: never their control characters.
    for (const r of [head, ...rows]) await writeLine(printable(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()));
    return 0;
  },
});

export const runsTagCommand = command({
  name: 'runs tag',
  summary: 'Tag a run (or with --untag remove tags), to find and group runs.',
  synopsis: 'RUN TAG... [--untag]',
  positionals: true,
  flags: {
    untag: { type: 'boolean', description: 'remove the tags instead of adding them' },
  },
  details: `RUN is a run id or a run name. A tag is one line of text of at most ${MAX_TAG_LENGTH} characters
(spaces around it are dropped); 'autodidact runs' lists each run's tags and --tag TAG filters by one.
The app's runs list shows and edits the same tags.`,
  async run(values, positionals) {
    const [ref, ...tags] = positionals;
    if (ref === undefined) throw new UsageError('missing RUN TAG...');
    if (tags.length === 0) throw new UsageError('missing TAG: name at least one tag');
    const run = await withDatabase((db) => tagRun(db, findRun(db, ref).id, values.untag ? { remove: tags } : { add: tags }));
    await writeLine(printable(`run ${run.id} "${run.name}": ${run.tags.length ? `tags ${run.tags.join(', ')}` : 'no tags'}`));
    return 0;
  },
});

export const showCommand = command({
  name: 'show',
  summary: "Show one run: configuration, status, last metrics, checkpoints and alerts.",
  synopsis: 'RUN [--json]',
  positionals: true,
  flags: {
    json: { type: 'boolean', description: 'print one JSON object' },
  },
  details: 'RUN is a run id or a run name (as listed by `autodidact runs`).',
  async run(values, positionals) {
    const [ref] = positionalArgs(positionals, ['RUN']);
    const { s, home } = await withDatabase((db, home) => ({ s: summarizeRun(db, findRun(db, ref)), home }));
    if (values.json) {
      await writeLine(JSON.stringify(s));
      return 0;
    }
    const { run } = s;
    const status = shownStatus(home, run);
    const why = status === 'interrupted' ? `no process trains it any more; continue with 'autodidact run --resume ${run.id}'` : run.error;
    await writeLine(`run ${run.id} "${run.name}": ${status}${why ? ` (${why})` : ''}`);
    await writeLine(`  method ${run.method}, model ${run.model}, dataset ${run.dataset}, steps ${progress(run)}`);
    await writeLine(`  created ${run.createdAt}, started ${run.startedAt ?? '-'}, finished ${run.finishedAt ?? '-'}`);
    if (run.tags.length) await writeLine(printable(`  tags ${run.tags.join(', ')}`));
    await writeLine('config:');
    for (const line of JSON.stringify(run.config, null, 2).split('\n')) await writeLine(`  ${line}`);
    const keys = Object.keys(s.lastMetrics).sort();
    await writeLine(keys.length ? 'last metrics:' : 'last metrics: none recorded');
    const width = Math.max(0, ...keys.map((k) => k.length));
    for (const k of keys) await writeLine(`  ${k.padEnd(width)}  ${fmt(s.lastMetrics[k].value)}  (step ${s.lastMetrics[k].step})`);
    const ck = (c: typeof s.bestCheckpoint) => (c ? `step ${c.step}${c.metric != null ? `, metric ${fmt(c.metric)}` : ''}: ${c.path}` : 'none');
    // A best at step 0 is the base model's score, which no checkpoint holds.
    const baseBest = !s.bestCheckpoint && run.bestStep === 0 && run.bestMetric !== null ? ` (the best score, ${fmt(run.bestMetric)}, is step 0's: the base model, which no checkpoint holds)` : '';
    await writeLine(`best checkpoint: ${ck(s.bestCheckpoint)}${baseBest}`);
    await writeLine(`last checkpoint: ${ck(s.lastCheckpoint)}`);
    await writeLine(s.alerts.length ? `alerts (${s.alerts.length}):` : 'alerts: none');
    for (const a of s.alerts) await writeLine(`  ${a.step === null ? '' : `step ${a.step} `}[${a.kind}] ${a.message}`);
    return 0;
  },
});

export const exportCommand = command({
  name: 'export',
  summary: "Export a run's metrics (CSV), samples (JSON Lines) and completions (Parquet) to a folder.",
  synopsis: 'RUN [--out DIR] [--layout wide|long]',
  positionals: true,
  flags: {
    out: { type: 'string', value: 'DIR', description: 'folder to write into (default: ./run-<id>-export)' },
    layout: { type: 'string', value: 'wide|long', default: 'wide', description: 'metrics.csv layout' },
  },
  details: `
Writes DIR/metrics.csv, DIR/samples.jsonl and DIR/completions.parquet (the app's run view
exports the same three files).
metrics.csv, wide: a header "step,<key>,<key>,..." (keys sorted, e.g. train/majority_ratio) and
one row per step; a cell is empty where that step did not record the metric (validation metrics
exist only on evaluation steps). long: "step,key,value" rows ordered by step then key.
samples.jsonl: one line per sample, in step, group and sample order, with the fields step, group,
item_idx, prompt, pseudo_label (the group's majority answer, null where it got none; in a run
started from reviewed labels, the person's label where the group took one, marked by
label_source "review"), label (the
item's hidden answer, evaluation-only; null where the dataset has none), label_correct, sample,
text, answer (the answer extracted from this sample), reward, advantage and used (whether the
sample was in the training down-sample).
completions.parquet: the samples as TRL's completions log has them (GRPOTrainer's
log_completions): step, prompt, completion, reward, reward/<part> for each part of the reward a
method reports, advantage, then group, sample, answer, pseudo_label and used.`,
  async run(values, positionals) {
    const [ref] = positionalArgs(positionals, ['RUN']);
    const layout = choiceFlag(values, 'layout', ['wide', 'long'] as const, 'wide');
    const result = await withDatabase((db) => {
      const run = findRun(db, ref);
      const out = path.resolve(values.out ?? `run-${run.id}-export`);
      makeOutputFolder(out);
      try {
        return exportRun(db, run, out, layout);
      } catch (e) {
        // A file-system error (a system call's); the database's own errors say what they are.
        if ((e as NodeJS.ErrnoException).syscall === undefined) throw e;
        throw new InputError(`cannot write the export into ${out}: ${fileProblem(e)}`);
      }
    });
    await writeLine(`wrote ${result.metricsFile}`);
    await writeLine(`wrote ${result.samplesFile} (${result.samples} samples)`);
    await writeLine(`wrote ${result.completionsFile}`);
    return 0;
  },
});
