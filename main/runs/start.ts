// Starting and resuming a training run recorded in the experiment database: resolve the model
// and dataset, record the run, drive the run loop with a database sink, and keep the run's
// status true to what happened (running → completed / stopped / failed with its error).
import fs from 'node:fs';
import path from 'node:path';
import {
  DatabaseError,
  type DatasetInfo,
  type ExperimentDb,
  type RunInfo,
  createRun,
  deleteStepsAfter,
  deleteSvdRoundsAfter,
  evaluationAnswers,
  getDataset,
  getRollout,
  getRun,
  importDataset,
  lastCompletedStep,
  latestCheckpoint,
  listDatasets,
  listItems,
  listReviews,
  setRunConfig,
  updateRunStatus,
} from '../db/index.ts';
import { resolveModelPath } from '../engine/model-paths.ts';
import type { LoopItem, LoopModel, LoopProgress, LoopResult, RunConfig, StepRecord } from '../engine/rl/index.ts';
import type { TaskRef } from '../engine/envs/types.ts';
import type { AgentSettings } from '../engine/rl/methods/agent.ts';
import { checkRunConfig, describeRunConfig, methodOf, parseRunConfig } from '../engine/rl/config.ts';
import { hostHalf } from '../engine/runtime/precision.ts';
import { SVD_MODEL_FILE } from '../engine/rl/methods/svd.ts';
import { closeCodeSandbox } from '../engine/rl/methods/code-consensus.ts';
import { type ContextLimit, type LongPromptPolicy, LongPromptError, type PromptFormat, encodePrompt, fitPrompts, fittedSummary } from '../engine/rl/prompts.ts';
import type { TextTokenizer } from '../engine/nn/tokenizer.ts';
import { type DeviceRequest, resolveDevice } from '../engine/runtime/devices.ts';
import { removeInterruptedSaves } from '../engine/runtime/checkpoints.ts';
import { ARITHMETIC_DATASET_NAME, ARITHMETIC_LEVELS, type ArithmeticDifficulty, arithmeticItems } from '../engine/tasks/generators.ts';
import { CODE_DATASETS, CODE_EVAL, CODE_TRAIN, codeDatasetLanguage, codeTaskItems } from '../engine/tasks/code-generators.ts';
import type { SandboxLanguage } from '../sandbox/protocol.ts';
import { issuesText } from '../issues.ts';
import { ENVIRONMENT_SPECS_HINT, ensureEnvironmentDataset, parseEnvironmentSpec, taskOfItem } from './agent-data.ts';
import { importDatasetFile } from './datasets.ts';
import { modelsDir, runDir } from './home.ts';
import { keyMetricName, storedConfig } from './key-metric.ts';
import { type ControlRequest, claimRun, clearControlRequest, controlRequest, liveRunOwner } from './owner.ts';
import { checkpointLoopStep, databaseSink } from './sink.ts';
import { svdStore } from './svd-store.ts';

/** A run's settings beyond the loop's own configuration (where it runs, on what). */
export interface RunTarget {
  model: string;
  dataset: string;
  device: DeviceRequest;
  /** Difficulty of the built-in arithmetic dataset. */
  difficulty: ArithmeticDifficulty;
  /** A run (on the same dataset) whose reviews' labels replace the model's votes for those prompts: "the reviews of run N". */
  reviewsOf?: number;
}

export const DEVICES: readonly DeviceRequest[] = ['cpu', 'webgpu', 'cuda', 'auto'];
/** The built-in arithmetic dataset's difficulty when a run names none. */
export const DEFAULT_DIFFICULTY: ArithmeticDifficulty = 2;
const TARGET_KEYS = ['model', 'dataset', 'device', 'difficulty', 'reviewsOf', 'name'] as const;
/** Earlier names of settings, still read from config files (the stored config: storedConfig). */
const LEGACY_KEYS: Record<string, string> = { reviewsFrom: 'reviewsOf' };
/** Sizes of the built-in arithmetic dataset as a run stores it. */
export const ARITHMETIC_TRAIN = 512;
export const ARITHMETIC_EVAL = 64;

/** What a run stores as its config: the loop configuration and the target, flat, so it can be re-read for a resume. */
export type StoredConfig = RunConfig & Omit<RunTarget, 'difficulty'> & { difficulty?: ArithmeticDifficulty };

