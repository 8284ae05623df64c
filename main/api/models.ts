// The models the app knows (the built-in ones and the folders a person added) and what the
// Models view shows of each, read from config.json and the safetensors headers only: a
// multi-gigabyte checkpoint is never loaded to list it. The checks are those loadModelFolder
// makes before it reads any weight (the engine's own config parser and shape rules), so a folder
// that passes here loads for a run, and one that fails says which file or field is at fault.
// Results are cached by folder and the files' modification times. Adding, listing and removing
// are shared by the API (models.*) and the command line (`autodidact models`); `knownModel` is
// how a request names a model: only one of these, never an arbitrary path.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ModelEntry } from '../../contract/index.ts';
import { type ExperimentDb, type ModelInfo, deleteModel, getModel, listModels, upsertModel } from '../db/index.ts';
import { builtinModelsDir, listBuiltinModels } from '../engine/model-paths.ts';
import { type LlamaConfig, parseConfig, weightShapes } from '../engine/nn/config.ts';
import { readJson } from '../engine/nn/hf-model.ts';
import { type SafetensorsHeader, readSafetensorsHeader } from '../engine/nn/safetensors.ts';
import { TextTokenizer } from '../engine/nn/tokenizer.ts';

export interface ModelInspection {
  dir: string;
  architecture: string | null;
  parameterCount: number | null;
  /** The element type of the stored weights (that of the embedding table): float32, float16, bfloat16. */
  dtype: string | null;
  /** Why the folder cannot be used (naming the file or field); null when it can. */
  error: string | null;
}

const DTYPES: Record<string, string> = { F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16' };
// The files whose change changes the answer.
const WATCHED = ['', 'config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

const inspections = new Map<string, { key: string; result: Promise<ModelInspection> }>();

async function versionKey(dir: string): Promise<string> {
  const stats = await Promise.all(WATCHED.map((f) => fs.stat(path.join(dir, f)).then((s) => `${s.mtimeMs}:${s.size}`, () => '-')));
  return stats.join('|');
}

/** Inspects a model folder (cached until one of its files changes). Never throws: problems go in `error`. */
export async function inspectModelFolder(dir: string): Promise<ModelInspection> {
  const abs = path.resolve(dir);
  const key = await versionKey(abs);
  const hit = inspections.get(abs);
  if (hit && hit.key === key) return hit.result;
  const result = inspect(abs);
  inspections.set(abs, { key, result });
  return result;
}

async function inspect(dir: string): Promise<ModelInspection> {
  const out: ModelInspection = { dir, architecture: null, parameterCount: null, dtype: null, error: null };
  try {
    const st = await fs.stat(dir).catch(() => null);
    if (!st) throw new Error(`model folder not found: ${dir}`);
    if (!st.isDirectory()) throw new Error(`not a model folder (it is a file): ${dir}; choose the folder that holds config.json`);
    const configFile = path.join(dir, 'config.json');
    const config = parseConfig(await readJson(configFile), configFile);
    out.architecture = config.architecture;
    const wanted = weightShapes(config);
    out.parameterCount = wanted.reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
    const headers = await tensorHeaders(dir);
    checkTensors(dir, config, wanted, headers);
    out.dtype = DTYPES[headers.get('model.embed_tokens.weight')!.entries.get('model.embed_tokens.weight')!.dtype] ?? null;
    const tokenizer = await TextTokenizer.fromFolder(dir);
    if (!tokenizer) throw new Error(`${dir} has no tokenizer.json; a run needs the model's tokenizer to read prompts`);
    if (tokenizer.vocabSize > config.vocabSize) {
      throw new Error(`${dir}: tokenizer.json has ${tokenizer.vocabSize} token ids but config.json vocab_size is ${config.vocabSize}`);
    }
  } catch (e) {
    out.error = e instanceof Error ? e.message : String(e);
  }
  return out;
}

/** Which safetensors header holds each tensor (the index decides, as in transformers). */
async function tensorHeaders(dir: string): Promise<Map<string, SafetensorsHeader>> {
  const index = path.join(dir, 'model.safetensors.index.json');
  const single = path.join(dir, 'model.safetensors');
  const has = (f: string) => fs.stat(f).then(() => true, () => false);
  const fileOf = new Map<string, SafetensorsHeader>();
  if (await has(index)) {
    const json = (await readJson(index)) as { weight_map?: unknown } | null;
    if (!json || typeof json.weight_map !== 'object' || json.weight_map === null) throw new Error(`${index}: missing the "weight_map" object`);
    const map = Object.entries(json.weight_map as Record<string, unknown>);
    for (const [name, file] of map) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
        throw new Error(`${index}: weight_map entry for "${name}" must be a file name in the same folder`);
      }
    }
    const files = [...new Set(map.map(([, f]) => f as string))].sort();
    const headers = new Map(await Promise.all(files.map(async (f) => [f, await readSafetensorsHeader(path.join(dir, f))] as const)));
    for (const [name, file] of map) {
      const h = headers.get(file as string)!;
      if (!h.entries.has(name)) throw new Error(`${index} puts tensor "${name}" in ${file}, but that file does not hold it`);
      fileOf.set(name, h);
    }
    return fileOf;
  }
  if (await has(single)) {
    const h = await readSafetensorsHeader(single);
    for (const name of h.entries.keys()) fileOf.set(name, h);
    return fileOf;
  }
  const others = (await fs.readdir(dir)).filter((f) => f.endsWith('.bin') || f.endsWith('.pt') || f.endsWith('.gguf'));
  const hint = others.length > 0 ? ` (found ${others.join(', ')}: convert to safetensors, e.g. save_pretrained(..., safe_serialization=True))` : '';
  throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json${hint}`);
}

function checkTensors(dir: string, config: LlamaConfig, wanted: [string, number[]][], fileOf: Map<string, SafetensorsHeader>): void {
  for (const [name, shape] of wanted) {
    const h = fileOf.get(name);
    if (!h) throw new Error(`${dir}: the checkpoint has no tensor "${name}" (shape [${shape.join(', ')}]) that config.json (${config.architecture}) requires`);
    const e = h.entries.get(name)!;
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${h.file}: tensor "${name}" has shape [${e.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`);
    }
    if (!(e.dtype in DTYPES)) {
      throw new Error(`${h.file}: tensor "${name}" has dtype ${e.dtype}; only F32, F16, BF16 and F64 weights are supported (quantized checkpoints are not)`);
    }
  }
}

