// The two graphs of generation: a batched prefill of the prompts and a one-token decode step
// over a fixed-size KV cache, both ending in the on-device sampler.
//
// Cache layout, per layer, shared by both graphs and by the host: keys and values each
// [B·KVH, L, D] (on the device [B, KVH, L, D], the same memory: GroupQueryAttention's layout),
// where row r of the batch owns the slabs r·KVH .. r·KVH+KVH−1 and L is the
// cache length the graph was built for. A new position is one contiguous run of D numbers per
// slab; q·Kᵀ transposes inside the MatMul (ORT fuses the Transpose into FusedMatMul on the CPU).
// Slots that hold nothing yet (or prompt padding) are masked by an additive bias.
//
// The decode step never copies the cache: attention over the cache and attention to the new
// token itself are two products joined in one softmax, so the cache tensors are only read.
//  - host cache (CPU): the cache enters as CPU tensors viewing host arrays; the graph returns
//    only the new position's k and v, which the host writes into the arrays in place.
//  - device cache (WebGPU): each row's tokens sit at their positions (prompts right-padded); the
//    graph writes each row's new k, v at its own slot `write_pos` (Where), attends over the
//    updated cache and returns it, kept on the GPU and fed to the next step (ping-pong); lowered
//    for WebGPU, each layer's write and attention are one GroupQueryAttention.
import { Graph, type Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import type { LlamaConfig } from '../nn/config.ts';
import { forward, lmHead, rotaryAngles } from '../nn/llama.ts';
import type { WeightBinding } from '../runtime/weights.ts';
import { type SamplingMode, sampleFromLogits, samplingModeKey } from './sampler.ts';

/** Graph input and output names (the host side of the contract). */
export const IO = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  /**
   * prefill: [P, 1, 1, Tp, Tp]; decode on a host cache: [B, 1, 1, L + 1] (the cache slots, then
   * the new token); on a device cache: [B, 1, 1, L] (the slots after the write, the new token's own included)
   */
  attentionBias: 'attention_bias',
  /** decode on a device cache: [B] int32, each row's slot for the new token's k, v (its position). */
  writePos: 'write_pos',
  /** prefill on a device cache: [P] int32, where each prompt's last token is among the P·T positions (p·T + its length − 1). */
  lastIndex: 'last_index',
  uniforms: 'uniforms',
  /** [1] float32: 1 / temperature. */
  inverseTemperature: 'inverse_temperature',
  topP: 'top_p',
  /**
   * [4, B] float32, rows: the sampled token (exact in float32 below 2^24), its log-prob, the
   * entropy and the self-certainty (SAMPLED_ROWS). One output, so a GPU step is read back in one
   * transfer and one wait rather than four.
   */
  sampled: 'sampled',
  logits: 'logits',
  /** Cache inputs of the decode graph. */
  pastK: (l: number) => `past_k.${l}`,
  pastV: (l: number) => `past_v.${l}`,
  /** Prefill on a host cache: this call's k, v [P, KVH, Tp, D]; decode: [B, KVH, 1, D]. */
  newK: (l: number) => `new_k.${l}`,
  newV: (l: number) => `new_v.${l}`,
  /** Device cache: the whole cache after this call, in the cache layout. */
  cacheK: (l: number) => `cache_k.${l}`,
  cacheV: (l: number) => `cache_v.${l}`,
} as const;

/** The rows of IO.sampled. */
export const SAMPLED_ROWS = { token: 0, logprob: 1, entropy: 2, selfCertainty: 3 } as const;

/** Float types a cache (and the attention bias) can hold: the model's compute type. */
export type CacheDType = 'float32' | 'float64';

export interface GraphShapeCommon {
  /** The weights' float type (float64 only for CPU tests); the sampler always runs in float32. */
  dtype: CacheDType;
  /**
   * float16: mixed precision (device cache only). The weights are read as float16 and the model
   * computes in it, the cache is float16; the attention bias stays `dtype` and attention's
   * softmax float32, as in the training graph. Absent: the model computes in `dtype`.
   */
  compute?: 'float16';
  /** B = prompts · samplesPerPrompt: the sample rows. */
  rows: number;
  /** L: cache slots per row. */
  cacheLength: number;
  mode: SamplingMode;
  /** Keep the cache on the device (in/out tensors) instead of host arrays. */
  deviceCache: boolean;
  /** Also output the logits [B, V] (tests and debugging). */
  emitLogits: boolean;
}

