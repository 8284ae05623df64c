// Training checkpoints that other tools can open:
//   full fine-tuning → a Hugging Face model folder (model.safetensors, config.json, tokenizer
//                      files copied from the base model), loadable by transformers;
//   LoRA             → a PEFT adapter (adapter_model.safetensors, adapter_config.json);
// and, for an exact resume, the optimizer moments (optimizer.safetensors) and the step count,
// RNG state and run-loop state (trainer_state.json). A checkpoint folder is written next to
// its destination and renamed into place, so a crash never leaves half of one.
import { randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { PHRASED } from '../../issues.ts';
import { type LlamaConfig, parseConfig, weightShapes } from '../nn/config.ts';
import { loadModelFolder } from '../nn/hf-model.ts';
import { type LoraSpec, loraSpecFromPeftConfig, peftAdapterConfig } from '../nn/lora.ts';
import { type Float32Tensor, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../nn/safetensors.ts';
import type { CriticState } from './critic.ts';
import type { RngState } from './rng.ts';

export const FILES = {
  model: 'model.safetensors',
  config: 'config.json',
  adapter: 'adapter_model.safetensors',
  adapterConfig: 'adapter_config.json',
  optimizer: 'optimizer.safetensors',
  state: 'trainer_state.json',
  teacher: 'teacher.safetensors',
  critic: 'critic.safetensors',
} as const;

/** Files of the base model folder that make a full checkpoint a complete model folder. */
const COPIED_FROM_SOURCE = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
  'chat_template.jinja',
  'chat_template.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
];

export interface CheckpointSource {
  /** The base model's folder. */
  dir?: string;
  /** The base model's name or path as PEFT records it (default: `dir`). */
  nameOrPath?: string;
}

export interface TrainerState {
  /** Updates applied so far. */
  step: number;
  rng: RngState;
  /** Trainable weights in flat-buffer order: the moments are only valid for this layout. */
  layout: [string, number[]][];
  /** Informational: the mode, optimizer and loss the run used. */
  mode?: unknown;
  optimizer?: unknown;
  loss?: unknown;
  /** The run loop's own state, stored as given. */
  extra?: unknown;
  /** Mixed precision: the dynamic loss scale and its count of good steps, so a resume continues with them. */
  lossScale?: { scale: number; goodSteps: number };
}

const stateSchema = z.object({
  format: z.literal('autodidact-trainer-state'),
  version: z.literal(1),
  step: z.number().int().nonnegative(),
  rng: z.tuple([z.number().int(), z.number().int(), z.number().int(), z.number().int()]),
  layout: z.array(z.tuple([z.string(), z.array(z.number().int().nonnegative())])),
  mode: z.unknown().optional(),
  optimizer: z.unknown().optional(),
  loss: z.unknown().optional(),
  extra: z.unknown().optional(),
  lossScale: z.object({ scale: z.number().positive(), goodSteps: z.number().int().nonnegative() }).optional(),
});

export interface CheckpointContents {
  config: LlamaConfig;
  /** The adapter spec under LoRA, null for full weights. */
  lora: LoraSpec | null;
  /** The trainable weights: HF names (full) or PEFT names (LoRA). */
  weights: Map<string, Float32Tensor>;
  /** AdamW moments in the state's layout order. */
  optimizer?: { m: Float32Array; v: Float32Array } | null;
  state?: TrainerState | null;
  source?: CheckpointSource;
  /** An EMA teacher's values of the trainable weights, flat in the state's layout order. */
  teacher?: Float32Array | null;
  /** The actor–critic's value head, its AdamW moments and its update count (runtime/critic.ts). */
  critic?: CriticState | null;
}

const ARCHITECTURE_CLASS: Record<LlamaConfig['architecture'], string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  mistral: 'MistralForCausalLM',
};

