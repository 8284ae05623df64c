// The engine's side of the benchmarks: one training configuration stepped repeatedly, and
// batched sampling, each measured in this process (the bench process does nothing else, so no
// engine worker is needed; the worker adds one message per call, nothing per token).
import path from 'node:path';
import { Generator } from '../main/engine/generate/generator.ts';
import { LINEAR_MODULES } from '../main/engine/nn/config.ts';
import { loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { deviceBufferUsage } from '../main/engine/runtime/device-buffers.ts';
import { type Device, type DeviceRequest, checkPrecision, resolveDevice } from '../main/engine/runtime/devices.ts';
import { DeviceTransfer, FrozenWeights } from '../main/engine/runtime/parameter-store.ts';
import { type Precision, hostHalf } from '../main/engine/runtime/precision.ts';
import { Trainer, makeCausalBatch } from '../main/engine/runtime/trainer.ts';
import { type GenerateResult, type TrainResult, engineThreads, mean, median, peakRssMb, round, syntheticTokens } from './common.ts';

/** The engine's GPU buffers at their peak so far, where it keeps any (WebGPU). */
function deviceBuffersMb(device: Device): { device_buffers_mb?: number } {
  return device.keepsStateOnDevice ? { device_buffers_mb: round(deviceBufferUsage().peakBytes / 1024 ** 2, 1) } : {};
}

export interface TrainBenchOptions {
  model: string;
  device: DeviceRequest;
  batch: number;
  seq: number;
  steps: number;
  warmup: number;
  loraRank: number | null;
  loraAlpha: number | null;
  lr: number;
  seed: number;
  /** Sequences per forward/backward pass (gradient accumulation); null: the whole batch. */
  microBatch?: number | null;
  /** fp32 (default) or mixed precision (a GPU device). */
  precision?: Precision;
}

export async function benchTrain(o: TrainBenchOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const model = await loadModelFolder(o.model, { keepHalf: hostHalf(o.precision ?? 'fp32', o.loraRank !== null ? 'adapters' : 'weights') });
  const device = await resolveDevice(o.device);
  const loadMs = performance.now() - t0;
  const { config } = model;
  if (o.seq > config.maxPositionEmbeddings) throw new Error(`--seq ${o.seq} exceeds the model's max_position_embeddings (${config.maxPositionEmbeddings})`);

  const t1 = performance.now();
  const lora = o.loraRank !== null;
  const trainer = await Trainer.create({
    config,
    weights: model.weights,
    device,
    mode: lora ? { kind: 'lora', rank: o.loraRank!, alpha: o.loraAlpha ?? 2 * o.loraRank!, targetModules: [...LINEAR_MODULES] } : { kind: 'full' },
    loss: { kind: 'sft' },
    batch: { size: o.batch, seqLen: o.seq },
    seed: o.seed,
    precision: o.precision ?? 'fp32',
  });
  const setupMs = performance.now() - t1;
  try {
    // seq + 1 tokens per row: position t reads token t and is trained to predict token t + 1.
    const tokens = syntheticTokens(o.batch * (o.seq + 1), config.vocabSize, o.seed);
    const examples = Array.from({ length: o.batch }, (_, b) => ({ tokens: tokens.slice(b * (o.seq + 1), (b + 1) * (o.seq + 1)) }));
    const batch = makeCausalBatch(examples, { size: o.batch, seqLen: o.seq });
    const losses: number[] = [];
    const times: number[] = [];
    let skipped = 0;
    for (let i = 0; i < o.warmup + o.steps; i++) {
      const s = performance.now();
      const r = await trainer.step(batch, o.lr, o.microBatch ? { microBatch: o.microBatch } : {});
      const ms = performance.now() - s;
      losses.push(r.loss);
      if (r.skipped) skipped++;
      if (i >= o.warmup) times.push(ms);
    }
    const msPerStep = mean(times);
    return {
      bench: 'train',
      impl: 'autodidact',
      model: path.basename(model.dir),
      device: device.name,
      mode: lora ? 'lora' : 'full',
      lora_rank: o.loraRank,
      params: model.parameterCount,
      trainable_params: trainer.store.size,
      batch: o.batch,
      micro_batch: o.microBatch ?? o.batch,
      precision: o.precision ?? 'fp32',
      ...(o.precision === 'mixed' ? { skipped_steps: skipped, loss_scale: trainer.lossScale } : {}),
      seq: o.seq,
      steps: o.steps,
      warmup: o.warmup,
      threads: engineThreads(),
      ms_per_step: round(msPerStep),
      ms_per_step_median: round(median(times)),
      tokens_per_s: round((o.batch * o.seq) / (msPerStep / 1000), 1),
      peak_rss_mb: peakRssMb(),
      ...deviceBuffersMb(device),
      load_ms: round(loadMs, 1),
      setup_ms: round(setupMs, 1),
      loss_first: round(losses[0], 6),
      loss_last: round(losses[losses.length - 1], 6),
    };
  } finally {
    await trainer.release();
  }
}

export interface GenerateBenchOptions {
  model: string;
  device: DeviceRequest;
  batch: number;
  newTokens: number;
  promptLen: number;
  repeats: number;
  warmup: number;
  seed: number;
  /** fp32 (default) or mixed: float16 weights, activations and KV cache (a GPU device). */
  precision?: Precision;
}

export async function benchGenerate(o: GenerateBenchOptions): Promise<GenerateResult> {
  const t0 = performance.now();
  const precision = o.precision ?? 'fp32';
  const model = await loadModelFolder(o.model, { keepHalf: hostHalf(precision, 'nothing') });
  const device = await resolveDevice(o.device);
  const { config } = model;
  await checkPrecision(device, precision);
  const transfer = new DeviceTransfer(device, 'float32');
  // As the chat command holds them: q, k and v packed on a GPU (generation reads them only).
  const weights = await FrozenWeights.create(model.weights, [...model.weights.keys()], transfer, precision === 'mixed', true);
  const loadMs = performance.now() - t0;
  const maxLength = o.promptLen + o.newTokens;
  if (maxLength > config.maxPositionEmbeddings) {
    throw new Error(`--prompt-len + --new-tokens = ${maxLength} exceeds the model's max_position_embeddings (${config.maxPositionEmbeddings})`);
  }
  const generator = await Generator.create({ config, weights, device, maxLength, precision });
  try {
    const tokens = syntheticTokens(o.batch * o.promptLen, config.vocabSize, o.seed);
    const promptIds = Array.from({ length: o.batch }, (_, b) => tokens.slice(b * o.promptLen, (b + 1) * o.promptLen));
    const times: number[] = [];
    for (let i = 0; i < o.warmup + o.repeats; i++) {
      const s = performance.now();
      // Plain sampling at temperature 1 with no EOS, so every row generates exactly newTokens
      // (the reference passes min_new_tokens = max_new_tokens for the same reason).
      const r = await generator.generate({ promptIds, maxNewTokens: o.newTokens, temperature: 1, topP: 1, topK: 0, seed: o.seed + i, eosTokenIds: [] });
      const ms = performance.now() - s;
      const generated = r.samples.reduce((n, x) => n + x.tokenIds.length, 0);
      if (generated !== o.batch * o.newTokens) throw new Error(`the generator returned ${generated} tokens; expected ${o.batch * o.newTokens}`);
      if (i >= o.warmup) times.push(ms);
    }
    const msPerCall = mean(times);
    return {
      bench: 'generate',
      impl: 'autodidact',
      model: path.basename(model.dir),
      device: device.name,
      params: model.parameterCount,
      batch: o.batch,
      prompt_len: o.promptLen,
      new_tokens: o.newTokens,
      precision,
      repeats: o.repeats,
      warmup: o.warmup,
      threads: engineThreads(),
      ms_per_step: round(msPerCall / o.newTokens),
      tokens_per_s: round((o.batch * o.newTokens) / (msPerCall / 1000), 1),
      ms_per_call: round(msPerCall, 1),
      peak_rss_mb: peakRssMb(),
      ...deviceBuffersMb(device),
      load_ms: round(loadMs, 1),
    };
  } finally {
    await generator.release();
    weights.release();
    await transfer.release();
  }
}