export interface PrefillShape extends GraphShapeCommon {
  prompts: number;
  samplesPerPrompt: number;
  /** Tp: the padded prompt length (prompts are padded to it: on the left on a host cache, on the right on a device cache). */
  promptLength: number;
}

export type DecodeShape = GraphShapeCommon;

export function prefillKey(s: PrefillShape): string {
  // The host-cache prefill does not depend on L (the host places its output).
  return `prefill ${s.dtype}${s.compute ? `/${s.compute}` : ''} P${s.prompts} N${s.samplesPerPrompt} T${s.promptLength} L${s.deviceCache ? s.cacheLength : '-'} ${samplingModeKey(s.mode)}${s.deviceCache ? ' dev' : ''}${s.emitLogits ? ' logits' : ''}`;
}

export function decodeKey(s: DecodeShape): string {
  return `decode ${s.dtype}${s.compute ? `/${s.compute}` : ''} B${s.rows} L${s.cacheLength} ${samplingModeKey(s.mode)}${s.deviceCache ? ' dev' : ''}${s.emitLogits ? ' logits' : ''}`;
}

/** Bind the weights in the type the model computes in, checking the binding gives them so. */
function bindWeights(weights: WeightBinding, g: Graph, s: GraphShapeCommon) {
  const compute = s.compute ?? s.dtype;
  if (s.compute && !s.deviceCache) throw new Error(`a ${s.compute} generation graph needs a device cache (a GPU device)`);
  const w = weights.bind(g, compute);
  const embed = w.get('model.embed_tokens.weight');
  if (embed.dtype !== compute) throw new Error(`generation graph built for ${compute}, but the weights are ${embed.dtype}`);
  return w;
}

function samplerInputs(g: Graph, rows: number) {
  return {
    uniforms: g.input(IO.uniforms, [rows], 'float32'),
    inverseTemperature: g.input(IO.inverseTemperature, [1], 'float32'),
    topP: g.input(IO.topP, [1], 'float32'),
  };
}

function sampleOutputs(g: Graph, logits: Sym, mode: SamplingMode, inputs: ReturnType<typeof samplerInputs>, emitLogits: boolean): void {
  const s = sampleFromLogits(logits, mode, inputs);
  const B = logits.shape[0];
  const rows = [op.cast(s.token, 'float32'), s.logprob, s.entropy, s.selfCertainty].map((x) => op.reshape(x, [1, B]));
  g.output(IO.sampled, op.concat(rows, 0));
  if (emitLogits) g.output(IO.logits, op.cast(logits, 'float32'));
}

/**
 * Prefill: P padded prompts [P, Tp] run once; each prompt's last position's logits are repeated for
 * the N samples of each prompt (rows p·N .. p·N+N−1) and the first new token is sampled per row.
 * Host cache: outputs each layer's k, v of the prompts [P, KVH, Tp, D] (the host replicates
 * them into the sample rows). Device cache: outputs the replicated, zero-padded cache directly.
 */
