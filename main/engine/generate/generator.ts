// Batched sampling from a Llama-family model: prefill the P prompts once, replicate each
// prompt's KV cache into its N sample rows, then one decode graph run per new token.
//
// On a host cache (the CPU) prompts are left-padded to a common length, so every row writes its
// new token to the same cache slot at each step; padding slots are masked by the attention bias
// and position ids count from each prompt's first real token. On a device cache (a GPU) they are
// right-padded: each row's tokens sit at their own positions from slot 0 and every row writes at
// its own length, as GroupQueryAttention takes a batch (each row's length, RoPE at that position
// inside the node); the slots past a row's length hold padding until its tokens overwrite them,
// masked as the host cache's padding is. Both compute what the training graph does at the same
// positions.
// Graphs are compiled once per shape and cached;
// prompt and cache lengths are rounded up to buckets so a training loop with varying prompt
// lengths reuses a handful of graphs.
import type * as ort from 'onnxruntime-node';
import { Graph } from '../graph/graph.ts';
import type { LlamaConfig } from '../nn/config.ts';
import { MASKED } from '../nn/llama.ts';
import { type Device, checkPrecision } from '../runtime/devices.ts';
import type { Precision } from '../runtime/precision.ts';
import { CompiledGraph, cpuTensor } from '../runtime/session.ts';
import type { WeightBinding } from '../runtime/weights.ts';
import { type CacheDType, type DecodeShape, IO, type PrefillShape, SAMPLED_ROWS, buildDecodeGraph, buildPrefillGraph, decodeKey, prefillKey } from './graphs.ts';
import { DeviceKvCache, type FloatArray, HostKvCache, floatArray } from './kv-cache.ts';
import { RowUniforms, type SamplingSettings, samplingMode, statsTemperature } from './sampler.ts';
import { type FinishReason, StopStrings, type TokenDecoder, decodeText } from './stopping.ts';

export type { FinishReason, TokenDecoder } from './stopping.ts';

export interface GeneratorOptions {
  config: LlamaConfig;
  /** Where every graph gets its weights (host weights, the parameter store, ...). */
  weights: WeightBinding;
  device: Device;
  /** The longest prompt + new tokens any call may ask for (the cache is never longer). */
  maxLength: number;
  /** Compiled graphs kept (least recently used ones are released); default 16. */
  maxCachedGraphs?: number;
  /**
   * Sample rows decoded at once, to fit the device's memory: a request with more is generated a
   * few whole prompts at a time (at least one, with all its samples). Each row's random stream
   * depends on its prompt's index in the request, so the samples are those of one pass (up to
   * float rounding where a turn's prompts pad to another length). Default: every row at once.
   */
  maxRows?: number;
  /**
   * mixed: the model computes in float16 with a float16 cache (weights read as float16: the
   * frozen ones as held, trainable masters cast), softmaxes and sampling in float32. A GPU
   * device only (the cache stays on it). Default fp32.
   */
  precision?: Precision;
}

export interface GenerationProgress {
  /** Tokens generated per row so far (1 after the prefill). */
  step: number;
  maxNewTokens: number;
  rows: number;
  finishedRows: number;
  /** Tokens counted so far, over all rows (finished rows' padding is not counted). */
  generatedTokens: number;
}

export interface GenerateRequest {
  /** Token ids of each prompt (already templated and tokenized), non-empty. */
  promptIds: number[][];
  /** N samples per prompt; they share the prompt's prefill. Default 1. */
  samplesPerPrompt?: number;
  maxNewTokens: number;
  /** Default 1; 0 = greedy (then the statistics use temperature 1). */
  temperature?: number;
  /** Default 1 (off). */
  topP?: number;
  /** Default 0 (off). */
  topK?: number;
  /** The same seed (and request) gives the same samples. Default 0. */
  seed?: number;
  /**
   * The number the first prompt has in the caller's numbering (default 0): the samples'
   * promptIndex and their random streams count from it, so a batch asked for in several
   * requests (validation in chunks that fit memory) samples as it would in one.
   */
  firstPromptIndex?: number;
  /**
   * Default: the config's eos_token_id plus the tokenizer's EOS ids. Pass [] to stop only on
   * length and stop strings.
   */
  eosTokenIds?: readonly number[];
  /** A row stops when its generated text (special tokens left out) contains one of these. */
  stopStrings?: readonly string[];
  /** Decodes the samples' text (returned as `text`) and finds stop strings. */
  tokenizer?: TokenDecoder;
  /** Also return each step's logits [V] per sample (large; tests and debugging). */
  returnLogits?: boolean;
  onProgress?: (p: GenerationProgress) => void;
  /**
   * After every step: the token each row sampled, null for rows that had already finished (a
   * server streams the text as it comes from these).
   */
  onTokens?: (tokens: readonly (number | null)[], step: number) => void;
  /** Checked before every graph run; generation stops with the signal's reason. */
  signal?: AbortSignal;
}

