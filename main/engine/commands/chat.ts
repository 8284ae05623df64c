// The `chatLoad` and `chat` engine commands: chat completions from a model folder, for
// `autodidact serve-model`. The messages go through the model's chat template with the
// generation prompt (as `rl/prompts.ts` encodes a chat prompt), the samples come from the
// engine's generator, and the text is streamed back as progress while it is sampled. The loaded
// model and its compiled graphs stay cached between calls.
import { z } from 'zod';
import { Generator } from '../generate/generator.ts';
import { decodeText } from '../generate/stopping.ts';
import { type HfModel, loadModelFolder } from '../nn/hf-model.ts';
import type { Device } from '../runtime/devices.ts';
import { DeviceTransfer, FrozenWeights } from '../runtime/parameter-store.ts';
import { EngineError, type CommandContext } from '../protocol.ts';
import { deviceRequest, engineDevice } from './system.ts';

export const chatLoadParams = z.object({
  /** Absolute path of a Hugging Face model folder. */
  model: z.string().min(1),
  device: deviceRequest.default('cpu'),
});

export const chatParams = chatLoadParams.extend({
  messages: z.array(z.object({ role: z.string().min(1), content: z.string() })).min(1),
  n: z.number().int().min(1).max(16).default(1),
  /** New tokens at most; default: what the context leaves after the prompt. */
  maxTokens: z.number().int().positive().optional(),
  /** 0 = greedy. */
  temperature: z.number().min(0).max(2).default(1),
  topP: z.number().gt(0).max(1).default(1),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  stop: z.array(z.string().min(1)).max(4).default([]),
});

export interface ChatProgress {
  /** Text to append to choice `index`, as it is sampled (never part of a stop string). */
  deltas: { index: number; text: string }[];
}

export interface ChatChoice {
  index: number;
  /** The reply, cut before the stop string that ended it (as OpenAI returns it). */
  text: string;
  finishReason: 'stop' | 'length';
  completionTokens: number;
}

interface Loaded {
  dir: string;
  deviceName: string;
  model: HfModel;
  transfer: DeviceTransfer;
  weights: FrozenWeights;
  generator: Generator;
}

let cached: Loaded | null = null;

async function load(dir: string, device: Device): Promise<Loaded> {
  if (cached?.dir === dir && cached.deviceName === device.name) return cached;
  await releaseChat();
  let model: HfModel;
  try {
    model = await loadModelFolder(dir);
  } catch (e) {
    throw new EngineError((e as Error).message, 'NOT_FOUND', { model: dir });
  }
  if (!model.tokenizer) throw new EngineError(`${dir} has no tokenizer.json, so chat messages cannot be encoded`, 'BAD_PARAMS', { model: dir });
  if (!model.tokenizer.chatTemplate) {
    throw new EngineError(`${dir} has no chat template (neither chat_template in tokenizer_config.json nor chat_template.jinja)`, 'BAD_PARAMS', { model: dir });
  }
  const transfer = new DeviceTransfer(device, 'float32');
  // Only generation reads these weights: on a GPU q, k and v packed as one product per layer.
  const weights = await FrozenWeights.create(model.weights, [...model.weights.keys()], transfer, false, true);
  const generator = await Generator.create({ config: model.config, weights, device, maxLength: model.config.maxPositionEmbeddings });
  cached = { dir, deviceName: device.name, model, transfer, weights, generator };
  return cached;
}

export async function releaseChat(): Promise<void> {
  const c = cached;
  cached = null;
  if (!c) return;
  await c.generator.release();
  c.weights.release();
  await c.transfer.release();
}

/** Load the model (failing early for a bad folder) and say what it can take. */
export async function chatLoad(params: z.output<typeof chatLoadParams>) {
  const device = await engineDevice(params.device);
  const { model } = await load(params.model, device);
  return { model: model.dir, device: device.name, contextLength: model.config.maxPositionEmbeddings };
}

/** Where the earliest stop string starts in `text`, or -1. */
function stopAt(text: string, stops: readonly string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/**
 * The part of a reply that is safe to send while it is still being sampled: without a trailing
 * incomplete character (the decoder's U+FFFD) and without a trailing piece that may yet become a
 * stop string.
 */
export function streamableText(text: string, stops: readonly string[]): string {
  const cut = stopAt(text, stops);
  if (cut >= 0) return text.slice(0, cut);
  let end = text.length;
  while (end > 0 && text[end - 1] === '\uFFFD') end--;
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, end); k > hold; k--) {
      if (text.slice(end - k, end) === s.slice(0, k)) {
        hold = k;
        break;
      }
    }
  }
  return text.slice(0, end - hold);
}

export async function chat(params: z.output<typeof chatParams>, ctx: CommandContext<ChatProgress>) {
  const device = await engineDevice(params.device);
  const { model, generator } = await load(params.model, device);
  const tokenizer = model.tokenizer!;
  let promptIds: number[];
  try {
    promptIds = tokenizer.encode(tokenizer.applyChatTemplate(params.messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  } catch (e) {
    throw new EngineError((e as Error).message, 'BAD_PARAMS', { param: 'messages' });
  }
  const context = model.config.maxPositionEmbeddings;
  const maxTokens = params.maxTokens ?? context - promptIds.length;
  if (promptIds.length + maxTokens > context || maxTokens < 1) {
    throw new EngineError(
      `This model's maximum context length is ${context} tokens. However, you requested ${promptIds.length + Math.max(maxTokens, 1)} tokens (${promptIds.length} in the messages, ${Math.max(maxTokens, 1)} in the completion). Please reduce the length of the messages or completion.`,
      'TOO_LONG',
      { promptTokens: promptIds.length, maxTokens, context },
    );
  }
  const rows = Array.from({ length: params.n }, () => ({ ids: [] as number[], sent: 0 }));
  const result = await generator.generate({
    promptIds: [promptIds],
    samplesPerPrompt: params.n,
    maxNewTokens: maxTokens,
    temperature: params.temperature,
    topP: params.topP,
    seed: params.seed,
    stopStrings: params.stop,
    tokenizer,
    signal: ctx.signal,
    onTokens: (tokens) => {
      const deltas: ChatProgress['deltas'] = [];
      tokens.forEach((t, index) => {
        if (t === null) return;
        const row = rows[index];
        row.ids.push(t);
        const safe = streamableText(decodeText(tokenizer, row.ids), params.stop);
        if (safe.length > row.sent) {
          deltas.push({ index, text: safe.slice(row.sent) });
          row.sent = safe.length;
        }
      });
      if (deltas.length) ctx.progress({ deltas });
    },
  });
  const choices: ChatChoice[] = result.samples.map((s) => {
    const text = s.text ?? decodeText(tokenizer, s.tokenIds);
    const cut = s.finishReason === 'stop' ? stopAt(text, params.stop) : -1;
    return {
      index: s.sampleIndex,
      text: cut >= 0 ? text.slice(0, cut) : text,
      finishReason: s.finishReason === 'length' ? 'length' : 'stop',
      completionTokens: s.tokenIds.length,
    };
  });
  return { model: model.dir, promptTokens: promptIds.length, choices };
}
