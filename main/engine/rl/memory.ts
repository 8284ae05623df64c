// How much memory a run's graphs will take, decided before any is built. The training step holds
// each layer's attention for every sequence of the update (B × heads × T² values), so memory grows
// with the square of the longest prompt: on the CPU a run that does not fit would grow until the
// kernel kills the whole app (the server with it). The loop refuses such a run at setup, with
// what to change, instead. The estimate is deliberately on the high side: fitted to peak RSS
// measured on the CPU provider (tiny-chars with 2 and 8 layers, sequences of 115 to 615 tokens,
// with and without the KL reference pass: 1.0-1.45x the measured peak).
import os from 'node:os';
import type { LinearModule, LlamaConfig } from '../nn/config.ts';
import { loraTargets } from '../nn/lora.ts';
import { nvidiaGpuMemory } from '../runtime/adapters.ts';
import type { Device } from '../runtime/devices.ts';
import type { Precision } from '../runtime/precision.ts';
import type { HostWeight } from '../runtime/weights.ts';

const GIB = 1024 ** 3;
const F32 = 4;
const F16 = 2;
/** The process itself: Node, onnxruntime, the tokenizer and the run's bookkeeping. */
const BASE_BYTES = 0.3 * GIB;

export interface RunShapes {
  /** Sequences in the update (promptsPerStep × trainSamples), their padded length, and how many go through one pass (default all). */
  update: { size: number; seqLen: number; microBatch?: number };
  /** Whether the update also runs the reference model's log-probs (klCoef > 0). */
  reference: boolean;
  /** Rows generated at once (prompts × samples per prompt) and the longest prompt + response. */
  generate: { rows: number; prompts: number; maxLength: number };
  /** Trainable values (all weights, or the LoRA adapters). */
  trainable: number;
  /** An EMA teacher: its values of the trainable weights on the host and on the device. */
  teacher?: boolean;
  /** The actor–critic's critic: a forward pass of the update's batch to its hidden states, which its graphs and the host hold. */
  critic?: boolean;
  /** Mixed precision: the device holds the weights and the KV cache in float16 (activations are still counted as float32: on the high side). */
  precision?: Precision;
  /** Values of a copy of the adapted weights with the adapters merged in, for generation (adaptersMerged), held as the weights are. */
  merged?: number;
}

/** Values in the model's weights. */
export function weightCount(c: LlamaConfig): number {
  const attention = c.hiddenSize * c.headDim * (2 * c.numHeads + 2 * c.numKvHeads);
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  const embeddings = c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  return c.numLayers * (attention + mlp + 2 * c.hiddenSize) + embeddings + c.hiddenSize;
}

/** A forward (and with `backward`, its gradient) over a [size, seqLen] batch: its activations at their peak. */
function passBytes(c: LlamaConfig, size: number, seqLen: number, backward: boolean): number {
  const attention = size * c.numHeads * seqLen * seqLen * F32;
  const perToken = size * seqLen * (c.hiddenSize + c.intermediateSize) * F32;
  const logits = size * seqLen * c.vocabSize * F32;
  // Kept per layer for the backward pass, and live at once within one layer's attention.
  const perLayer = backward ? 2.5 * attention + 2 * perToken : 0;
  return c.numLayers * perLayer + 5 * attention + 2 * perToken + 3 * logits;
}

/**
 * The estimated peak memory of a run, in bytes: on the CPU the process's (its resident size), on
 * a GPU (`onDevice`) the device's, which holds the same weights, states and activations but not
 * the process itself.
 */