export interface GeneratedSample {
  promptIndex: number;
  /** 0..N−1 within its prompt. */
  sampleIndex: number;
  /** Generated tokens only; includes the EOS token or the token that completed a stop string. */
  tokenIds: number[];
  /** Decoded `tokenIds` without special tokens (present when a tokenizer was given). */
  text?: string;
  /**
   * Per token, under p = softmax(logits / T) before top-k / top-p truncation (T = 1 when
   * greedy): log p(token), the entropy H(p), and the self-certainty KL(U ‖ p).
   */
  logprobs: number[];
  entropies: number[];
  selfCertainties: number[];
  finishReason: FinishReason;
  /** The stop string that ended the row, when finishReason is 'stop'. */
  stopString?: string;
  /** With returnLogits: the raw logits of each step. */
  logits?: Float32Array[];
}

export interface GenerationStats {
  /** Rows the prefill computed: one per prompt, however many samples each gets. */
  prefillRows: number;
  /** Sample rows decoded together. */
  rows: number;
  /** Padded prompt length Tp, and the cache length of the last decode graph used. */
  promptLength: number;
  cacheLength: number;
  decodeSteps: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  /** generatedTokens over the whole call (prefill included). */
  tokensPerSecond: number;
  /** Prefill + decode passes the call took (more than 1 where maxRows split it). */
  passes: number;
}

export interface GenerationResult {
  /** Prompt-major: sample n of prompt p is samples[p·N + n]. */
  samples: GeneratedSample[];
  stats: GenerationStats;
}

const PROMPT_BUCKET = 8;
const CACHE_BUCKET = 16;

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/**
 * The cache windows a host-cache generation steps through: T + 16, T + 32, T + 64, ... slots,
 * capped at the full length L. Doubling keeps the number of decode graphs (one per window)
 * logarithmic in the new tokens, while the slots read per step stay within about twice the
 * real sequence length instead of always L.
 */
export function cacheWindows(promptLength: number, fullLength: number): number[] {
  const out: number[] = [];
  for (let extra = CACHE_BUCKET; ; extra *= 2) {
    out.push(Math.min(fullLength, promptLength + extra));
    if (out[out.length - 1] === fullLength) return out;
  }
}

