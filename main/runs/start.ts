// Starting and resuming a training run recorded in the experiment database: resolve the model
// and dataset, record the run, drive the run loop with a database sink, and keep the run's
// status true to what happened (running → completed / stopped / failed with its error).
import fs from 'node:fs';
import path from 'node:path';
import {
  DatabaseError,
  type ExperimentDb,
  type RunInfo,
  createRun,
  deleteStepsAfter,
  evaluationAnswers,
  getDataset,
  importDataset,
  lastCompletedStep,
  latestCheckpoint,
  listDatasets,
  listItems,
  updateRunStatus,
} from '../db/index.ts';
import { resolveModelPath } from '../engine/model-paths.ts';
import { loadModelFolder } from '../engine/nn/hf-model.ts';
import { type LoopItem, type LoopModel, type LoopResult, type RunConfig, type StepRecord, describeRunConfig, parseRunConfig, runLoop } from '../engine/rl/index.ts';
import { type DeviceRequest, resolveDevice } from '../engine/runtime/devices.ts';
import { ARITHMETIC_DATASET_NAME, ARITHMETIC_LEVELS, type ArithmeticDifficulty, arithmeticItems } from '../engine/tasks/generators.ts';
import { importDatasetFile } from './datasets.ts';
import { modelsDir, runDir } from './home.ts';
import { checkpointLoopStep, databaseSink } from './sink.ts';

/** A run's settings beyond the loop's own configuration (where it runs, on what). */
export interface RunTarget {
  model: string;
  dataset: string;
  device: DeviceRequest;
  /** Difficulty of the built-in arithmetic dataset. */
  difficulty: ArithmeticDifficulty;
}

export const DEVICES: readonly DeviceRequest[] = ['cpu', 'webgpu', 'cuda', 'auto'];
const TARGET_KEYS = ['model', 'dataset', 'device', 'difficulty', 'name'] as const;
/** Sizes of the built-in arithmetic dataset as a run stores it. */
export const ARITHMETIC_TRAIN = 512;
export const ARITHMETIC_EVAL = 64;

/** What a run stores as its config: the loop configuration and the target, flat, so it can be re-read for a resume. */
export type StoredConfig = RunConfig & RunTarget;