export function estimateRunBytes(c: LlamaConfig, shapes: RunShapes, onDevice = false): number {
  // Under mixed precision the device's weight views and cache are float16; masters and moments stay float32.
  const held = onDevice && shapes.precision === 'mixed' ? F16 : F32;
  const weights = weightCount(c) * held;
  // Parameters, gradients, two AdamW moments and the updated parameters of what is trained.
  const optimizer = 5 * shapes.trainable * F32;
  // One micro-batch's pass at a time; its gradient sums are one more copy of what is trained.
  const micro = Math.min(shapes.update.microBatch ?? shapes.update.size, shapes.update.size);
  const accumulated = micro < shapes.update.size ? shapes.trainable * F32 : 0;
  const update = passBytes(c, micro, shapes.update.seqLen, true) + accumulated;
  // Each graph has its own onnxruntime arena, which keeps its peak: the passes add up.
  const reference = shapes.reference ? weights + passBytes(c, micro, shapes.update.seqLen, false) : 0;
  const kvCache = 2 * c.numLayers * shapes.generate.rows * c.numKvHeads * c.headDim * shapes.generate.maxLength * held;
  const prefill = passBytes(c, shapes.generate.prompts, shapes.generate.maxLength, false);
  const teacher = shapes.teacher ? 2 * shapes.trainable * F32 : 0;
  // The hidden-state pass (counted as a log-prob pass, on the high side), and the hidden states on
  // the host and as the input of the critic's two graphs.
  const hidden = shapes.update.size * shapes.update.seqLen * c.hiddenSize * F32;
  const critic = shapes.critic ? passBytes(c, shapes.update.size, shapes.update.seqLen, false) + 3 * hidden : 0;
  const merged = (shapes.merged ?? 0) * held;
  return (onDevice ? 0 : BASE_BYTES) + weights + optimizer + update + reference + kvCache + prefill + teacher + critic + merged;
}

/** Values of the linear weights LoRA adapts in `modules` of every layer: what a merged copy holds. */
export function adaptedWeightValues(c: LlamaConfig, modules: readonly LinearModule[]): number {
  return loraTargets(c, { rank: 1, alpha: 1, targetModules: modules }).reduce((n, t) => n + t.inFeatures * t.outFeatures, 0);
}

/**
 * Whether a LoRA run generates from weights with its adapters merged in (ParameterStore's
 * mergeAdapters): on a GPU, where a decode step is bound by the nodes it dispatches and an
 * unmerged adapter adds two products per linear layer, if the merged copy fits beside what the run
 * needs without it (`shapes`, as planned) or no budget is known; never on the CPU, whose
 * memory is the whole app's and whose decode step is not dispatch-bound.
 * AUTODIDACT_MERGE_ADAPTERS=0 turns it off (to measure the difference).
 */
export function adaptersMerged(
  c: LlamaConfig,
  config: { mode: 'full' | 'lora'; loraTargets: readonly LinearModule[] },
  shapes: RunShapes,
  budget: MemoryBudget | null,
  env: string | undefined = process.env.AUTODIDACT_MERGE_ADAPTERS,
): boolean {
  if (config.mode !== 'lora' || env?.trim() === '0') return false;
  if (!budget) return true;
  if (!budget.onDevice) return false;
  return estimateRunBytes(c, { ...shapes, merged: adaptedWeightValues(c, config.loraTargets) }, true) <= budget.bytes;
}

/**
 * Bytes of the arrays the host holds a model's weights in, as loaded: 4 a value, or 2 where a
 * half-precision checkpoint is held as float16 (loadModelFolder's keepHalf, under mixed precision).
 */
export function heldWeightBytes(weights: ReadonlyMap<string, HostWeight>): number {
  let n = 0;
  for (const t of weights.values()) n += 'half' in t ? t.half.byteLength : t.data.byteLength;
  return n;
}

/**
 * The host's share of a run on a GPU, in bytes (the device's is estimateRunBytes'): the process,
 * the checkpoint's weights as held (`heldBytes`: heldWeightBytes, kept for the whole run: the
 * frozen base or the reference is uploaded from them), and the trained values that pass through
 * the host: the float32 master buffer and AdamW's two moments as they are made and saved (all
 * weights under full fine-tuning), and an EMA teacher's copy.
 */
export function estimateHostBytes(heldBytes: number, shapes: Pick<RunShapes, 'trainable' | 'teacher'>): number {
  return BASE_BYTES + heldBytes + 3 * shapes.trainable * F32 + (shapes.teacher ? shapes.trainable * F32 : 0);
}

/**
 * The most memory a run may plan for, in bytes: AUTODIDACT_MEMORY_LIMIT (bytes, or with a
 * K, M, G or T suffix, powers of 1024), else three quarters of this machine's memory.
 */