/** A run configuration from JSON (a --config file, or merged flags): unknown keys are mistakes, not ignored. */
export function parseStoredConfig(input: Record<string, unknown>, where: string): { config: RunConfig; target: RunTarget; name?: string } {
  for (const [legacy, name] of Object.entries(LEGACY_KEYS)) {
    if (!(legacy in input)) continue;
    if (name in input) throw new RunSetupError(`${where}: give ${name} only (${legacy} is its earlier name)`);
    const { [legacy]: value, ...rest } = input;
    input = { ...rest, [name]: value };
  }
  const known = new Set<string>([...describeRunConfig().map((d) => d.name), ...TARGET_KEYS]);
  const unknown = Object.keys(input).filter((k) => !known.has(k));
  if (unknown.length) throw new RunSetupError(`${where}: unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (settings: ${[...known].join(', ')})`);
  const { model, dataset, device = 'cpu', difficulty = DEFAULT_DIFFICULTY, reviewsOf, name, ...rest } = input;
  if (typeof model !== 'string' || !model) throw new RunSetupError(`${where}: no model (give --model NAME|DIR or "model" in the config file)`);
  if (typeof dataset !== 'string' || !dataset) throw new RunSetupError(`${where}: no dataset (give --dataset NAME|FILE, e.g. ${ARITHMETIC_DATASET_NAME}, or "dataset" in the config file)`);
  if (!DEVICES.includes(device as DeviceRequest)) throw new RunSetupError(`${where}: device must be one of ${DEVICES.join(', ')}, got ${JSON.stringify(device)}`);
  if (!(String(difficulty) in ARITHMETIC_LEVELS)) throw new RunSetupError(`${where}: difficulty must be 1, 2, 3 or 4, got ${JSON.stringify(difficulty)}`);
  if (name !== undefined && typeof name !== 'string') throw new RunSetupError(`${where}: name must be a string`);
  if (reviewsOf !== undefined && reviewsOf !== null && !(Number.isInteger(reviewsOf) && (reviewsOf as number) >= 0)) {
    throw new RunSetupError(`${where}: reviewsOf must be a run id, got ${JSON.stringify(reviewsOf)}`);
  }
  const checked = checkRunConfig(rest);
  if (checked.problems) throw new RunSetupError(`${where}: ${issuesText(checked.problems)}`);
  const config = checked.config;
  const target: RunTarget = { model, dataset, device: device as DeviceRequest, difficulty: Number(difficulty) as ArithmeticDifficulty };
  if (typeof reviewsOf === 'number') target.reviewsOf = reviewsOf;
  return { config, target, name };
}

/** A run that cannot start as asked; the message says what to change. */
export class RunSetupError extends Error {
  override name = 'RunSetupError';
}

interface RunData {
  datasetId: number;
  datasetName: string;
  items: LoopItem[];
  /** dataset_items.idx of each training item. */
  itemIdx: number[];
  validation: { prompt: string; answer: string }[];
  /** dataset_items.idx of each validation item. */
  validationIdx: number[];
}

/** The built-in generator's problems (train and labeled eval splits) stored as a dataset named `name`. */
export function importArithmeticDataset(db: ExperimentDb, name: string, difficulty: ArithmeticDifficulty, seed: number): DatasetInfo {
  const common = { difficulty, seed };
  const items = [
    ...arithmeticItems({ ...common, count: ARITHMETIC_TRAIN, split: 'train' }).map((it) => ({ ...it, split: 'train' as const })),
    ...arithmeticItems({ ...common, count: ARITHMETIC_EVAL, split: 'eval' }).map((it) => ({ ...it, split: 'eval' as const })),
  ];
  return importDataset(db, { name, source: `generator:${ARITHMETIC_DATASET_NAME}`, fieldMapping: common }, items);
}

/** The built-in code tasks (`code-functions`, `code-functions-js`) stored as a dataset named `name`; hidden tests are the answers. */
export function importCodeDataset(db: ExperimentDb, name: string, generator: string, language: SandboxLanguage, seed: number): DatasetInfo {
  const items = [
    ...codeTaskItems({ language, seed, count: CODE_TRAIN, split: 'train' }).map((it) => ({ ...it, split: 'train' as const })),
    ...codeTaskItems({ language, seed, count: CODE_EVAL, split: 'eval' }).map((it) => ({ ...it, split: 'eval' as const })),
  ];
  return importDataset(db, { name, source: `generator:${generator}`, fieldMapping: { language, seed } }, items);
}

/** Where a run's dataset may come from besides the database: `files` false (the API) never reads a path. */
export interface DatasetSources {
  files?: boolean;
}

/**
 * The dataset a run names, stored in the database if it is not yet: the built-in arithmetic
 * generator (per difficulty and seed), a dataset imported before, or (unless `files` is false) a
 * file, imported now.
 */
