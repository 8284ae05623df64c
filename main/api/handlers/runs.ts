// Runs: the New-run form's settings, creating (and launching) a run, the runs list and detail,
// pause / resume / stop / delete through the run manager, metrics and the log.
import fs from 'node:fs';
import { z } from 'zod';
import { ApiError, type ExportedFile, MAX_EXPORT_BYTES, type MethodCatalog, modelsAddCommand, type RunSettingInfo, type RunView } from '../../../contract/index.ts';
import {
  type RunInfo,
  countReviews,
  deleteRun,
  getDataset,
  getRun,
  listAlerts,
  listCheckpoints,
  listRuns,
  listSteps,
  metricKeys,
  queryMetrics,
  stepTimeline,
  tagRun,
  updateRunStatus,
} from '../../db/index.ts';
import { ARITHMETIC_DATASET_NAME, type ArithmeticDifficulty } from '../../engine/tasks/generators.ts';
import { codeDatasetLanguage } from '../../engine/tasks/code-generators.ts';
import { issuesText } from '../../issues.ts';
import { CommonRunConfigSchema, checkRunConfig, describeRunConfig } from '../../engine/rl/config.ts';
import { CHARTS, RUN_METRICS } from '../../engine/rl/metrics.ts';
import { listMethods } from '../../engine/rl/methods/registry.ts';
import { runDir } from '../../runs/home.ts';
import { storedConfig } from '../../runs/key-metric.ts';
import { restartRefusal, stepsLostOnResume } from '../../runs/resume.ts';
import { type RunOwner, liveRunOwner, requestControl } from '../../runs/owner.ts';
import { previewPrompt } from '../../runs/prompt-preview.ts';
import { completionsParquet, metricsCsv, samplesJsonl } from '../../runs/report.ts';
import { DEFAULT_DIFFICULTY, type RunTarget, createRecordedRun, externalRunRefusal, setRunReviewsOf, unknownDatasetMessage } from '../../runs/start.ts';
import { knownModel, unknownModelMessage } from '../models.ts';
import { toRunView } from '../run-view.ts';
import { type ApiDeps, type HandlerTable } from './types.ts';

export function runOrThrow(deps: ApiDeps, id: number): RunInfo {
  const run = getRun(deps.db, id);
  if (!run) throw new ApiError('NOT_FOUND', `There is no run ${id}; it may have been deleted.`);
  return run;
}

const view = (deps: ApiDeps, run: RunInfo): RunView => toRunView(deps.db, run, deps.runs.progress(run.id));
const fresh = (deps: ApiDeps, id: number): RunView => view(deps, runOrThrow(deps, id));

type JsonSchema = { type?: string; enum?: unknown[]; items?: JsonSchema; minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number };

/** The JSON schema of each setting: the common ones' and every method's own. */
function settingSchemas(): Record<string, JsonSchema> {
  const props = (schema: z.ZodObject) => (z.toJSONSchema(schema, { io: 'input' }) as { properties: Record<string, JsonSchema> }).properties;
  return Object.assign(props(CommonRunConfigSchema), ...listMethods().map((m) => props(m.settings)));
}

/** The New-run form's fields, derived from the run configuration's own schemas (so they cannot drift from them). */
export function runSettings(): RunSettingInfo[] {
  const props = settingSchemas();
  return describeRunConfig().map((d) => {
    const s = props[d.name] ?? {};
    const info: RunSettingInfo = { name: d.name, default: d.default, description: d.description, kind: 'number', ...(d.method !== undefined && { method: d.method }) };
    if (d.name === 'method') {
      // A string checked against the registry: the form offers the registered ones.
      info.kind = 'enum';
      info.options = listMethods().map((m) => m.id);
    } else if (s.type === 'array') {
      info.kind = s.items?.enum ? 'enum-list' : 'string-list';
      if (s.items?.enum) info.options = s.items.enum.map(String);
    } else if (s.enum) {
      info.kind = 'enum';
      info.options = s.enum.map(String);
    } else if (s.type === 'boolean') info.kind = 'boolean';
    else if (s.type === 'string') info.kind = 'text';
    else if (s.type === 'integer') info.kind = 'integer';
    // Exclusive bounds are reported as the bound itself: the form only hints, the server checks.
    const min = s.minimum ?? s.exclusiveMinimum;
    const max = s.maximum ?? s.exclusiveMaximum;
    if (min !== undefined && Math.abs(min) < Number.MAX_SAFE_INTEGER) info.min = min;
    if (max !== undefined && Math.abs(max) < Number.MAX_SAFE_INTEGER) info.max = max;
    return info;
  });
}

