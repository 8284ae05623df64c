// The `logprobs` engine command: per-token log-probabilities of texts (or token ids) under a
// model folder. The loaded model and its compiled graphs stay cached between calls, so a caller
// can send a long file batch by batch without reloading.
//
// Convention: `ids` are exactly what Hugging Face's `tokenizer(text).input_ids` gives (with the
// post-processor's special tokens, e.g. a leading BOS), and logprobs[i] = log p(ids[i] | ids[<i]).
// Nothing precedes the first token, so logprobs[0] is null; the arrays always have equal length.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EngineError, type CommandContext } from '../protocol.ts';
import { type HfModel, loadModelFolder } from '../nn/hf-model.ts';
import type { Device } from '../runtime/devices.ts';
import { DeviceTransfer, FrozenWeights } from '../runtime/parameter-store.ts';
import { TokenScorer } from '../runtime/token-logprobs.ts';
import { deviceRequest, engineDevice } from './system.ts';

export const logprobsParams = z
  .object({
    /** Absolute path of a Hugging Face model folder. */
    model: z.string().min(1),
    /** Each input is a text (tokenized with the model's tokenizer) or token ids (scored as they are). */
    inputs: z.array(z.union([z.string(), z.array(z.number().int().nonnegative())])).min(1),
    device: deviceRequest.default('cpu'),
    /** Rows per session run; a call with more inputs runs several batches. */
    batchSize: z.number().int().positive().max(4096).default(8),
    /** Apply the tokenizer's post-processor (BOS/EOS as the model was trained with). */
    addSpecialTokens: z.boolean().default(true),
  });

export interface LogprobsProgress {
  done: number;
  total: number;
}

export interface ScoredSequence {
  ids: number[];
  /** The vocabulary entry of each id (e.g. "Ġthe" for byte-level BPE), as convert_ids_to_tokens gives. */
  tokens: string[];
  /** logprobs[0] is null: nothing precedes the first token. */
  logprobs: (number | null)[];
}

interface Loaded {
  key: string;
  model: HfModel;
  device: Device;
  weights: FrozenWeights;
  transfer: DeviceTransfer;
  scorer: TokenScorer;
}

let cached: Loaded | null = null;

/** The folder's identity: its path, the device, and when its weights and config last changed. */
function cacheKey(dir: string, device: Device): string {
  const stamp = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json']
    .map((f) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.mtimeMs ?? 0)
    .join(',');
  return `${dir}|${device.name}|${stamp}`;
}

async function load(dir: string, device: Device): Promise<Loaded> {
  if (!fs.existsSync(dir)) throw new EngineError(`model folder not found: ${dir}`, 'NOT_FOUND', { model: dir });
  const key = cacheKey(dir, device);
  if (cached?.key === key) return cached;
  await releaseLogprobs();
  const model = await loadModelFolder(dir);
  const transfer = new DeviceTransfer(device, 'float32');
  const weights = await FrozenWeights.create(model.weights, [...model.weights.keys()], transfer);
  const scorer = new TokenScorer({ config: model.config, weights, device });
  cached = { key, model, device, weights, transfer, scorer };
  return cached;
}

export async function releaseLogprobs(): Promise<void> {
  const c = cached;
  cached = null;
  if (!c) return;
  await c.scorer.release();
  c.weights.release();
  await c.transfer.release();
}

export async function logprobs(params: z.output<typeof logprobsParams>, ctx: CommandContext<LogprobsProgress>) {
  const device = await engineDevice(params.device);
  const { model, scorer } = await load(params.model, device);
  const tokenizer = model.tokenizer;
  const { vocabSize, maxPositionEmbeddings: max } = model.config;
  const sequences = params.inputs.map((input, index) => {
    let ids: number[];
    if (typeof input === 'string') {
      if (!tokenizer) throw new EngineError(`${model.dir} has no tokenizer.json, so texts cannot be tokenized; pass token ids instead`, 'BAD_PARAMS', { index });
      ids = tokenizer.encode(input, { addSpecialTokens: params.addSpecialTokens });
    } else {
      ids = input;
      const bad = ids.find((id) => id >= vocabSize);
      if (bad !== undefined) throw new EngineError(`input ${index}: token id ${bad} is outside the vocabulary (0..${vocabSize - 1})`, 'BAD_PARAMS', { index });
    }
    if (ids.length > max) {
      throw new EngineError(`input ${index}: ${ids.length} tokens, more than the model's max_position_embeddings (${max})`, 'TOO_LONG', { index, tokens: ids.length, max });
    }
    return ids;
  });

  const results: ScoredSequence[] = [];
  for (let start = 0; start < sequences.length; start += params.batchSize) {
    ctx.signal.throwIfAborted();
    const batch = sequences.slice(start, start + params.batchSize);
    const scored = await scorer.score(batch);
    batch.forEach((ids, j) => {
      results.push({
        ids,
        tokens: ids.map((id) => tokenizer?.idToToken(id) ?? String(id)),
        logprobs: ids.length === 0 ? [] : [null, ...Array.from(scored[j])],
      });
    });
    ctx.progress({ done: results.length, total: sequences.length });
  }
  return { model: model.dir, device: device.name, results };
}