export function ensureDataset(db: ExperimentDb, spec: string, target: Pick<RunTarget, 'difficulty'>, seed: number, { files = true }: DatasetSources = {}): number {
  if (spec === ARITHMETIC_DATASET_NAME) {
    const name = `${ARITHMETIC_DATASET_NAME}-d${target.difficulty}-s${seed}`;
    return getDataset(db, name)?.id ?? importArithmeticDataset(db, name, target.difficulty, seed).id;
  }
  const codeLanguage = codeDatasetLanguage(spec);
  if (codeLanguage) {
    const name = `${spec}-s${seed}`;
    return getDataset(db, name)?.id ?? importCodeDataset(db, name, spec, codeLanguage, seed).id;
  }
  const envSpec = parseEnvironmentSpec(spec);
  if (envSpec) return ensureEnvironmentDataset(db, envSpec, seed).id;
  const byName = getDataset(db, spec);
  if (byName) return byName.id;
  if (files && fs.existsSync(spec) && fs.statSync(spec).isFile()) {
    const source = path.resolve(spec);
    const same = listDatasets(db).find((d) => d.source === source);
    if (same) return same.id;
    return importDatasetFile(db, spec).dataset.id;
  }
  const names = listDatasets(db).map((d) => d.name);
  if (!files) throw new RunSetupError(unknownDatasetMessage(spec));
  throw new RunSetupError(
    `dataset "${spec}" is neither a file, a built-in one (${BUILTIN_DATASETS_HINT}), nor an imported dataset` +
      (names.length ? ` (imported: ${names.join(', ')})` : " (none imported yet: 'autodidact datasets import FILE')"),
  );
}

/** The datasets a run may name without importing anything. */
const BUILTIN_DATASETS_HINT = `"${ARITHMETIC_DATASET_NAME}" (generated sums), ${Object.keys(CODE_DATASETS).map((n) => `"${n}"`).join(', ')} (code tasks), and for --method agent ${ENVIRONMENT_SPECS_HINT}`;

/** The refusal of a dataset name the database lacks, where no file is read: the same words whether or not such a file exists. */
export function unknownDatasetMessage(spec: string): string {
  return (
    `dataset "${spec}" is not one of the app's datasets (nor a built-in one: ${BUILTIN_DATASETS_HINT}); a request names a dataset, never a file. ` +
    "To train on a file, import it first (Datasets: the page uploads its contents; or 'autodidact datasets import FILE' on the app's machine), " +
    "or start the run from a terminal there: 'autodidact run --dataset FILE'."
  );
}

function loadRunData(db: ExperimentDb, datasetId: number): RunData {
  const info = getDataset(db, datasetId);
  if (!info) throw new DatabaseError('NOT_FOUND', `the run's dataset (id ${datasetId}) was deleted`);
  // Hidden labels go to the loop only for its ground-truth diagnostics and validation.
  const answers = evaluationAnswers(db, datasetId);
  const train = listItems(db, datasetId, { split: 'train' }).items;
  if (train.length === 0) throw new RunSetupError(`dataset "${info.name}" has no training items`);
  const evalItems = listItems(db, datasetId, { split: 'eval' }).items.filter((it) => answers.has(it.idx));
  return {
    datasetId,
    datasetName: info.name,
    items: train.map((it) => ({ prompt: it.prompt, answer: answers.get(it.idx) ?? null })),
    itemIdx: train.map((it) => it.idx),
    validation: evalItems.map((it) => ({ prompt: it.prompt, answer: answers.get(it.idx)! })),
    validationIdx: evalItems.map((it) => it.idx),
  };
}

/** An agent run's tasks: the dataset's items as environment tasks (train, and the held-out eval split). */
export function agentTasks(db: ExperimentDb, datasetId: number, method: string): { train: TaskRef[]; trainIdx: number[]; eval: TaskRef[] } {
  const info = getDataset(db, datasetId);
  if (!info) throw new DatabaseError('NOT_FOUND', `the run's dataset (id ${datasetId}) was deleted`);
  const read = (split: 'train' | 'eval') => listItems(db, datasetId, { split }).items.map((it) => ({ idx: it.idx, task: taskOfItem(it) }));
  const train = read('train');
  const evalItems = read('eval');
  const bad = [...train, ...evalItems].find((x) => x.task === null);
  if (bad || train.length === 0) {
    throw new RunSetupError(
      `method ${method} trains in an environment, and dataset "${info.name}" ${bad ? `is not an environment's tasks (item ${bad.idx} names no task)` : 'has no training tasks'}; give --dataset ${ENVIRONMENT_SPECS_HINT}`,
    );
  }
  return { train: train.map((x) => x.task!), trainIdx: train.map((x) => x.idx), eval: evalItems.map((x) => x.task!) };
}