export class Generator {
  private readonly graphs = new Map<string, Promise<CompiledGraph>>();
  private readonly maxCachedGraphs: number;
  private hostCache: HostKvCache | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: GeneratorOptions,
    private readonly dtype: CacheDType,
  ) {
    this.maxCachedGraphs = Math.max(2, options.maxCachedGraphs ?? 16);
  }

  static async create(options: GeneratorOptions): Promise<Generator> {
    const { config, maxLength } = options;
    if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`maxLength must be an integer >= 2, got ${maxLength}`);
    if (config.numHeads % config.numKvHeads !== 0) throw new Error(`${config.numHeads} heads do not group over ${config.numKvHeads} KV heads`);
    // A sampled token comes back as a float32 (IO.sampled), exact below 2^24.
    if (config.vocabSize > 2 ** 24) throw new Error(`a vocabulary of ${config.vocabSize} tokens exceeds the ${2 ** 24} the sampler returns exactly`);
    if (options.maxRows !== undefined && !(Number.isInteger(options.maxRows) && options.maxRows >= 1)) throw new Error(`maxRows must be an integer >= 1, got ${options.maxRows}`);
    if (config.slidingWindow && maxLength > config.slidingWindow) {
      throw new Error(`maxLength ${maxLength} exceeds this model's sliding attention window of ${config.slidingWindow}, which the engine does not implement`);
    }
    // The cache and bias take the weights' float type; ask the binding what it declares.
    const dtype = options.weights.bind(new Graph('probe')).get('model.embed_tokens.weight').dtype;
    if (dtype !== 'float32' && dtype !== 'float64') throw new Error(`generation needs float32 or float64 weights, got ${dtype}`);
    if (options.precision === 'mixed') await checkPrecision(options.device, 'mixed');
    return new Generator(options, dtype);
  }

  get config(): LlamaConfig {
    return this.options.config;
  }

  /** Sample continuations of every prompt. Calls on one generator run one after another. */
  generate(request: GenerateRequest): Promise<GenerationResult> {
    const run = this.queue.then(
      () => this.runInTurns(request),
      () => this.runInTurns(request),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Release every compiled graph. */
  async release(): Promise<void> {
    const all = [...this.graphs.values()];
    this.graphs.clear();
    this.hostCache = null;
    await Promise.all(all.map((p) => p.then((g) => g.release()).catch(() => undefined)));
  }

  private async graph(key: string, build: () => Graph, keepOnDevice: string[]): Promise<CompiledGraph> {
    let entry = this.graphs.get(key);
    if (entry) {
      // refresh its place in the LRU order
      this.graphs.delete(key);
      this.graphs.set(key, entry);
      return entry;
    }
    entry = CompiledGraph.create(build(), this.options.device, { keepOnDevice });
    this.graphs.set(key, entry);
    entry.catch(() => this.graphs.delete(key));
    while (this.graphs.size > this.maxCachedGraphs) {
      const [oldKey, old] = this.graphs.entries().next().value as [string, Promise<CompiledGraph>];
      this.graphs.delete(oldKey);
      void old.then((g) => g.release()).catch(() => undefined);
    }
    return entry;
  }

  /** A request in passes of at most maxRows rows (whole prompts); their results joined as one. */
  private async runInTurns(req: GenerateRequest): Promise<GenerationResult> {
    const N = req.samplesPerPrompt ?? 1;
    const perPass = Math.max(1, Math.floor((this.options.maxRows ?? Infinity) / N));
    const P = req.promptIds.length;
    const base = req.firstPromptIndex ?? 0;
    if (P <= perPass) return this.run(req, base);
    const started = performance.now();
    const parts: GenerationResult[] = [];
    for (let first = 0; first < P; first += perPass) parts.push(await this.run({ ...req, promptIds: req.promptIds.slice(first, first + perPass) }, base + first));
    const sum = (f: (s: GenerationStats) => number) => parts.reduce((a, p) => a + f(p.stats), 0);
    const generatedTokens = sum((s) => s.generatedTokens);
    return {
      samples: parts.flatMap((p) => p.samples),
      stats: {
        prefillRows: sum((s) => s.prefillRows),
        rows: Math.max(...parts.map((p) => p.stats.rows)),
        promptLength: Math.max(...parts.map((p) => p.stats.promptLength)),
        cacheLength: Math.max(...parts.map((p) => p.stats.cacheLength)),
        decodeSteps: sum((s) => s.decodeSteps),
        generatedTokens,
        prefillMs: sum((s) => s.prefillMs),
        decodeMs: sum((s) => s.decodeMs),
        tokensPerSecond: generatedTokens / ((performance.now() - started) / 1000),
        passes: parts.length,
      },
    };
  }

  /** One pass; its prompts are the request's from `promptOffset` on (for their indices and random streams). */
  private async run(req: GenerateRequest, promptOffset: number): Promise<GenerationResult> {
    const { config, weights, device, maxLength } = this.options;
    const started = performance.now();
    const V = config.vocabSize;
    const N = req.samplesPerPrompt ?? 1;
    const M = req.maxNewTokens;
    const settings: SamplingSettings = { temperature: req.temperature ?? 1, topK: req.topK ?? 0, topP: req.topP ?? 1 };
    const mode = samplingMode(settings, V);
    const prompts = req.promptIds;
    const P = prompts.length;
    if (P === 0) throw new Error('generate: no prompts');
    if (!Number.isInteger(N) || N < 1) throw new Error(`samplesPerPrompt must be an integer >= 1, got ${N}`);
    if (!Number.isInteger(M) || M < 1) throw new Error(`maxNewTokens must be an integer >= 1, got ${M}`);
    prompts.forEach((ids, i) => {
      if (ids.length === 0) throw new Error(`prompt ${i} is empty; it needs at least one token (e.g. BOS)`);
      for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`prompt ${i} has token id ${id}, outside the vocabulary [0, ${V})`);
    });
    const longest = Math.max(...prompts.map((p) => p.length));
    if (longest + M > maxLength) {
      throw new Error(`the longest prompt (${longest} tokens) + maxNewTokens (${M}) exceeds the generator's maxLength ${maxLength}; shorten the prompt, lower maxNewTokens or create the generator with a larger maxLength`);
    }
    const eos = new Set(req.eosTokenIds ?? [...config.eosTokenIds, ...(req.tokenizer?.eosTokenIds ?? [])]);
    const stops = new StopStrings(req.stopStrings ?? [], req.tokenizer);
    const seed = req.seed ?? 0;

    const B = P * N;
    const T = Math.min(roundUp(longest, PROMPT_BUCKET), maxLength - M);
    // The last token is sampled but never fed back, so the cache needs T + M − 1 slots.
    const L = Math.min(roundUp(T + M - 1, CACHE_BUCKET), maxLength);
    const deviceCache = device.keepsStateOnDevice;
    const emitLogits = req.returnLogits ?? false;
    const dtype = this.dtype;
    const common = { dtype, rows: B, cacheLength: L, mode, deviceCache, emitLogits, ...(this.options.precision === 'mixed' ? { compute: 'float16' as const } : {}) };
    const cacheNames = Array.from({ length: config.numLayers }, (_, l) => [IO.cacheK(l), IO.cacheV(l)]).flat();
    const keep = deviceCache ? cacheNames : [];

    const rowsOf = Array.from({ length: B }, (_, b) => ({ promptIndex: Math.floor(b / N), sampleIndex: b % N }));
    const lengths = rowsOf.map((r) => prompts[r.promptIndex].length);
    // Host cache: left padding before each row's prompt; device cache: none (right-padded).
    const pad = lengths.map((n) => (deviceCache ? 0 : T - n));
    const uniforms = new RowUniforms(
      seed,
      rowsOf.map((r) => ({ ...r, promptIndex: r.promptIndex + promptOffset })),
    );
    const sampler: Record<string, ort.Tensor> = {
      [IO.uniforms]: cpuTensor(new Float32Array(B), [B]),
      [IO.inverseTemperature]: cpuTensor(Float32Array.of(1 / statsTemperature(settings)), [1]),
      // top-p 1 means off: feed 2 so rounding in the running sum can never drop a token.
      [IO.topP]: cpuTensor(Float32Array.of(settings.topP >= 1 ? 2 : settings.topP), [1]),
    };
    const uniformData = sampler[IO.uniforms].data as Float32Array;

    const samples: GeneratedSample[] = rowsOf.map((r) => ({ ...r, promptIndex: r.promptIndex + promptOffset, tokenIds: [], logprobs: [], entropies: [], selfCertainties: [], finishReason: 'length', ...(emitLogits ? { logits: [] } : {}) }));
    const finished = new Array<boolean>(B).fill(false);
    let finishedRows = 0;
    let generatedTokens = 0;

    // Take one step's sampled tokens; returns whether any row is still going.
    const absorb = (out: Record<string, ort.Tensor>, step: number): boolean => {
      const sampled = out[IO.sampled].data as Float32Array;
      const row = (r: number) => sampled.subarray(r * B, (r + 1) * B);
      const token = row(SAMPLED_ROWS.token);
      const [logprob, entropy, certainty] = [row(SAMPLED_ROWS.logprob), row(SAMPLED_ROWS.entropy), row(SAMPLED_ROWS.selfCertainty)];
      const logits = emitLogits ? (out[IO.logits].data as Float32Array) : null;
      const wasFinished = req.onTokens ? finished.slice() : finished;
      for (let b = 0; b < B; b++) {
        if (finished[b]) continue;
        const s = samples[b];
        s.tokenIds.push(token[b]);
        s.logprobs.push(logprob[b]);
        s.entropies.push(entropy[b]);
        s.selfCertainties.push(certainty[b]);
        if (logits) s.logits!.push(logits.slice(b * V, (b + 1) * V));
        generatedTokens++;
        let reason: FinishReason | null = null;
        if (eos.has(token[b])) reason = 'eos';
        else if (stops.active) {
          const match = stops.check(s.tokenIds);
          if (match) {
            reason = 'stop';
            s.stopString = match.stopString;
          }
        }
        if (!reason && step >= M) reason = 'length';
        if (reason) {
          s.finishReason = reason;
          finished[b] = true;
          finishedRows++;
        }
      }
      req.onProgress?.({ step, maxNewTokens: M, rows: B, finishedRows, generatedTokens });
      if (req.onTokens) req.onTokens(Array.from(token, (t, b) => (wasFinished[b] ? null : t)), step);
      return finishedRows < B;
    };

    // ---- prefill
    req.signal?.throwIfAborted();
    const prefillShape: PrefillShape = { ...common, prompts: P, samplesPerPrompt: N, promptLength: T };
    const prefill = await this.graph(prefillKey(prefillShape), () => buildPrefillGraph(config, weights, prefillShape), keep);
    const ids = new Int32Array(P * T);
    const positions = new Int32Array(P * T);
    const bias = floatArray(dtype, P * T * T).fill(MASKED);
    const lastIndex = new Int32Array(P);
    for (let p = 0; p < P; p++) {
      const prompt = prompts[p];
      // where the prompt starts and ends in its row (see the header)
      const start = deviceCache ? 0 : T - prompt.length;
      const end = start + prompt.length;
      lastIndex[p] = p * T + end - 1;
      for (let t = 0; t < T; t++) {
        const real = t >= start && t < end;
        ids[p * T + t] = real ? prompt[t - start] : 0;
        positions[p * T + t] = Math.max(0, t - start);
        // real queries see real keys up to themselves; padding queries see only themselves
        // (any finite row would do, their outputs are never read)
        const row = (p * T + t) * T;
        if (!real) bias[row + t] = 0;
        else bias.fill(0, row + start, row + t + 1);
      }
    }
    uniforms.next(uniformData);
    const prefillOut = await prefill.run({
      ...weights.feeds(prefill.inputNames),
      [IO.inputIds]: cpuTensor(ids, [P, T]),
      [IO.positionIds]: cpuTensor(positions, [P, T]),
      [IO.attentionBias]: cpuTensor(bias, [P, 1, 1, T, T]),
      ...(deviceCache ? { [IO.lastIndex]: cpuTensor(lastIndex, [P]) } : {}),
      ...sampler,
    });

    // Host cache: the decode graphs see a window of the cache that widens as rows grow (see
    // cacheWindows); a device cache keeps the full length (its graph rewrites it every step).
    const windows = deviceCache ? [L] : cacheWindows(T, L);
    let window = windows[0];
    let hostCache: HostKvCache | null = null;
    const deviceKv = deviceCache ? new DeviceKvCache(config.numLayers) : null;
    try {
      if (deviceKv) {
        deviceKv.replace(prefillOut);
      } else if (M > 1) {
        // Reuse the last call's arrays when they fit (a training loop's steady state); stale
        // slots are masked until overwritten.
        const reuse = this.hostCache?.rows === B && this.hostCache.capacity === L && this.hostCache.dtype === dtype;
        hostCache = reuse ? this.hostCache! : new HostKvCache(config, B, L, dtype);
        this.hostCache = hostCache;
        hostCache.reset(window);
        for (let l = 0; l < config.numLayers; l++) {
          hostCache.fillFromPrefill(l, prefillOut[IO.newK(l)].data as FloatArray, prefillOut[IO.newV(l)].data as FloatArray, P, N, T);
        }
      }
      const prefillMs = performance.now() - started;
      let going = absorb(prefillOut, 1);

      // ---- decode
      const decodeStarted = performance.now();
      let decodeSteps = 0;
      const stepIds = new Int32Array(B);
      const stepPositions = new Int32Array(B);
      // device cache: each row's slot for the token it feeds (its position)
      const writePos = new Int32Array(B);
      let decode: CompiledGraph | null = null;
      let fixed: Record<string, ort.Tensor> = {};
      let cacheBias: FloatArray = floatArray(dtype, 0);
      for (let step = 2; step <= M && going; step++) {
        req.signal?.throwIfAborted();
        const slot = T + step - 2; // where the previous token goes
        if (!decode || slot >= window) {
          // the first step, or the window is full: widen it and take its graph
          if (decode) {
            window = windows.find((w) => w > slot)!;
            hostCache!.grow(window);
          }
          const decodeShape: DecodeShape = { ...common, cacheLength: window };
          decode = await this.graph(decodeKey(decodeShape), () => buildDecodeGraph(config, weights, decodeShape), keep);
          // per row: the window's slots (padding and slots not written yet masked), then on a
          // host cache the new token itself (a device cache holds it at its slot)
          const W = deviceCache ? window : window + 1;
          cacheBias = floatArray(dtype, B * W).fill(MASKED);
          for (let b = 0; b < B; b++) {
            // the row's tokens so far (a device cache writes the new one in place below)
            cacheBias.fill(0, b * W + pad[b], b * W + (deviceCache ? lengths[b] + step - 2 : slot));
            if (!deviceCache) cacheBias[b * W + window] = 0;
          }
          fixed = {
            [IO.inputIds]: cpuTensor(stepIds, [B, 1]),
            // a device cache's graph takes each row's position from write_pos
            ...(deviceCache ? { [IO.writePos]: cpuTensor(writePos, [B]) } : { [IO.positionIds]: cpuTensor(stepPositions, [B, 1]) }),
            [IO.attentionBias]: cpuTensor(cacheBias, [B, 1, 1, W]),
            ...sampler,
          };
        }
        for (let b = 0; b < B; b++) {
          const s = samples[b];
          // finished rows keep running (the batch shape is fixed) on a harmless token
          stepIds[b] = finished[b] ? 0 : s.tokenIds[s.tokenIds.length - 1];
          stepPositions[b] = slot - pad[b];
          if (deviceCache) {
            writePos[b] = lengths[b] + step - 2;
            cacheBias[b * window + writePos[b]] = 0;
          }
        }
        uniforms.next(uniformData);
        // weights.feeds() per run: a store may swap its tensors whenever its weights change
        const out = await decode.run({ ...weights.feeds(decode.inputNames), ...fixed, ...(deviceKv ? deviceKv.feeds() : hostCache!.feeds()) });
        decodeSteps++;
        if (deviceKv) {
          deviceKv.replace(out);
        } else {
          for (let l = 0; l < config.numLayers; l++) {
            hostCache!.writeStep(l, out[IO.newK(l)].data as FloatArray, out[IO.newV(l)].data as FloatArray, slot);
          }
        }
        if (!deviceCache) for (let b = 0; b < B; b++) cacheBias[b * (window + 1) + slot] = 0;
        going = absorb(out, step);
      }
      const decodeMs = performance.now() - decodeStarted;

      if (req.tokenizer) for (const s of samples) s.text = decodeText(req.tokenizer, s.tokenIds);
      const seconds = (performance.now() - started) / 1000;
      return {
        samples,
        stats: {
          prefillRows: P,
          rows: B,
          promptLength: T,
          cacheLength: window,
          decodeSteps,
          generatedTokens,
          prefillMs,
          decodeMs,
          tokensPerSecond: generatedTokens / seconds,
          passes: 1,
        },
      };
    } finally {
      deviceKv?.dispose();
    }
  }
}