export function buildPrefillGraph(config: LlamaConfig, weights: WeightBinding, s: PrefillShape): Graph {
  const { prompts: P, samplesPerPrompt: N, promptLength: T, cacheLength: L } = s;
  const B = P * N;
  if (B !== s.rows) throw new Error(`prefill: rows ${s.rows} != prompts ${P} × samples ${N}`);
  if (T > L) throw new Error(`prefill: prompt length ${T} exceeds the cache length ${L}`);
  const g = new Graph('prefill');
  g.recording = false;
  const inputIds = g.input(IO.inputIds, [P, T], 'int32');
  const positionIds = g.input(IO.positionIds, [P, T], 'int32');
  const attentionBias = g.input(IO.attentionBias, [P, 1, 1, T, T], s.dtype);
  const sampler = samplerInputs(g, B);
  const w = bindWeights(weights, g, s);
  const { hidden, present } = forward(config, w, { inputIds, positionIds, attentionBias });
  // A host cache's prompts are left-padded (all end at T − 1), a device cache's right-padded.
  const last = s.deviceCache
    ? op.gather(op.reshape(hidden, [P * T, config.hiddenSize]), g.input(IO.lastIndex, [P], 'int32'))
    : op.reshape(op.slice(hidden, 1, T - 1, T), [P, config.hiddenSize]);
  const promptLogits = lmHead(config, w, last);
  const V = promptLogits.shape[1];
  const logits = op.reshape(op.expand(op.unsqueeze(promptLogits, 1), [P, N, V]), [B, V]);
  sampleOutputs(g, logits, s.mode, sampler, s.emitLogits);

  const { numKvHeads: KVH, headDim: D } = config;
  present.forEach(({ k, v }, l) => {
    if (!s.deviceCache) {
      g.output(IO.newK(l), k);
      g.output(IO.newV(l), v);
      return;
    }
    const replicate = (x: Sym, shape: number[]) => op.reshape(op.expand(op.unsqueeze(x, 1), [P, N, ...shape]), [B, ...shape]);
    const pad = (x: Sym) => (T < L ? op.concat([x, op.expand(g.constant([0], [1, 1, 1, 1], x.dtype), [P, KVH, L - T, D])], 2) : x);
    g.output(IO.cacheK(l), replicate(pad(k), [KVH, L, D]));
    g.output(IO.cacheV(l), replicate(pad(v), [KVH, L, D]));
  });
  return g;
}

/**
 * Decode on a host cache: one new token per row at slot `write_pos` (the same for every row:
 * prompts are left-padded, so all rows advance in step), attending to the cache slots the bias allows plus
 * itself, then sampling the next token.
 */
export function buildDecodeGraph(config: LlamaConfig, weights: WeightBinding, s: DecodeShape): Graph {
  const { rows: B, cacheLength: L } = s;
  const { numHeads: H, numKvHeads: KVH, headDim: D, numLayers } = config;
  const G = H / KVH;
  if (s.deviceCache) return buildDeviceDecodeGraph(config, weights, s);
  const g = new Graph('decode');
  g.recording = false;
  const inputIds = g.input(IO.inputIds, [B, 1], 'int32');
  const positionIds = g.input(IO.positionIds, [B, 1], 'int32');
  // L cache slots, then the new token's own slot (always 0: a token sees itself)
  const bias = g.input(IO.attentionBias, [B, 1, 1, L + 1], s.dtype);
  const pastK: Sym[] = [];
  const pastV: Sym[] = [];
  for (let l = 0; l < numLayers; l++) {
    pastK.push(g.input(IO.pastK(l), [B * KVH, L, D], s.dtype));
    pastV.push(g.input(IO.pastV(l), [B * KVH, L, D], s.dtype));
  }
  const sampler = samplerInputs(g, B);
  const w = bindWeights(weights, g, s);
  const scale = 1 / Math.sqrt(D);

  // q [B, H, 1, D] with head h = kvh·G + j reads KV head kvh (grouped-query attention), so
  // [B·KVH, G, D] puts each KV head's queries in one matrix against that head's cache slab.
  // Scores against the cache and against the new token itself share one softmax; the cache
  // is only read by the two MatMuls.
  const attend = (layer: number, q: Sym, k: Sym, v: Sym): Sym => {
    const q3 = op.mul(op.reshape(q, [B * KVH, G, D]), scale);
    const cached = op.matmul(q3, op.transposeLast2(pastK[layer])); // [B·KVH, G, L]
    const self = op.matmul(q3, op.reshape(k, [B * KVH, D, 1])); // [B·KVH, G, 1]
    const scores = op.add(op.reshape(op.concat([cached, self], -1), [B, KVH, G, L + 1]), bias);
    const probs = op.reshape(op.softmax(scores, -1), [B * KVH, G, L + 1]);
    const fromCache = op.matmul(op.slice(probs, -1, 0, L), pastV[layer]);
    const fromSelf = op.mul(op.slice(probs, -1, L, L + 1), op.reshape(v, [B * KVH, 1, D]));
    return op.reshape(op.add(fromCache, fromSelf), [B, H, 1, D]);
  };

  const { hidden, present } = forward(config, w, { inputIds, positionIds, attentionBias: bias, attend });
  const logits = lmHead(config, w, op.reshape(hidden, [B, config.hiddenSize]));
  sampleOutputs(g, logits, s.mode, sampler, s.emitLogits);

  present.forEach(({ k, v }, l) => {
    g.output(IO.newK(l), k);
    g.output(IO.newV(l), v);
  });
  return g;
}