/**
 * The run's prompts against the model's context, with the run's longPrompts policy applied:
 * the data the loop gets (without skipped prompts, with truncated ones cut) and a line on what
 * changed. Throws a RunSetupError naming the dataset items when the policy is 'fail'.
 */
export function fitRunData(
  data: RunData,
  tok: Pick<TextTokenizer, 'encode' | 'applyChatTemplate'>,
  limit: ContextLimit,
  policy: LongPromptPolicy,
  format: PromptFormat,
): { data: RunData; notes: string[] } {
  // Counted as the loop will encode them (a chat template's tokens included).
  const encode = (text: string) => encodePrompt(tok, text, format);
  // What a chat template adds around every prompt, so no prompt is passed on its length alone without it.
  const wrapper = format === 'chat' ? encode('').length : 0;
  try {
    const train = fitPrompts(data.items, encode, limit, policy, (i) => `item ${data.itemIdx[i]} (train, "${preview(data.items[i].prompt)}")`, wrapper);
    const val = fitPrompts(data.validation, encode, limit, policy, (i) => `item ${data.validationIdx[i]} (eval, "${preview(data.validation[i].prompt)}")`, wrapper);
    if (train.kept.length === 0) throw new RunSetupError(`every training prompt of dataset "${data.datasetName}" is longer than ${train.maxPromptTokens} tokens and was skipped; nothing is left to train on`);
    return {
      data: {
        ...data,
        items: train.kept,
        itemIdx: train.keptIndex.map((i) => data.itemIdx[i]),
        validation: val.kept,
        validationIdx: val.keptIndex.map((i) => data.validationIdx[i]),
      },
      notes: [fittedSummary('training prompts', train), fittedSummary('validation prompts', val)].filter((n): n is string => n !== null),
    };
  } catch (e) {
    if (e instanceof LongPromptError) throw new RunSetupError(`dataset "${data.datasetName}": ${e.message}`);
    throw e;
  }
}

const preview = (text: string) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 40 ? `${flat.slice(0, 40)}…` : flat;
};

/** What the context check needs of a model folder: its context length and its tokenizer, without its weights. */
async function modelContext(dir: string): Promise<{ contextLength: number; tokenizer: TextTokenizer }> {
  const [{ parseConfig }, { readJson }, { TextTokenizer }] = await Promise.all([import('../engine/nn/config.ts'), import('../engine/nn/hf-model.ts'), import('../engine/nn/tokenizer.ts')]);
  const configFile = path.join(dir, 'config.json');
  const config = parseConfig(await readJson(configFile, 'config.json'), configFile);
  const tokenizer = await TextTokenizer.fromFolder(dir);
  if (!tokenizer) throw new RunSetupError(`${dir} has no tokenizer.json; a run needs the model's tokenizer to read prompts`);
  return { contextLength: config.maxPositionEmbeddings, tokenizer };
}

/**
 * The launch check (before a run is recorded): the dataset's prompts against the model's context
 * and the run's maxNewTokens, then the method's own check against the model. Throws a
 * RunSetupError naming the items that do not fit when the run's longPrompts is 'fail'; else
 * returns what the run will do about them (a line each).
 */
async function launchCheck(db: ExperimentDb, dir: string, datasetId: number, config: RunConfig): Promise<string[]> {
  // An agent's prompts are built turn by turn from its environment; its episodes end where the model's context does.
  if (methodOf(config).pipeline === 'agent-episodes') {
    agentTasks(db, datasetId, config.method);
    return [];
  }
  const { contextLength, tokenizer } = await modelContext(dir);
  const model = path.basename(dir);
  const fitted = fitRunData(loadRunData(db, datasetId), tokenizer, { contextLength, maxNewTokens: config.maxNewTokens, maxPromptTokens: config.maxPromptTokens, model }, config.longPrompts, config.promptFormat);
  // The method's own check against the model (e.g. its judge's prompts around the longest training prompt).
  const method = methodOf(config);
  if (method.checkLaunch) {
    const items = fitted.data.items;
    const longest = items.reduce((best, it, i) => (it.prompt.length > items[best].prompt.length ? i : best), 0);
    const problems = method.checkLaunch(method.settings.parse(config), {
      encode: (text) => encodePrompt(tokenizer, text, config.promptFormat),
      contextLength,
      model,
      maxNewTokens: config.maxNewTokens,
      longestPrompt: { text: items[longest].prompt, label: `item ${fitted.data.itemIdx[longest]}` },
    });
    if (problems.length) throw new RunSetupError(`${config.method}: ${issuesText(problems)}`);
  }
  return fitted.notes;
}

