// What the engine benchmarks and the PyTorch reference scripts (bench/reference/) share: the
// synthetic token data (the same 32-bit generator on both sides, so both train on identical
// batches and their first losses can be compared), the memory figure, and the JSON line format.
import os from 'node:os';

/**
 * Token ids from a 32-bit linear congruential generator (Numerical Recipes constants), the same
 * sequence as `tokens()` in bench/reference/_common.py. Uses the high bits (the low bits of an
 * LCG cycle quickly). Benchmark data only: no statistical quality is claimed.
 */
export function syntheticTokens(count: number, vocabSize: number, seed: number): number[] {
  let state = seed >>> 0;
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state >>> 8) % vocabSize;
  }
  return out;
}

/** Peak resident memory of this process so far (ru_maxrss), in MiB, as the Python side reports it. */
export function peakRssMb(): number {
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

export function engineThreads(): number {
  return Number(process.env.AUTODIDACT_THREADS) || os.availableParallelism();
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Train benchmark result line (engine and reference print the same keys). */
export interface TrainResult {
  bench: 'train';
  impl: 'autodidact' | 'pytorch';
  model: string;
  device: string;
  mode: 'full' | 'lora';
  lora_rank: number | null;
  params: number;
  trainable_params: number;
  batch: number;
  /** Sequences per forward/backward pass (the engine's gradient accumulation; absent: the whole batch). */
  micro_batch?: number;
  /** fp32 or mixed (absent: fp32, and always on the reference side before it took --precision). */
  precision?: 'fp32' | 'mixed';
  /** Mixed precision: steps skipped for a float16 overflow, and the loss scale after the last. */
  skipped_steps?: number;
  loss_scale?: number | null;
  seq: number;
  steps: number;
  warmup: number;
  threads: number;
  /** Mean wall time of the timed steps. */
  ms_per_step: number;
  ms_per_step_median: number;
  /** batch · seq / (ms_per_step / 1000): tokens whose next token is trained on per second. */
  tokens_per_s: number;
  peak_rss_mb: number;
  /** The engine's own GPU buffers at their peak (weights, optimizer state; WebGPU only: runtime/device-buffers.ts). */
  device_buffers_mb?: number;
  /** Model load, and graph compilation (engine) or optimizer set-up (reference). */
  load_ms: number;
  setup_ms: number;
  /** Loss of the first (warm-up included) and last step: the two sides should agree on the first. */
  loss_first: number;
  loss_last: number;
}

export interface GenerateResult {
  bench: 'generate';
  impl: 'autodidact' | 'pytorch';
  model: string;
  device: string;
  params: number;
  batch: number;
  prompt_len: number;
  new_tokens: number;
  /** fp32 or mixed (absent: fp32). */
  precision?: 'fp32' | 'mixed';
  repeats: number;
  warmup: number;
  threads: number;
  /** Mean wall time of one generate call divided by new_tokens: one decode step of the batch. */
  ms_per_step: number;
  /** batch · new_tokens per second of a whole generate call (prefill included). */
  tokens_per_s: number;
  ms_per_call: number;
  peak_rss_mb: number;
  /** The engine's own GPU buffers at their peak (weights, KV cache; WebGPU only). */
  device_buffers_mb?: number;
  load_ms: number;
}