/**
 * Decode on a device cache [B, KVH, L, D] per layer: the graph writes each row's new k, v at its
 * slot `write_pos` [B] and attends over the updated cache (bias [B, 1, 1, L], the slot itself
 * allowed), returning the whole cache (ping-pong). Each layer's attention is one
 * cachedAttention, GroupQueryAttention where the graph is lowered for WebGPU.
 */
function buildDeviceDecodeGraph(config: LlamaConfig, weights: WeightBinding, s: DecodeShape): Graph {
  const { rows: B, cacheLength: L } = s;
  const { numKvHeads: KVH, headDim: D, numLayers } = config;
  const g = new Graph('decode');
  g.recording = false;
  const inputIds = g.input(IO.inputIds, [B, 1], 'int32');
  const bias = g.input(IO.attentionBias, [B, 1, 1, L], s.dtype);
  const writePos = g.input(IO.writePos, [B], 'int32');
  // Rows are right-padded (see the generator): a token's slot is its position, where
  // GroupQueryAttention rotates q and k (each row's length − 1): the angles of write_pos, and their
  // table over every slot for the fused node, from one formula so the two agree.
  const positionIds = op.reshape(writePos, [B, 1]);
  const cacheType = s.compute ?? s.dtype;
  const angles = rotaryAngles(config, op.reshape(op.iota(g, L, 'float32'), [L, 1]), cacheType);
  const past = Array.from({ length: numLayers }, (_, l) => ({
    k: g.input(IO.pastK(l), [B, KVH, L, D], cacheType),
    v: g.input(IO.pastV(l), [B, KVH, L, D], cacheType),
  }));
  const sampler = samplerInputs(g, B);
  const w = bindWeights(weights, g, s);
  // Where with a one-slot mask per row writes its slot write_pos and keeps the rest (no ScatterND,
  // no int64 indices, all on the GPU); GroupQueryAttention reads the slot as the row's length − 1.
  const atSlot = op.equal(op.reshape(op.iota(g, L, 'int32'), [1, 1, L, 1]), op.reshape(writePos, [B, 1, 1, 1]));
  // GroupQueryAttention masks by each row's length itself (no bias: the rows start at slot 0),
  // which leaves its kernel every path a bias would rule out.
  const gqa = { seqlens: writePos, totalLength: g.constant([L], [1], 'int32') };
  const cache: { k: Sym; v: Sym }[] = [];
  const attend = (layer: number, q: Sym, k: Sym, v: Sym, unrotated: { q: Sym; k: Sym; packed?: Sym }): Sym => {
    const a = op.cachedAttention(q, k, v, past[layer], atSlot, bias, { ...gqa, rotary: { ...unrotated, ...angles } });
    cache.push({ k: a.k, v: a.v });
    return op.reshape(a.out, [...q.shape]);
  };
  const { hidden } = forward(config, w, { inputIds, positionIds, attentionBias: bias, attend });
  const logits = lmHead(config, w, op.reshape(hidden, [B, config.hiddenSize]));
  sampleOutputs(g, logits, s.mode, sampler, s.emitLogits);
  cache.forEach(({ k, v }, l) => {
    g.output(IO.cacheK(l), k);
    g.output(IO.cacheV(l), v);
  });
  return g;
}