/** A model folder: a path, a built-in name, or a model imported into the data folder. */
export function resolveModel(spec: string, home: string): string {
  try {
    return resolveModelPath(spec);
  } catch (e) {
    const imported = path.join(modelsDir(home), spec);
    if (!spec.includes('/') && fs.existsSync(path.join(imported, 'config.json'))) return imported;
    throw new RunSetupError((e as Error).message);
  }
}

/**
 * A model folder's own distillation settings (its svd.json: templates built around the prompts it
 * was taught, like tiny-arith's), or none. A file that is not a JSON object is refused naming it.
 */
export function readModelSvdSettings(dir: string): Record<string, unknown> | undefined {
  const file = path.join(dir, SVD_MODEL_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RunSetupError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new RunSetupError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new RunSetupError(`${file}: expected a JSON object of svd settings`);
  return value as Record<string, unknown>;
}

async function loadModel(dir: string, config: RunConfig): Promise<LoopModel> {
  // Loaded on first use: the app's main thread imports this module for its setup functions, and
  // the model and training code (onnxruntime, the answer checker) would cost it seconds at start.
  const { loadModelFolder } = await import('../engine/nn/hf-model.ts');
  // Under mixed precision a half-precision checkpoint stays float16 on the host where it is only read as float16.
  const m = await loadModelFolder(dir, { keepHalf: hostHalf(config.precision, config.mode === 'full' ? 'weights' : 'adapters') });
  if (!m.tokenizer) throw new RunSetupError(`${dir} has no tokenizer.json; a run needs the model's tokenizer to read prompts`);
  return { config: m.config, weights: m.weights, tokenizer: m.tokenizer, dir: m.dir };
}

/**
 * Records a new run (status queued) with its full configuration, after everything that can refuse
 * it, each looked up once: the model folder, the dataset (imported if needed), the run whose
 * reviews it trains with (on the same dataset), its prompts against the model's context and the
 * method's launch check. `config` is checked already (checkRunConfig, parseStoredConfig: the
 * one check of a run's settings); neither this nor the run's execution checks it again. Returns
 * the run and what its longPrompts setting will do to prompts too long for the model (a line each).
 */
export async function createRecordedRun(
  db: ExperimentDb,
  home: string,
  config: RunConfig,
  target: RunTarget,
  name?: string,
  sources: DatasetSources = {},
): Promise<{ run: RunInfo; notes: string[] }> {
  // A device named cpu is known to have no float16 kernels now; under auto the engine refuses
  // mixed precision where the device it picks has none (checkPrecision).
  if (config.precision === 'mixed' && target.device === 'cpu') {
    throw new RunSetupError('precision "mixed" needs a GPU device with float16 kernels (webgpu or cuda); the cpu device has none. Set precision to "fp32", or choose device webgpu, cuda or auto.');
  }
  const dir = resolveModel(target.model, home);
  const datasetId = ensureDataset(db, target.dataset, target, config.seed, sources);
  if (target.reviewsOf !== undefined) {
    const source = getRun(db, target.reviewsOf);
    if (!source) throw new RunSetupError(`reviewsOf: there is no run ${target.reviewsOf} to take reviewed labels from`);
    if (source.datasetId !== datasetId) {
      throw new RunSetupError(`run ${source.id} ("${source.name}") trained on dataset "${source.dataset}", not this one; its reviews name other prompts`);
    }
  }
  const notes = await launchCheck(db, dir, datasetId, config);
  // The difficulty is the built-in generator's; a run on any other dataset does not store it
  // (issue 15.10: a run on a generated d1 dataset showed the default `difficulty 2`).
  const { difficulty, ...rest } = target;
  const stored: StoredConfig = { ...config, ...rest, ...(target.dataset === ARITHMETIC_DATASET_NAME && { difficulty }) };
  const datasetName = getDataset(db, datasetId)!.name;
  const run = createRun(db, { name: name ?? `${config.method}-${path.basename(target.model)}-${datasetName}`, method: config.method, model: target.model, dataset: datasetName, datasetId, config: stored });
  return { run, notes };
}

export interface ExecuteOptions {
  /** Stops the run (status 'stopped'); the step in progress is dropped. */
  signal?: AbortSignal;
  /** Asked at each step boundary: true ends the run 'paused' after saving a checkpoint there. */
  pauseRequested?: () => boolean;
  /** The same, ending the run 'stopped' (the command line's Ctrl-C: the finished steps are kept). */
  stopRequested?: () => boolean;
  /** Called after each step is committed. */
  onStep?: (record: StepRecord, run: RunInfo) => void;
  /** Called once before training with the step the loop continues after (0 for a new run). */
  onStart?: (startAfter: number, run: RunInfo, info: StartInfo) => void;
  /** What the loop is doing (setup, rollout, update, validation, checkpoint). */
  onProgress?: (progress: LoopProgress) => void;
  /** Called when a step waits for the database because another process holds its write lock. */
  onWait?: (message: string) => void;
}

export interface StartInfo {
  /** The device the run trains on. */
  device: string;
  /** The checkpoint folder it continues from, or null. */
  resumedFrom: string | null;
  /** How many training prompts take a reviewed label instead of their vote. */
  reviewedLabels: number;
  /** What the run's longPrompts setting did to prompts too long for the model (a line each). */
  promptNotes: string[];
}

/**
 * The labels a person gave in run `reviewsRunId`'s reviews, by dataset item idx: an override
 * gives its label, an agreement the rollout's pseudo-label; the latest review of an item wins
 * (an agreement with a group that had no label removes the item's earlier override).
 */
export function reviewedLabels(db: ExperimentDb, reviewsRunId: number, datasetId: number): Map<number, string> {
  const source = getRun(db, reviewsRunId);
  if (!source) throw new RunSetupError(`reviewsOf: there is no run ${reviewsRunId} to take reviewed labels from`);
  if (source.datasetId !== datasetId) {
    throw new RunSetupError(`reviewsOf: run ${reviewsRunId} trained on dataset "${source.dataset}", not this run's; its reviews name other prompts`);
  }
  const reviews = listReviews(db, { runId: reviewsRunId }).sort((a, b) => (a.updatedAt ?? a.createdAt).localeCompare(b.updatedAt ?? b.createdAt) || a.id - b.id);
  const labels = new Map<number, string>();
  for (const r of reviews) {
    const rollout = r.rolloutId === null ? undefined : getRollout(db, r.rolloutId);
    const itemIdx = rollout ? rollout.itemIdx : r.datasetId === datasetId ? r.itemIdx : null;
    if (itemIdx === null) continue;
    // An agreement may store the label it agreed with (setRolloutReview does); else the rollout's.
    const label = r.verdict === 'override' ? r.label : (r.label ?? rollout?.pseudoLabel ?? null);
    if (label === null) labels.delete(itemIdx);
    else labels.set(itemIdx, label);
  }
  return labels;
}

/**
 * Sets (or with null, clears) the run whose reviews' labels a run trains with (`reviewsOf` in its
 * stored config), so a resume with reviews is recorded with the run.
 */
export function setRunReviewsOf(db: ExperimentDb, runId: number, reviewsOf: number | null): RunInfo {
  return db.write(`setting the reviews run ${runId} trains with`, () => {
    const run = getRun(db, runId);
    if (!run) throw new DatabaseError('NOT_FOUND', `No run ${runId}.`);
    const config = { ...storedConfig(run) };
    if (reviewsOf === null) delete config.reviewsOf;
    else config.reviewsOf = reviewsOf;
    return setRunConfig(db, runId, config);
  });
}

/**
 * Prepares a resume: the run's steps after its last 'last' checkpoint are deleted (they will be
 * trained again), and the checkpoint folder to continue from is returned (none: from scratch).
 */
export function prepareResume(db: ExperimentDb, run: RunInfo): { resumeFrom?: string; startAfter: number } {
  if (run.status === 'completed') throw new RunSetupError(`run ${run.id} has completed; there is nothing to resume`);
  const ckpt = latestCheckpoint(db, run.id, 'last');
  if (!ckpt) {
    // No checkpoint: the run starts over, so none of its steps (step 0 included) may remain.
    deleteStepsAfter(db, run.id, -1, keyMetricName(storedConfig(run)));
    // A distillation round after the model a resume starts from was sampled by that model: it is
    // continued. Later ones were sampled by models no checkpoint holds.
    deleteSvdRoundsAfter(db, run.id, 1);
    return { startAfter: 0 };
  }
  const onDisk = checkpointLoopStep(ckpt.path);
  if (onDisk === null) throw new RunSetupError(`run ${run.id}'s last checkpoint ${ckpt.path} is missing or unreadable; it cannot be resumed`);
  const recorded = lastCompletedStep(db, run.id) ?? -1;
  if (onDisk !== ckpt.step && onDisk > recorded) {
    // The folder was overwritten by a step whose record never reached the database (killed
    // between the save and the commit): resuming would leave that step missing.
    throw new RunSetupError(
      `run ${run.id}'s checkpoint folder holds step ${onDisk}, but the database records steps only up to ${recorded}; ` +
        'that step cannot be recovered. Start a new run with the same settings (autodidact show shows them).',
    );
  }
  deleteStepsAfter(db, run.id, ckpt.step, keyMetricName(storedConfig(run)));
  deleteSvdRoundsAfter(db, run.id, ckpt.step + 1);
  return { resumeFrom: ckpt.path, startAfter: ckpt.step };
}

/**
 * A recorded run's settings as it was trained: a run recorded before a setting that changes
 * training existed keeps that setting's earlier behaviour, so a resume continues the same run.
 * Before `voteTies`, a tie went to the answer seen first. (Settings that only add warnings, or
 * whose default is the earlier behaviour, take their defaults.)
 */
export function recordedSettings(stored: Record<string, unknown>): Record<string, unknown> {
  return 'voteTies' in stored ? stored : { ...stored, voteTies: 'first' };
}

/**
 * A recorded run's settings, read back as they were checked when it was created (not checked
 * again): with the settings added since at their defaults for its method, and those that change
 * training at their earlier behaviour (recordedSettings).
 */
export function recordedRunConfig(run: Pick<RunInfo, 'id' | 'config'>): { config: RunConfig; target: RunTarget } {
  const { model, dataset, device = 'cpu', difficulty = DEFAULT_DIFFICULTY, reviewsOf, name: _name, ...rest } = recordedSettings(storedConfig(run));
  if (typeof model !== 'string' || typeof dataset !== 'string') throw new RunSetupError(`run ${run.id}'s stored config names no model or dataset`);
  let defaults: RunConfig;
  try {
    defaults = parseRunConfig({ method: rest.method });
  } catch (e) {
    throw new RunSetupError(`run ${run.id}'s stored config: ${(e as Error).message}`);
  }
  const target: RunTarget = { model, dataset, device: device as DeviceRequest, difficulty: Number(difficulty) as ArithmeticDifficulty };
  if (typeof reviewsOf === 'number') target.reviewsOf = reviewsOf;
  return { config: { ...defaults, ...rest } as RunConfig, target };
}

/** Why a run imported from a cluster cannot be trained here (null for a run of this app). */
export function externalRunRefusal(run: Pick<RunInfo, 'id' | 'name' | 'kind'>, doing: string): string | null {
  if (run.kind !== 'external') return null;
  return `Run ${run.id} ("${run.name}") was trained by verl on a cluster and imported; it cannot ${doing} here. 'autodidact cluster import DIR --follow' reads more of it while the cluster trains; to train it here, start a new run with its settings.`;
}

/** Trains a recorded run (new, or resumed with `resume`), keeping its status and steps in the database. */
export async function executeRun(
  db: ExperimentDb,
  home: string,
  run: RunInfo,
  resume: boolean,
  opts: ExecuteOptions = {},
): Promise<LoopResult & { run: RunInfo; /** The other process whose stop or pause ended the run, if one did. */ requestedBy: ControlRequest | null }> {
  const refusal = externalRunRefusal(run, resume ? 'resume' : 'start');
  if (refusal) throw new RunSetupError(refusal);
  const { config, target } = recordedRunConfig(run);
  if (run.datasetId === null) throw new RunSetupError(`run ${run.id}'s dataset was deleted; it cannot continue`);
  // Another live process (the app, or a second terminal) training this run would write the same
  // steps and checkpoint folders: refuse before touching either.
  const owner = liveRunOwner(home, run.id);
  if (owner && owner.pid !== process.pid) {
    throw new RunSetupError(`run ${run.id} is being trained by another process (pid ${owner.pid}, since ${owner.startedAt}); stop it there first`);
  }
  const checkpointDir = runDir(home, run.id);
  // What saves killed mid-way left (a live process's work folders are left alone), before a
  // resume looks for its checkpoint: one killed between its two renames is put back.
  removeInterruptedSaves(checkpointDir);
  const { resumeFrom, startAfter } = resume ? prepareResume(db, run) : { startAfter: 0 };
  let current = run;
  let release = () => {};
  // Another process's stop or pause, read at each step boundary; whichever came first wins.
  const control: { request: ControlRequest | null } = { request: null };
  const requested = () => (control.request ??= controlRequest(home, run.id)) !== null;
  try {
    // The loop lists this folder after each step; a run that never checkpointed has none yet.
    fs.mkdirSync(checkpointDir, { recursive: true });
    // A request left from an earlier session (its owner gone before reading it) is not for this one.
    clearControlRequest(home, run.id);
    // Claimed before the status says 'running', so no other process sees it running without an owner.
    release = claimRun(home, run.id);
    current = updateRunStatus(db, run.id, 'running');
    const modelDir = resolveModel(target.model, home);
    const model = await loadModel(modelDir, config);
    const hooks = {
      signal: opts.signal,
      pauseRequested: () => (opts.pauseRequested?.() ?? false) || (opts.stopRequested?.() ?? false) || requested(),
      onProgress: opts.onProgress,
      onStep: databaseSink(db, run.id, { after: (r) => opts.onStep?.(r, current), onWait: opts.onWait }),
    };
    let result: LoopResult;
    if (methodOf(config).pipeline === 'agent-episodes') {
      const tasks = agentTasks(db, run.datasetId, config.method);
      const device = await resolveDevice(target.device);
      opts.onStart?.(startAfter, current, { device: device.name, resumedFrom: resumeFrom ?? null, reviewedLabels: 0, promptNotes: [] });
      const [{ runAgentLoop }, { analyzerSource }] = await Promise.all([import('../engine/agent/loop.ts'), import('../engine/agent/analyzer-source.ts')]);
      const method = methodOf(config);
      const analyzer = await analyzerSource(method.settings.parse(config) as AgentSettings, device, (spec) => resolveModel(spec, home), opts.signal);
      try {
        result = await runAgentLoop(
          { config, model, device, tasks: tasks.train, itemIdx: tasks.trainIdx, validation: tasks.eval, checkpointDir, resumeFrom, ...(analyzer && { analyzer: analyzer.complete }) },
          hooks,
        );
      } finally {
        await analyzer?.release();
      }
    } else {
      const limit = { contextLength: model.config.maxPositionEmbeddings, maxNewTokens: config.maxNewTokens, maxPromptTokens: config.maxPromptTokens, model: path.basename(modelDir) };
      const { data, notes: promptNotes } = fitRunData(loadRunData(db, run.datasetId), model.tokenizer, limit, config.longPrompts, config.promptFormat);
      // By dataset item; those of items the run does not train on (skipped as too long) are not counted.
      const reviewed = target.reviewsOf === undefined ? undefined : reviewedLabels(db, target.reviewsOf, run.datasetId);
      const reviewedCount = reviewed === undefined ? 0 : data.itemIdx.filter((idx) => reviewed.has(idx)).length;
      const device = await resolveDevice(target.device);
      opts.onStart?.(startAfter, current, { device: device.name, resumedFrom: resumeFrom ?? null, reviewedLabels: reviewedCount, promptNotes });
      if (methodOf(config).pipeline === 'distillation') {
        // Self-verified distillation: rounds stored as they go (svd tables), a step per round.
        const { runSvd } = await import('../engine/svd/round.ts');
        const modelSettings = readModelSvdSettings(modelDir);
        result = await runSvd(
          { config, model, device, items: data.items, itemIdx: data.itemIdx, validation: data.validation, checkpointDir, resumeFrom, store: svdStore(db, run.id), modelSettings },
          hooks,
        );
      } else {
        const { runLoop } = await import('../engine/rl/loop.ts');
        result = await runLoop({ config, model, device, items: data.items, itemIdx: data.itemIdx, validation: data.validation, checkpointDir, resumeFrom, reviewedLabels: reviewed }, hooks);
      }
    }
    if (result.signalStop) {
      const { step, message } = result.signalStop;
      const why = `Stopped by the signal check at step ${step} (signalAction: stop), before that step's update. ${message} Resume to train on past this alert.`;
      current = updateRunStatus(db, run.id, 'stopped', why);
      return { ...result, run: current, requestedBy: null };
    }
    const stopped = result.aborted || (result.paused && (control.request?.action === 'stop' || (opts.stopRequested?.() ?? false)));
    current = updateRunStatus(db, run.id, stopped ? 'stopped' : result.paused ? 'paused' : 'completed');
    return { ...result, run: current, requestedBy: result.paused ? control.request : null };
  } catch (e) {
    // The run's record must say why it ended; a failure to record that is secondary.
    try {
      updateRunStatus(db, run.id, 'failed', e instanceof Error ? e.message : String(e));
    } catch {
      /* the original error is the one to report */
    }
    throw e;
  } finally {
    release();
    clearControlRequest(home, run.id);
    // A code run's sandbox workers (started at its first reward) go with the run: their output
    // streams would otherwise keep the command line's process alive after it has finished.
    await closeCodeSandbox();
  }
}
