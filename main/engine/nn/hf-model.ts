// Load a Hugging Face model folder: config.json, the weights (model.safetensors, or shards listed
// in model.safetensors.index.json; f32, f16 or bf16, widened to float32 unless `keepHalf` asks
// for float16: see LoadOptions), the tokenizer and its chat template. Every tensor the model reads is checked for presence and shape before any
// weight data is read, so a wrong or partial download fails fast and says which file is at fault.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseJsonText } from './json-text.ts';
import { type LlamaConfig, parseConfig, weightShapes } from './config.ts';
import { type Float32Tensor, type KeepHalf, type SafetensorsHeader, type WeightTensor, readSafetensorsHeader, readSafetensorsKeepingHalf } from './safetensors.ts';
import { TextTokenizer } from './tokenizer.ts';

export type SourceDType = 'float32' | 'float16' | 'bfloat16';

export interface HfModel<W extends WeightTensor = Float32Tensor> {
  dir: string;
  config: LlamaConfig;
  /** Exactly the tensors of weightShapes(config), by Hugging Face name: float32, or float16 where LoadOptions.keepHalf kept them. */
  weights: Map<string, W>;
  /** The element type the checkpoint stores its weights in (that of the embedding table). */
  sourceDtype: SourceDType;
  tokenizer: TextTokenizer | null;
  chatTemplate: string | null;
  /** Number of distinct parameters (tied embeddings counted once). */
  parameterCount: number;
}

const SOURCE_DTYPES: Record<string, SourceDType> = { F32: 'float32', F64: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** A JSON file of a model folder; errors name the file (`what`: how to call it when missing). */
export async function readJson(file: string, what: string = path.basename(file)): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${what} not found: ${file}`);
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseJsonText(text, file);
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/** The safetensors files of a folder and which file holds each tensor. */
async function locateTensors(dir: string): Promise<Map<string, SafetensorsHeader>> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  let files: string[];
  let indexMap: Map<string, string> | null = null;
  if (await exists(index)) {
    const json = (await readJson(index, 'weight index')) as { weight_map?: unknown };
    if (!json || typeof json.weight_map !== 'object' || json.weight_map === null) {
      throw new Error(`${index}: missing the "weight_map" object`);
    }
    indexMap = new Map();
    for (const [name, file] of Object.entries(json.weight_map as Record<string, unknown>)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
        throw new Error(`${index}: weight_map entry for "${name}" must be a file name in the same folder`);
      }
      indexMap.set(name, file);
    }
    files = [...new Set(indexMap.values())].sort();
  } else if (await exists(single)) {
    files = ['model.safetensors'];
  } else {
    const bins = (await fs.readdir(dir)).filter((f) => f.endsWith('.bin') || f.endsWith('.pt') || f.endsWith('.gguf'));
    const hint = bins.length > 0 ? ` (found ${bins.join(', ')}: convert to safetensors, e.g. save_pretrained(..., safe_serialization=True))` : '';
    throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json${hint}`);
  }

  const headers = await Promise.all(files.map((f) => readSafetensorsHeader(path.join(dir, f))));
  const fileOf = new Map<string, SafetensorsHeader>();
  if (indexMap) {
    // The index is what transformers follows, so it decides which shard a tensor is read from.
    const byName = new Map(files.map((f, i) => [f, headers[i]]));
    for (const [name, file] of indexMap) {
      const h = byName.get(file)!;
      if (!h.entries.has(name)) throw new Error(`${index} puts tensor "${name}" in ${file}, but that file does not hold it`);
      fileOf.set(name, h);
    }
  } else {
    for (const name of headers[0].entries.keys()) fileOf.set(name, headers[0]);
  }
  return fileOf;
}

/** eos_token_id of config.json or generation_config.json: a number, a list, or absent. */
function eosIds(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

export interface LoadOptions {
  /**
   * Hold half-precision tensors as float16 on the host (2 bytes a value, no float32 copy made),
   * for a run whose frozen weights are only ever read as float16 (precision "mixed": see
   * hostHalf in runtime/precision.ts). Omitted: everything widened to float32.
   */
  keepHalf?: KeepHalf;
}

export async function loadModelFolder(dir: string): Promise<HfModel>;
export async function loadModelFolder(dir: string, options: LoadOptions): Promise<HfModel<WeightTensor>>;
export async function loadModelFolder(dir: string, options: LoadOptions = {}): Promise<HfModel<WeightTensor>> {
  const abs = path.resolve(dir);
  const st = await fs.stat(abs).catch(() => null);
  if (!st) throw new Error(`model folder not found: ${abs}`);
  if (!st.isDirectory()) throw new Error(`not a model folder (it is a file): ${abs}`);

  const configFile = path.join(abs, 'config.json');
  const config = parseConfig(await readJson(configFile, 'config.json'), configFile);
  const fileOf = await locateTensors(abs);

  // Check every tensor the model reads before reading any data.
  const wanted = weightShapes(config);
  for (const [name, shape] of wanted) {
    const h = fileOf.get(name);
    if (!h) {
      throw new Error(`${abs}: the checkpoint has no tensor "${name}" (shape [${shape.join(', ')}]) that config.json (${config.architecture}) requires`);
    }
    const e = h.entries.get(name)!;
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${h.file}: tensor "${name}" has shape [${e.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`);
    }
    if (!(e.dtype in SOURCE_DTYPES)) {
      throw new Error(`${h.file}: tensor "${name}" has dtype ${e.dtype}; only F32, F16, BF16 and F64 weights are supported (quantized checkpoints are not)`);
    }
  }

  // The tokenizer is cheap to load, so its errors come before the weights are read.
  const generationConfig = (await exists(path.join(abs, 'generation_config.json')))
    ? ((await readJson(path.join(abs, 'generation_config.json'), 'generation_config.json')) as { eos_token_id?: unknown })
    : {};
  const tokenizer = await TextTokenizer.fromFolder(abs, [...config.eosTokenIds, ...eosIds(generationConfig?.eos_token_id)]);
  // An id past the embedding table would make Gather read out of bounds.
  if (tokenizer && tokenizer.vocabSize > config.vocabSize) {
    throw new Error(`${abs}: tokenizer.json has ${tokenizer.vocabSize} token ids but config.json vocab_size is ${config.vocabSize}`);
  }

  // With tie_word_embeddings, transformers ties lm_head to the embeddings even when the file
  // stores a copy, so a stored lm_head.weight is never read; extra tensors (rotary_emb.inv_freq,
  // ...) are ignored the same way.
  const byFile = new Map<SafetensorsHeader, Set<string>>();
  for (const [name] of wanted) {
    const h = fileOf.get(name)!;
    let set = byFile.get(h);
    if (!set) byFile.set(h, (set = new Set()));
    set.add(name);
  }
  const weights = new Map<string, WeightTensor>();
  for (const [h, names] of byFile) {
    const got = await readSafetensorsKeepingHalf(h.file, options.keepHalf ?? 'none', (name) => names.has(name), h);
    for (const [name, t] of got) weights.set(name, t);
  }
  // Keep weightShapes order, which callers (flat parameter buffers) may rely on.
  const ordered = new Map<string, WeightTensor>();
  for (const [name] of wanted) ordered.set(name, weights.get(name)!);

  const embed = fileOf.get('model.embed_tokens.weight')!.entries.get('model.embed_tokens.weight')!;
  const parameterCount = wanted.reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);

  return {
    dir: abs,
    config,
    weights: ordered,
    sourceDtype: SOURCE_DTYPES[embed.dtype],
    tokenizer,
    chatTemplate: tokenizer?.chatTemplate ?? null,
    parameterCount,
  };
}