/** The registry as the app sees it: methods, the metric table (common, then each method's) and the charts. */
export function methodCatalog(): MethodCatalog {
  const metric = (m: (typeof RUN_METRICS)[number], method: string | null) => ({
    key: m.key,
    label: m.label,
    description: m.description,
    chart: m.chart,
    unit: m.unit ?? false,
    groundTruth: m.groundTruth ?? false,
    method,
  });
  const methods = listMethods();
  return {
    methods: methods.map((m) => ({ id: m.id, label: m.label, description: m.description, pipeline: m.pipeline, settings: Object.keys(m.settings.shape), defaults: { ...m.defaults } })),
    metrics: [...RUN_METRICS.map((x) => metric(x, null)), ...methods.flatMap((m) => m.metrics.map((x) => metric(x, m.id)))],
    charts: [...CHARTS, ...methods.flatMap((m) => m.charts ?? [])].map((c) => ({ id: c.id, title: c.title, hint: c.hint, unit: c.unit ?? false, ...(c.when && { when: c.when }) })),
  };
}

/**
 * The model a request names, as a run stores it: a built-in model's name, or an added model's
 * folder (named by its name or by the path models.list lists). Anything else is refused in the
 * same words whether or not a folder of that name exists: a request never reaches the file
 * system by path, and learns nothing about it.
 */
function requestedModel(deps: ApiDeps, model: string): string {
  const known = knownModel(deps.db, model);
  if (known !== null) return known;
  const addHow = deps.pickFolder ? 'Add the folder in Models first (Add a model folder…).' : `Add it on the machine running the app: ${modelsAddCommand(deps.home)}.`;
  throw new ApiError('SETUP', unknownModelMessage(deps.db, model, addHow));
}

/** A stored dataset's name or the built-in generator's; never a file (see unknownDatasetMessage). */
function requestedDataset(deps: ApiDeps, dataset: string): string {
  if (dataset === ARITHMETIC_DATASET_NAME || codeDatasetLanguage(dataset) || getDataset(deps.db, dataset)) return dataset;
  throw new ApiError('SETUP', unknownDatasetMessage(dataset));
}

/** The dataset of a run the API creates is never read from a path, even if it is deleted meanwhile. */
const NO_FILES = { files: false } as const;

const TARGET_FIELDS = ['model', 'dataset', 'device', 'difficulty', 'reviewsOf', 'reviewsFrom', 'name'];

function refuseActive(deps: ApiDeps, run: RunInfo, doing: string): void {
  if (deps.runs.isActive(run.id)) {
    throw new ApiError('CONFLICT', `Run ${run.id} ("${run.name}") is ${run.status === 'queued' ? 'queued' : 'training'}; stop or pause it before you ${doing} it.`);
  }
}

/** A run imported from a cluster is only read here: pausing or resuming it means nothing. */
function refuseExternal(run: RunInfo, doing: string): void {
  const refusal = externalRunRefusal(run, doing);
  if (refusal) throw new ApiError('CONFLICT', refusal);
}

/** The live process other than this one training a run (e.g. `autodidact run` in a terminal), or null. */
function otherTrainer(deps: ApiDeps, run: RunInfo): RunOwner | null {
  if (deps.runs.isActive(run.id)) return null;
  const owner = liveRunOwner(deps.home, run.id);
  return owner && owner.pid !== process.pid ? owner : null;
}

/** How long a stop or pause waits for another process to finish its step before answering. */
const OTHER_TRAINER_WAIT_MS = 30_000;
/** After that, how long its end is still watched for, to announce the run's new status. */
const OTHER_TRAINER_FOLLOW_MS = 6 * 3600_000;