const tokenizers = new Map<string, { key: string; tokenizer: Promise<TextTokenizer | null> }>();

/** The tokenizer of a model folder, loaded once (again only when its files change); null when it has none. */
export async function folderTokenizer(dir: string): Promise<TextTokenizer | null> {
  const abs = path.resolve(dir);
  const key = await versionKey(abs);
  const hit = tokenizers.get(abs);
  if (hit && hit.key === key) return hit.tokenizer;
  const tokenizer = TextTokenizer.fromFolder(abs);
  tokenizers.set(abs, { key, tokenizer });
  // A failed load is not cached: the next request tries again (the person may fix the file).
  tokenizer.catch(() => tokenizers.delete(abs));
  return tokenizer;
}

/** A folder that cannot be added: it does not load (SETUP), or its name is taken (CONFLICT). */
export class ModelFolderError extends Error {
  override name = 'ModelFolderError';
  constructor(
    readonly code: 'SETUP' | 'CONFLICT',
    message: string,
  ) {
    super(message);
  }
}

const samePath = (a: string, b: string) => path.resolve(a) === path.resolve(b);

async function entry(name: string, dir: string, builtin: boolean, stored: ModelInfo | undefined): Promise<ModelEntry> {
  const i = await inspectModelFolder(dir);
  return {
    id: stored?.id ?? null,
    name,
    path: dir,
    builtin,
    // Fresh from the folder where it loads; what was recorded at import where it no longer does.
    architecture: i.architecture ?? stored?.architecture ?? null,
    parameterCount: i.parameterCount ?? stored?.parameterCount ?? null,
    dtype: i.dtype ?? stored?.dtype ?? null,
    error: i.error,
  };
}

const builtinFolders = () => listBuiltinModels().map((name) => ({ name, dir: path.join(builtinModelsDir(), name) }));