export function memoryLimitBytes(env: string | undefined = process.env.AUTODIDACT_MEMORY_LIMIT, name = 'AUTODIDACT_MEMORY_LIMIT'): number {
  if (env === undefined || env.trim() === '') return 0.75 * os.totalmem();
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(env);
  if (!m) throw new Error(`${name} must be a size such as 8G or 8000M, got ${JSON.stringify(env)}`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: GIB, T: 1024 ** 4 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * unit;
}

/** The memory a run may plan for on its device, and what set it (for messages a person can act on). */
export interface MemoryBudget {
  bytes: number;
  source: string;
  /** A GPU's memory (the process itself is not in it), not the host's. */
  onDevice: boolean;
}

/** The host's budget: memoryLimitBytes(), for a run on the CPU. */
export function hostMemoryBudget(env: string | undefined = process.env.AUTODIDACT_MEMORY_LIMIT): MemoryBudget {
  return {
    bytes: memoryLimitBytes(env),
    source: env?.trim() ? 'AUTODIDACT_MEMORY_LIMIT' : "three quarters of this machine's memory; AUTODIDACT_MEMORY_LIMIT sets it",
    onDevice: false,
  };
}

/**
 * The memory a run on `device` may plan for. On a GPU: AUTODIDACT_GPU_MEMORY (a size, as
 * AUTODIDACT_MEMORY_LIMIT), else 90% of the memory nvidia-smi reports free on GPU 0 (CUDA, or
 * WebGPU on an NVIDIA card), else null: WebGPU tells no adapter's memory, so there the run uses
 * its settings as given.
 */
export async function memoryBudget(
  device: Device,
  env: { gpu?: string; host?: string } = { gpu: process.env.AUTODIDACT_GPU_MEMORY, host: process.env.AUTODIDACT_MEMORY_LIMIT },
  queryNvidia: () => Promise<{ totalBytes: number; freeBytes: number } | undefined> = nvidiaGpuMemory,
): Promise<MemoryBudget | null> {
  if (device.name === 'cpu') return hostMemoryBudget(env.host);
  if (env.gpu?.trim()) return { bytes: memoryLimitBytes(env.gpu, 'AUTODIDACT_GPU_MEMORY'), source: 'AUTODIDACT_GPU_MEMORY', onDevice: true };
  const gpu = await queryNvidia();
  if (!gpu) return null;
  return {
    bytes: 0.9 * gpu.freeBytes,
    source: `90% of the ${formatGiB(gpu.freeBytes)} free of GPU 0's ${formatGiB(gpu.totalBytes)} (nvidia-smi); AUTODIDACT_GPU_MEMORY sets it`,
    onDevice: true,
  };
}

/**
 * Refuses, before any graph is built, a run whose passes would not fit the memory it may use
 * (memoryBudget: the host's on the CPU; the GPU's where it reports it or AUTODIDACT_GPU_MEMORY
 * says). For the loops whose passes are not split to fit (the agent and SVD loops); `passes`
 * says what they are and which settings to lower. Says whether a LoRA run's generation merges
 * its adapters (adaptersMerged).
 */
export async function checkRunFits(
  c: LlamaConfig,
  config: { mode: 'full' | 'lora'; loraTargets: readonly LinearModule[] },
  shapes: RunShapes,
  device: Device,
  passes: string,
  budgetOf: (device: Device) => Promise<MemoryBudget | null> = memoryBudget,
): Promise<{ mergeAdapters: boolean }> {
  const budget = await budgetOf(device);
  const mergeAdapters = device.name !== 'cpu' && adaptersMerged(c, config, shapes, budget);
  if (!budget) return { mergeAdapters };
  const need = estimateRunBytes(c, shapes, budget.onDevice);
  if (need <= budget.bytes) return { mergeAdapters };
  throw new Error(
    `this run would need up to about ${formatGiB(need)} of ${budget.onDevice ? "the GPU's " : ''}memory, more than the ${formatGiB(budget.bytes)} it may use (${budget.source}). ${passes}`,
  );
}

export const formatGiB = (bytes: number): string => `${(bytes / GIB).toFixed(bytes < 10 * GIB ? 1 : 0)} GB`;