/** Resolves true once no live process owns the run, false after `ms`. */
async function trainerGone(deps: ApiDeps, runId: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (liveRunOwner(deps.home, runId)) {
    if (Date.now() >= end) return false;
    // Unref'd: a pending watch never keeps the app from exiting.
    await new Promise<void>((r) => setTimeout(r, 200).unref());
  }
  return true;
}

/**
 * Asks the other process training a run to stop or pause after its step (it saves a checkpoint
 * there and records the status), waits for it, and announces the run's new status. A step that
 * takes longer than the wait is answered with the run as it is (still running), and its end is
 * announced when it comes.
 */
async function askOtherTrainer(deps: ApiDeps, run: RunInfo, action: 'stop' | 'pause'): Promise<RunView> {
  requestControl(deps.home, run.id, action);
  const announce = () => {
    const now = getRun(deps.db, run.id);
    if (now) deps.events.emit('run.status', { run: view(deps, now) });
  };
  if (!(await trainerGone(deps, run.id, OTHER_TRAINER_WAIT_MS))) {
    void trainerGone(deps, run.id, OTHER_TRAINER_FOLLOW_MS).then(announce, () => {});
  } else announce();
  return fresh(deps, run.id);
}

export const runHandlers = {
  'runs.settings': () => runSettings(),
  'runs.methods': () => methodCatalog(),

  'runs.create': async (p, deps) => {
    // The loop settings are checked here so a form gets each problem at its field.
    const misplaced = Object.keys(p.config).filter((k) => TARGET_FIELDS.includes(k));
    if (misplaced.length) {
      throw new ApiError(
        'BAD_REQUEST',
        `${misplaced.join(', ')} ${misplaced.length > 1 ? 'are' : 'is'} not a loop setting; give ${misplaced.length > 1 ? 'them' : 'it'} as a field of the request`,
        misplaced.map((k) => ({ path: `config.${k}`, message: 'not a loop setting' })),
      );
    }
    // Every setting and the checks across them, as the form's runs.checkConfig shows them: the
    // one check of the run's settings (the contract has checked the request's other fields).
    const checked = checkRunConfig(p.config, { strict: true });
    if (checked.problems) {
      const issues = checked.problems.map((x) => ({ path: `config.${x.setting}`, message: x.message }));
      throw new ApiError('BAD_REQUEST', `The run settings need a change: ${issuesText(issues)}`, issues);
    }
    if (p.reviewsOf !== undefined) runOrThrow(deps, p.reviewsOf);
    const target: RunTarget = {
      model: requestedModel(deps, p.model),
      dataset: requestedDataset(deps, p.dataset),
      device: p.device ?? deps.settings.get().defaultDevice,
      difficulty: (p.difficulty ?? DEFAULT_DIFFICULTY) as ArithmeticDifficulty,
      ...(p.reviewsOf !== undefined && { reviewsOf: p.reviewsOf }),
    };
    // Everything that can be refused is checked before the run is recorded: the model, the
    // dataset, the reviews' run, and prompts that do not fit the model's context with
    // maxNewTokens (refused naming them, unless the run skips or truncates them: its log then
    // says which, from the engine).
    const { run: created } = await createRecordedRun(deps.db, deps.home, checked.config, target, p.name, NO_FILES);
    // A run saved without starting is 'paused', not 'queued': nothing queues it, and 'queued'
    // would look as if it were about to start. It has no steps, so resuming it starts it afresh.
    const run = p.start ? created : updateRunStatus(deps.db, created.id, 'paused');
    deps.events.emit('run.status', { run: view(deps, run) });
    if (p.start) deps.runs.start(run.id, { resume: false });
    return fresh(deps, run.id);
  },

  'runs.checkConfig': (p) => ({ problems: checkRunConfig(p.config, { strict: true }).problems ?? [] }),

  'runs.list': (_p, deps) => listRuns(deps.db).map((r) => view(deps, r)),

  'runs.tag': (p, deps) => {
    const v = view(deps, tagRun(deps.db, runOrThrow(deps, p.id).id, p));
    deps.events.emit('run.status', { run: v });
    return v;
  },

  'runs.get': (p, deps) =>
    deps.db.read(`reading run ${p.id}`, () => {
      const run = runOrThrow(deps, p.id);
      return {
        run: view(deps, run),
        metricKeys: metricKeys(deps.db, run.id),
        steps: listSteps(deps.db, run.id),
        // The loop keeps one folder per kind and prunes the older ones: list those still on disk.
        checkpoints: listCheckpoints(deps.db, run.id)
          .filter((c) => fs.existsSync(c.path))
          .map((c) => ({ step: c.step, kind: c.kind, path: c.path, metric: c.metric })),
        alerts: listAlerts(deps.db, run.id).map((a) => ({ id: a.id, step: a.step, kind: a.kind, message: a.message, createdAt: a.createdAt })),
      };
    }),

  'runs.pause': async (p, deps) => {
    const run = runOrThrow(deps, p.id);
    refuseExternal(run, 'pause');
    if (otherTrainer(deps, run)) return askOtherTrainer(deps, run, 'pause');
    if (!deps.runs.isActive(run.id)) throw new ApiError('CONFLICT', `Run ${run.id} is ${run.status}, not training; only a running or queued run can pause.`);
    await deps.runs.pause(run.id);
    return fresh(deps, run.id);
  },

  'runs.resume': (p, deps) => {
    const run = runOrThrow(deps, p.id);
    refuseExternal(run, 'resume');
    refuseActive(deps, run, 'resume');
    if (run.status === 'completed') throw new ApiError('CONFLICT', `Run ${run.id} has completed; there is nothing to resume. Start a new run with its settings instead.`);
    const lost = p.restart ? null : stepsLostOnResume(deps.db, run);
    if (lost !== null) throw new ApiError('CONFLICT', restartRefusal(run, lost, 'Restart it to do so (Resume asks first), or keep its steps and train a copy (Clone).'));
    // true: the labels of the run's own reviews replace its votes from here on; false: back to votes only.
    if (p.reviewsOfItself !== undefined) setRunReviewsOf(deps.db, run.id, p.reviewsOfItself ? run.id : null);
    deps.runs.start(run.id, { resume: true });
    return fresh(deps, run.id);
  },

  'runs.stop': async (p, deps) => {
    const run = runOrThrow(deps, p.id);
    // Another process trains it: only that process can stop it (writing 'stopped' here would not).
    if (otherTrainer(deps, run)) return askOtherTrainer(deps, run, 'stop');
    // The manager reports the status of runs it drives; only a change made here is announced here.
    if (deps.runs.isActive(run.id)) {
      await deps.runs.stop(run.id);
      return fresh(deps, run.id);
    }
    if (run.status === 'completed' || run.status === 'failed' || run.status === 'stopped') {
      throw new ApiError('CONFLICT', `Run ${run.id} has already ended (${run.status}).`);
    }
    // Paused (or left 'running' by an app that was killed): nothing trains it, so the record alone changes.
    const v = view(deps, updateRunStatus(deps.db, run.id, 'stopped'));
    deps.events.emit('run.status', { run: v });
    return v;
  },

  'runs.delete': (p, deps) => {
    const run = runOrThrow(deps, p.id);
    refuseActive(deps, run, 'delete');
    const other = otherTrainer(deps, run);
    if (other) {
      throw new ApiError(
        'CONFLICT',
        `Run ${run.id} ("${run.name}") is being trained by another process (pid ${other.pid}, since ${other.startedAt}, e.g. 'autodidact run' in a terminal); stop it first (Stop here asks that process to stop after its step), then delete it.`,
      );
    }
    // A person's reviews go only when the person said so; another run's labels never.
    const users = listRuns(deps.db).filter((r) => r.id !== run.id && r.status !== 'completed' && storedConfig(r).reviewsOf === run.id);
    if (users.length) {
      throw new ApiError(
        'CONFLICT',
        `Run ${run.id} ("${run.name}") gives its reviewed labels to ${users.map((r) => `run #${r.id} ("${r.name}", ${r.status})`).join(', ')}; deleting it would leave ${users.length > 1 ? 'those runs' : 'that run'} unable to resume. Delete or finish ${users.length > 1 ? 'them' : 'it'} first.`,
      );
    }
    const reviews = countReviews(deps.db, run.id);
    if (reviews > 0 && !p.discardReviews) {
      throw new ApiError(
        'CONFLICT',
        `Run ${run.id} ("${run.name}") holds ${reviews} review${reviews === 1 ? '' : 's'} a person made; deleting the run deletes ${reviews === 1 ? 'it' : 'them'}. Confirm with discardReviews (the app's delete button names them), or keep the run.`,
      );
    }
    const deleted = deleteRun(deps.db, run.id);
    // The record goes first: a checkpoint folder without a run is only wasted space, the reverse a broken run.
    fs.rmSync(runDir(deps.home, run.id), { recursive: true, force: true });
    return { deleted };
  },

  'runs.metrics': (p, deps) => {
    runOrThrow(deps, p.id);
    return queryMetrics(deps.db, p.id, { keys: p.keys, fromStep: p.afterStep === undefined ? undefined : p.afterStep + 1 }).map((m) => ({
      step: m.step,
      key: m.key,
      value: Number.isNaN(m.value) ? null : m.value,
    }));
  },

  'runs.log': (p, deps) => {
    runOrThrow(deps, p.id);
    return deps.runs.log(p.id, p.tail);
  },

  'runs.timeline': (p, deps) => {
    runOrThrow(deps, p.id);
    return stepTimeline(deps.db, p.id, p.afterStep);
  },

  'runs.export': (p, deps) =>
    deps.db.read(`exporting run ${p.id}`, (): ExportedFile => {
      const run = runOrThrow(deps, p.id);
      const base = `run-${run.id}`;
      let file: ExportedFile;
      if (p.kind === 'completions') {
        const bytes = completionsParquet(deps.db, run);
        tooLarge(run.id, bytes.byteLength);
        file = { fileName: `${base}-completions.parquet`, mediaType: 'application/vnd.apache.parquet', encoding: 'base64', data: Buffer.from(bytes).toString('base64') };
      } else {
        const text = p.kind === 'metrics' ? metricsCsv(deps.db, run.id, p.layout) : samplesJsonl(deps.db, run);
        file = p.kind === 'metrics' ? { fileName: `${base}-metrics.csv`, mediaType: 'text/csv', encoding: 'utf-8', data: text } : { fileName: `${base}-samples.jsonl`, mediaType: 'application/jsonl', encoding: 'utf-8', data: text };
        tooLarge(run.id, Buffer.byteLength(text));
      }
      return file;
    }),

  'runs.previewPrompt': (p, deps) =>
    previewPrompt(deps.db, deps.home, { ...p, model: requestedModel(deps, p.model), ...(p.dataset !== undefined && { dataset: requestedDataset(deps, p.dataset) }) }),
} satisfies HandlerTable<
  | 'runs.settings'
  | 'runs.methods'
  | 'runs.checkConfig'
  | 'runs.create'
  | 'runs.previewPrompt'
  | 'runs.list'
  | 'runs.tag'
  | 'runs.get'
  | 'runs.pause'
  | 'runs.resume'
  | 'runs.stop'
  | 'runs.delete'
  | 'runs.metrics'
  | 'runs.log'
  | 'runs.timeline'
  | 'runs.export'
>;

/** An export too large for one message is refused with the command that writes it to a folder instead. */
function tooLarge(runId: number, bytes: number): void {
  if (bytes <= MAX_EXPORT_BYTES) return;
  throw new ApiError(
    'CONFLICT',
    `This export of run ${runId} is ${(bytes / 2 ** 20).toFixed(0)} MiB, more than the ${MAX_EXPORT_BYTES / 2 ** 20} MiB the app hands over at once; ` +
      `write it to a folder with \`autodidact export ${runId} --out DIR\`.`,
  );
}