/** The built-in models (with their database row where one was added), then the added folders. */
export async function listModelEntries(db: ExperimentDb): Promise<ModelEntry[]> {
  const stored = listModels(db);
  const builtins = builtinFolders();
  const isBuiltinPath = (p: string) => builtins.some((b) => samePath(b.dir, p));
  return Promise.all([
    ...builtins.map((b) => entry(b.name, b.dir, true, stored.find((m) => samePath(m.path, b.dir)))),
    ...stored.filter((m) => !isBuiltinPath(m.path)).map((m) => entry(m.name, m.path, false, m)),
  ]);
}

/**
 * Adds a model folder a person chose (the desktop app's dialog, or the command line), under
 * `name` (default: a built-in model's name, else the folder's). A folder that cannot load, or a
 * name another folder has, records nothing.
 */
export async function addModelFolder(db: ExperimentDb, folder: string, name?: string): Promise<ModelEntry> {
  const dir = path.resolve(folder);
  const st = await fs.stat(dir).catch(() => null);
  if (!st) throw new ModelFolderError('SETUP', `model folder not found: ${dir}`);
  if (!st.isDirectory()) throw new ModelFolderError('SETUP', `${dir} is a file; choose the model's folder (the one holding config.json)`);
  const i = await inspectModelFolder(dir);
  if (i.error) throw new ModelFolderError('SETUP', `${dir} cannot be used as a model: ${i.error}`);
  const builtins = builtinFolders();
  const builtin = builtins.find((b) => samePath(b.dir, dir))?.name;
  // A folder added once is refreshed under its name, not added again under another.
  const already = listModels(db).find((m) => samePath(m.path, dir));
  const chosen = name ?? already?.name ?? builtin ?? path.basename(dir);
  if (already && already.name !== chosen) {
    throw new ModelFolderError('CONFLICT', `${dir} is already added, as "${already.name}"; remove it first ('autodidact models remove ${already.name}') to add it under another name.`);
  }
  // A built-in model's name names it everywhere (runs, the command line): no other folder takes it.
  if (builtin === undefined && builtins.some((b) => b.name === chosen)) {
    throw new ModelFolderError('CONFLICT', `"${chosen}" is the name of a built-in model; give this one another name.`);
  }
  const taken = getModel(db, chosen);
  if (taken && !samePath(taken.path, dir)) {
    throw new ModelFolderError('CONFLICT', `A model named "${chosen}" is already added (from ${taken.path}); give this one another name.`);
  }
  const m = upsertModel(db, { name: chosen, path: dir, architecture: i.architecture, parameterCount: i.parameterCount, dtype: i.dtype });
  return entry(m.name, m.path, builtin !== undefined, m);
}

/** Forgets an added model (by id or name); its files stay where they are. Null when there is none. */
export function removeModel(db: ExperimentDb, idOrName: number | string): ModelInfo | null {
  const m = getModel(db, idOrName);
  if (!m) return null;
  deleteModel(db, m.id);
  return m;
}

/**
 * The model a request names, as runs store it: a built-in model's name (kept as the name), an
 * added model's name or exactly a path models.list lists (its folder). Anything else is null,
 * whether or not a folder of that name exists: the file system is never asked about it.
 */
export function knownModel(db: ExperimentDb, spec: string): string | null {
  const builtins = builtinFolders();
  if (builtins.some((b) => b.name === spec)) return spec;
  const builtinDir = builtins.find((b) => b.dir === spec);
  if (builtinDir) return builtinDir.dir;
  const stored = listModels(db);
  return (stored.find((m) => m.name === spec) ?? stored.find((m) => m.path === spec))?.path ?? null;
}

/** The refusal of a model no list holds: the same words for every such name, existing file or not. */
export function unknownModelMessage(db: ExperimentDb, spec: string, addHow: string): string {
  const names = [...listBuiltinModels(), ...listModels(db).map((m) => m.name)];
  return `model "${spec}" is not one of the app's models (${names.length ? names.join(', ') : 'none yet'}); a request names a model by its name in Models, never by a path. ${addHow}`;
}