/** A config.json transformers reads as `config` (used when no base model folder is known). */
export function hfConfigJson(config: LlamaConfig): Record<string, unknown> {
  const rs = config.ropeScaling;
  const ropeScaling =
    rs === null
      ? null
      : rs.type === 'linear'
        ? { rope_type: 'linear', factor: rs.factor }
        : {
            rope_type: 'llama3',
            factor: rs.factor,
            low_freq_factor: rs.lowFreqFactor,
            high_freq_factor: rs.highFreqFactor,
            original_max_position_embeddings: rs.originalMaxPositionEmbeddings,
          };
  const eos = config.eosTokenIds;
  return {
    architectures: [ARCHITECTURE_CLASS[config.architecture]],
    model_type: config.architecture,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: ropeScaling,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_bias: config.attentionBias,
    // Qwen's window applies only when switched on; Mistral's whenever it is set.
    ...(config.slidingWindow ? { sliding_window: config.slidingWindow, use_sliding_window: true } : {}),
    bos_token_id: config.bosTokenId,
    eos_token_id: eos.length === 0 ? null : eos.length === 1 ? eos[0] : eos,
    torch_dtype: 'float32',
  };
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The folders replaceDir works in beside the target NAME: `.NAME.tmp-PID-HEX` (being written)
 * and `.NAME.old-PID-HEX` (the folder it replaces, until the new one is in place).
 */
const SAVE_WORK_FOLDER = /^\.(.+)\.(tmp|old)-(\d+)-[0-9a-f]{8}$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Clears what saves killed mid-way left in `dir`: a `.tmp-` folder is removed; an `.old-` folder
 * is removed too, unless its checkpoint never got its replacement (killed between the two
 * renames), in which case it is put back under its name. Folders of a live process (this one
 * included) are left alone: it may be writing them. Returns what was removed or restored.
 */
export function removeInterruptedSaves(dir: string): { removed: string[]; restored: string[] } {
  const out = { removed: [] as string[], restored: [] as string[] };
  let names: string[];
  try {
    names = fsSync.readdirSync(dir);
  } catch {
    return out;
  }
  // .tmp- first: of a killed replacement, the old folder is the one to keep.
  const work = names.map((name) => ({ name, m: SAVE_WORK_FOLDER.exec(name) })).filter((w) => w.m !== null);
  work.sort((a, b) => (a.m![2] === b.m![2] ? 0 : a.m![2] === 'tmp' ? -1 : 1));
  for (const { name, m } of work) {
    const pid = Number(m![3]);
    if (pid === process.pid || processAlive(pid)) continue;
    const target = path.join(dir, m![1]);
    if (m![2] === 'old' && !fsSync.existsSync(target)) {
      fsSync.renameSync(path.join(dir, name), target);
      out.restored.push(m![1]);
    } else {
      fsSync.rmSync(path.join(dir, name), { recursive: true, force: true });
      out.removed.push(name);
    }
  }
  return out;
}

/** Write a folder at `dir` through `fill`, replacing any folder there only once it is complete. */
async function replaceDir(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  await fs.mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${path.basename(abs)}.tmp-${tag}`);
  await fs.mkdir(tmp);
  try {
    await fill(tmp);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const st = await fs.stat(abs).catch(() => null);
  if (st && !st.isDirectory()) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw new Error(`cannot save a checkpoint to ${abs}: a file is in the way`);
  }
  const old = st ? path.join(parent, `.${path.basename(abs)}.old-${tag}`) : null;
  if (old) await fs.rename(abs, old);
  await fs.rename(tmp, abs);
  if (old) await fs.rm(old, { recursive: true, force: true });
}

/** Save `c` into `dir` (replaced as a whole). */
export async function saveCheckpoint(dir: string, c: CheckpointContents): Promise<void> {
  const sourceDir = c.source?.dir ? path.resolve(c.source.dir) : null;
  await replaceDir(dir, async (tmp) => {
    // transformers rejects a safetensors file whose metadata lacks format "pt".
    const meta = { format: 'pt' };
    if (c.lora) {
      await writeSafetensors(path.join(tmp, FILES.adapter), c.weights, meta);
      await writeJson(path.join(tmp, FILES.adapterConfig), peftAdapterConfig(c.lora, c.source?.nameOrPath ?? sourceDir));
    } else {
      await writeSafetensors(path.join(tmp, FILES.model), c.weights, meta);
      let config: Record<string, unknown> = hfConfigJson(c.config);
      if (sourceDir && (await exists(path.join(sourceDir, FILES.config)))) {
        // Keep every field of the original, but say the weights are now float32.
        config = (await readJson(path.join(sourceDir, FILES.config))) as Record<string, unknown>;
        if ('dtype' in config) config.dtype = 'float32';
        else config.torch_dtype = 'float32';
      }
      await writeJson(path.join(tmp, FILES.config), config);
      if (sourceDir) {
        for (const f of COPIED_FROM_SOURCE) {
          if (await exists(path.join(sourceDir, f))) await fs.copyFile(path.join(sourceDir, f), path.join(tmp, f));
        }
      }
    }
    if (c.optimizer) {
      const n = c.optimizer.m.length;
      await writeSafetensors(path.join(tmp, FILES.optimizer), [
        ['exp_avg', { shape: [n], data: c.optimizer.m }],
        ['exp_avg_sq', { shape: [n], data: c.optimizer.v }],
      ]);
    }
    if (c.teacher) await writeSafetensors(path.join(tmp, FILES.teacher), [['ema', { shape: [c.teacher.length], data: c.teacher }]], meta);
    if (c.critic) {
      const { weight, bias, m, v, step } = c.critic;
      await writeSafetensors(
        path.join(tmp, FILES.critic),
        [
          ['value_head.weight', { shape: [1, weight.length], data: weight }],
          ['value_head.bias', { shape: [1], data: bias }],
          ['exp_avg', { shape: [m.length], data: m }],
          ['exp_avg_sq', { shape: [v.length], data: v }],
        ],
        { ...meta, step: String(step) },
      );
    }
    if (c.state) await writeJson(path.join(tmp, FILES.state), { format: 'autodidact-trainer-state', version: 1, ...c.state });
  });
}

export interface LoadedCheckpoint {
  /** The adapter spec of a PEFT adapter folder, null for a model folder. */
  lora: LoraSpec | null;
  /** config.json of a model folder (null for an adapter). */
  config: LlamaConfig | null;
  weights: Map<string, Float32Tensor>;
  optimizer: { m: Float32Array; v: Float32Array } | null;
  state: TrainerState | null;
  /** An EMA teacher's flat values, when one was saved. */
  teacher: Float32Array | null;
  /** The actor–critic's critic, when one was saved. */
  critic: CriticState | null;
}

/** Read a checkpoint folder: a PEFT adapter or a Hugging Face model, with trainer state if saved. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const abs = path.resolve(dir);
  if (!(await exists(abs))) throw new Error(`checkpoint folder not found: ${abs}`);
  let lora: LoraSpec | null = null;
  let config: LlamaConfig | null = null;
  let weights: Map<string, Float32Tensor>;
  if (await exists(path.join(abs, FILES.adapterConfig))) {
    lora = loraSpecFromPeftConfig(await readJson(path.join(abs, FILES.adapterConfig)), path.join(abs, FILES.adapterConfig));
    weights = await readSafetensors(path.join(abs, FILES.adapter));
  } else if (await exists(path.join(abs, FILES.model))) {
    const configFile = path.join(abs, FILES.config);
    config = parseConfig(await readJson(configFile), configFile);
    const wanted = new Set(weightShapes(config).map(([n]) => n));
    weights = await readSafetensors(path.join(abs, FILES.model), (name) => wanted.has(name));
  } else if (await exists(path.join(abs, 'model.safetensors.index.json'))) {
    const model = await loadModelFolder(abs);
    config = model.config;
    weights = model.weights;
  } else {
    throw new Error(`${abs} is not a checkpoint: it has neither ${FILES.adapterConfig} (LoRA) nor ${FILES.model} (full weights)`);
  }

  let state: TrainerState | null = null;
  if (await exists(path.join(abs, FILES.state))) {
    const parsed = stateSchema.safeParse(await readJson(path.join(abs, FILES.state)), PHRASED);
    if (!parsed.success) throw new Error(`${path.join(abs, FILES.state)}: ${parsed.error.issues[0].message}`);
    const { format: _format, version: _version, ...rest } = parsed.data;
    state = rest as TrainerState;
  }
  let optimizer: LoadedCheckpoint['optimizer'] = null;
  if (await exists(path.join(abs, FILES.optimizer))) {
    const t = await readSafetensors(path.join(abs, FILES.optimizer));
    const m = t.get('exp_avg');
    const v = t.get('exp_avg_sq');
    if (!m || !v) throw new Error(`${path.join(abs, FILES.optimizer)}: expected tensors exp_avg and exp_avg_sq`);
    optimizer = { m: m.data, v: v.data };
  }
  let teacher: Float32Array | null = null;
  if (await exists(path.join(abs, FILES.teacher))) {
    const ema = (await readSafetensors(path.join(abs, FILES.teacher))).get('ema');
    if (!ema) throw new Error(`${path.join(abs, FILES.teacher)}: expected the tensor ema`);
    teacher = ema.data;
  }
  const critic = (await exists(path.join(abs, FILES.critic))) ? await readCritic(path.join(abs, FILES.critic)) : null;
  return { lora, config, weights, optimizer, state, teacher, critic };
}

async function readCritic(file: string): Promise<CriticState> {
  const header = await readSafetensorsHeader(file);
  const t = await readSafetensors(file, undefined, header);
  const get = (name: string) => {
    const x = t.get(name);
    if (!x) throw new Error(`${file}: expected the tensor ${name}`);
    return x.data;
  };
  const step = Number(header.metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${file}: its metadata "step" must be a whole number of updates, got ${JSON.stringify(header.metadata.step ?? null)}`);
  return { weight: get('value_head.weight'), bias: get('value_head.bias'), m: get('exp_avg'), v: get('exp_avg_sq'), step };
}