/** A run configuration from JSON (a --config file, or merged flags): unknown keys are mistakes, not ignored. */
export function parseStoredConfig(input: Record<string, unknown>, where: string): { config: RunConfig; target: RunTarget; name?: string } {
  const known = new Set<string>([...describeRunConfig().map((d) => d.name), ...TARGET_KEYS]);
  const unknown = Object.keys(input).filter((k) => !known.has(k));
  if (unknown.length) throw new RunSetupError(`${where}: unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (settings: ${[...known].join(', ')})`);
  const { model, dataset, device = 'cpu', difficulty = 2, name, ...rest } = input;
  if (typeof model !== 'string' || !model) throw new RunSetupError(`${where}: no model (give --model NAME|DIR or "model" in the config file)`);
  if (typeof dataset !== 'string' || !dataset) throw new RunSetupError(`${where}: no dataset (give --dataset NAME|FILE, e.g. ${ARITHMETIC_DATASET_NAME}, or "dataset" in the config file)`);
  if (!DEVICES.includes(device as DeviceRequest)) throw new RunSetupError(`${where}: device must be one of ${DEVICES.join(', ')}, got ${JSON.stringify(device)}`);
  if (!(String(difficulty) in ARITHMETIC_LEVELS)) throw new RunSetupError(`${where}: difficulty must be 1, 2, 3 or 4, got ${JSON.stringify(difficulty)}`);
  if (name !== undefined && typeof name !== 'string') throw new RunSetupError(`${where}: name must be a string`);
  let config: RunConfig;
  try {
    config = parseRunConfig(rest);
  } catch (e) {
    // zod lists every problem with its path; keep them on one line each.
    const issues = (e as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
    const detail = issues ? issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ') : (e as Error).message;
    throw new RunSetupError(`${where}: ${detail}`);
  }
  return { config, target: { model, dataset, device: device as DeviceRequest, difficulty: Number(difficulty) as ArithmeticDifficulty }, name };
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
}

/**
 * The dataset a run names, stored in the database if it is not yet: the built-in arithmetic
 * generator (per difficulty and seed), a dataset imported before, or a file (imported now).
 */
export function ensureDataset(db: ExperimentDb, spec: string, target: Pick<RunTarget, 'difficulty'>, seed: number): number {
  if (spec === ARITHMETIC_DATASET_NAME) {
    const name = `${ARITHMETIC_DATASET_NAME}-d${target.difficulty}-s${seed}`;
    const existing = getDataset(db, name);
    if (existing) return existing.id;
    const common = { difficulty: target.difficulty, seed };
    const items = [
      ...arithmeticItems({ ...common, count: ARITHMETIC_TRAIN, split: 'train' }).map((it) => ({ ...it, split: 'train' as const })),
      ...arithmeticItems({ ...common, count: ARITHMETIC_EVAL, split: 'eval' }).map((it) => ({ ...it, split: 'eval' as const })),
    ];
    return importDataset(db, { name, source: `generator:${ARITHMETIC_DATASET_NAME}`, fieldMapping: common }, items).id;
  }
  const byName = getDataset(db, spec);
  if (byName) return byName.id;
  if (fs.existsSync(spec) && fs.statSync(spec).isFile()) {
    const source = path.resolve(spec);
    const same = listDatasets(db).find((d) => d.source === source);
    if (same) return same.id;
    return importDatasetFile(db, spec).dataset.id;
  }
  const names = listDatasets(db).map((d) => d.name);
  throw new RunSetupError(
    `dataset "${spec}" is neither a file, the built-in "${ARITHMETIC_DATASET_NAME}", nor an imported dataset` +
      (names.length ? ` (imported: ${names.join(', ')})` : " (none imported yet: 'autodidact datasets import FILE')"),
  );
}

function loadRunData(db: ExperimentDb, datasetId: number): RunData {
  const info = getDataset(db, datasetId);
  if (!info) throw new DatabaseError('NOT_FOUND', `the run's dataset (id ${datasetId}) was deleted`);
  // Hidden labels go to the loop only for its ground-truth diagnostics and validation.
  const answers = evaluationAnswers(db, datasetId);
  const train = listItems(db, datasetId, { split: 'train' }).items;
  if (train.length === 0) throw new RunSetupError(`dataset "${info.name}" has no training items`);
  const validation = listItems(db, datasetId, { split: 'eval' })
    .items.filter((it) => answers.has(it.idx))
    .map((it) => ({ prompt: it.prompt, answer: answers.get(it.idx)! }));
  return {
    datasetId,
    datasetName: info.name,
    items: train.map((it) => ({ prompt: it.prompt, answer: answers.get(it.idx) ?? null })),
    itemIdx: train.map((it) => it.idx),
    validation,
  };
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

async function loadModel(dir: string): Promise<LoopModel> {
  const m = await loadModelFolder(dir);
  if (!m.tokenizer) throw new RunSetupError(`${dir} has no tokenizer.json; a run needs the model's tokenizer to read prompts`);
  return { config: m.config, weights: m.weights, tokenizer: m.tokenizer, dir: m.dir };
}

/** Records a new run (status queued) with its full configuration, importing its dataset if needed. */
export function createRecordedRun(db: ExperimentDb, home: string, config: RunConfig, target: RunTarget, name?: string): RunInfo {
  resolveModel(target.model, home); // fail before recording anything
  const datasetId = ensureDataset(db, target.dataset, target, config.seed);
  const stored: StoredConfig = { ...config, ...target };
  const datasetName = getDataset(db, datasetId)!.name;
  return createRun(db, { name: name ?? `${config.method}-${path.basename(target.model)}-${datasetName}`, method: config.method, model: target.model, dataset: datasetName, datasetId, config: stored });
}

export interface ExecuteOptions {
  signal?: AbortSignal;
  /** Called after each step is committed. */
  onStep?: (record: StepRecord, run: RunInfo) => void;
  /** Called once before training with the step the loop continues after (0 for a new run). */
  onStart?: (startAfter: number, run: RunInfo) => void;
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
    deleteStepsAfter(db, run.id, -1);
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
  deleteStepsAfter(db, run.id, ckpt.step);
  return { resumeFrom: ckpt.path, startAfter: ckpt.step };
}

/** Trains a recorded run (new, or resumed with `resume`), keeping its status and steps in the database. */
export async function executeRun(db: ExperimentDb, home: string, run: RunInfo, resume: boolean, opts: ExecuteOptions = {}): Promise<LoopResult & { run: RunInfo }> {
  const { config, target } = parseStoredConfig(run.config as Record<string, unknown>, `run ${run.id}'s stored config`);
  if (run.datasetId === null) throw new RunSetupError(`run ${run.id}'s dataset was deleted; it cannot continue`);
  const { resumeFrom, startAfter } = resume ? prepareResume(db, run) : { startAfter: 0 };
  const checkpointDir = runDir(home, run.id);
  let current = updateRunStatus(db, run.id, 'running');
  try {
    const data = loadRunData(db, run.datasetId);
    const model = await loadModel(resolveModel(target.model, home));
    const device = await resolveDevice(target.device);
    // The loop lists this folder after each step; a run that never checkpointed has none yet.
    fs.mkdirSync(checkpointDir, { recursive: true });
    opts.onStart?.(startAfter, current);
    const result = await runLoop(
      { config, model, device, items: data.items, validation: data.validation, checkpointDir, resumeFrom },
      { signal: opts.signal, onStep: databaseSink(db, run.id, data.itemIdx, (r) => opts.onStep?.(r, current)) },
    );
    current = updateRunStatus(db, run.id, result.aborted ? 'stopped' : 'completed');
    return { ...result, run: current };
  } catch (e) {
    // The run's record must say why it ended; a failure to record that is secondary.
    try {
      updateRunStatus(db, run.id, 'failed', e instanceof Error ? e.message : String(e));
    } catch {
      /* the original error is the one to report */
    }
    throw e;
  }
}
