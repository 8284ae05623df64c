// The Llama-family transformer, written with the graph op library (nanoGPT-sized on purpose).
//
// The model does not own its weights: it asks a `WeightSource` for each tensor by its Hugging
// Face name. The caller decides what a weight is in the graph (an input fed from the parameter
// store, a slice of the flat trainable buffer) and may add a LoRA delta to any linear layer.
import type { Graph, Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import { type LinearModule, type LlamaConfig, ropeInverseFrequencies } from './config.ts';

export interface WeightSource {
  /** The tensor called `name` in the checkpoint, in PyTorch layout. */
  get(name: string): Sym;
  /** An extra term added to the linear layer `prefix` (e.g. LoRA: B·A·x·scale), or null. */
  linearDelta?(prefix: string, module: LinearModule, x: Sym): Sym | null;
  /**
   * Layer `layer`'s q, k and v projections as one weight [(H + 2·KVH)·D, hidden] (rows q, then k,
   * then v) with their biases likewise (null without), where the source holds them so (merged
   * adapters for generation): one product instead of three, and GroupQueryAttention reads its
   * output as it is. Null where it does not; then get() gives the three.
   */
  packedQkv?(layer: number): { weight: Sym; bias: Sym | null } | null;
}

/** The name a layer's packed q, k, v weight (or bias) is held and fed under (WeightSource.packedQkv). */
export function packedQkvName(layer: number, part: 'weight' | 'bias'): string {
  return `model.layers.${layer}.self_attn.qkv_proj.${part}`;
}

/** A layer's q, k and v projections (their weight-name prefixes), in the packed weight's row order. */
export function qkvProjections(layer: number): [string, string, string] {
  const p = `model.layers.${layer}.self_attn`;
  return [`${p}.q_proj`, `${p}.k_proj`, `${p}.v_proj`];
}

/** Shapes of a layer's packed q, k, v weight and bias (null for a model without those biases). */
export function packedQkvShapes(config: LlamaConfig): { weight: number[]; bias: number[] | null } {
  const rows = (config.numHeads + 2 * config.numKvHeads) * config.headDim;
  return { weight: [rows, config.hiddenSize], bias: config.attentionBias ? [rows] : null };
}

export interface ForwardInputs {
  /** Token ids [B, T], int32. */
  inputIds: Sym;
  /** Absolute positions [B, T], int32 (RoPE). */
  positionIds: Sym;
  /**
   * Additive attention mask broadcastable to [B, 1, 1, T, S] with S = past length + T:
   * 0 where a query may attend to a key, a large negative number where not.
   */
  attentionBias: Sym;
  /** Keys and values of earlier positions per layer, [B, KVH, P, D] each (decoding). */
  past?: { k: Sym; v: Sym }[];
  /**
   * Replaces the attention of each layer (then `past` and `attentionBias` are not read): gets
   * q [B, H, T, D] after RoPE and this call's k, v [B, KVH, T, D], returns [B, H, T, D]. The
   * decoder uses it to attend over a fixed-size cache without copying it into a concat; it also
   * gets q and k before RoPE, for a fused attention that rotates them itself, and where the
   * source packs q, k, v (and no q/k norm comes between) the one product's rows [B·T, (H + 2·KVH)·D].
   */
  attend?: (layer: number, q: Sym, k: Sym, v: Sym, unrotated: { q: Sym; k: Sym; packed?: Sym }) => Sym;
}

export interface ForwardResult {
  /** Final hidden states after the last norm, [B, T, H]. */
  hidden: Sym;
  /** Keys and values of this call's T positions per layer, [B, KVH, T, D] each. */
  present: { k: Sym; v: Sym }[];
}

/** The large negative number masked attention scores get (finite, so softmax stays exact). */
export const MASKED = -1e9;

/**
 * cos and sin of the rotary angles for each position, [B, 1, T, D] each, and the same angles as
 * RotaryEmbedding reads them (a row of D/2 per token, `positions` counting the tokens), so that
 * a lowering may write each rope as that one node.
 */
function rotaryTables(config: LlamaConfig, positionIds: Sym, dtype: Sym['dtype']): { cos: Sym; sin: Sym; rows: op.RotaryRows } {
  const g = positionIds.graph;
  const [B, T] = positionIds.shape;
  const { cos: cosHalf, sin: sinHalf } = rotaryAngles(config, op.reshape(op.cast(positionIds, 'float32'), [B * T, 1]), dtype);
  const full = (half: Sym) => op.reshape(op.concat([half, half], -1), [B, 1, T, config.headDim]);
  const positions = g.constant(Array.from({ length: B * T }, (_, i) => BigInt(i)), [B, T], 'int64');
  return { cos: full(cosHalf), sin: full(sinHalf), rows: { positions, cos: cosHalf, sin: sinHalf } };
}

/**
 * cos and sin of the rotary angles of float32 positions [N, 1]: [N, D/2] each, in `dtype`. The
 * one formula every graph uses, so that a table of positions (a fused attention's cos_cache)
 * holds the same values as the rows computed for the same positions.
 */
export function rotaryAngles(config: LlamaConfig, positions: Sym, dtype: Sym['dtype']): { cos: Sym; sin: Sym } {
  const inv = ropeInverseFrequencies(config);
  const freqs = op.mul(positions, positions.graph.constant(inv, [inv.length], 'float32'));
  return { cos: op.cast(op.cos(freqs), dtype), sin: op.cast(op.sin(freqs), dtype) };
}

function linear(w: WeightSource, prefix: string, module: LinearModule, x: Sym, bias: boolean): Sym {
  const y = op.linear(x, w.get(`${prefix}.weight`), bias ? w.get(`${prefix}.bias`) : null);
  const delta = w.linearDelta?.(prefix, module, x);
  return delta ? op.add(y, delta) : y;
}

/** [B·T, heads*D] rows -> [B, heads, T, D] */
function splitHeads(x: Sym, B: number, T: number, heads: number, d: number): Sym {
  return op.transpose(op.reshape(x, [B, T, heads, d]), [0, 2, 1, 3]);
}

/** x: the residual stream as [B·T, H] rows; returns the attention output as rows too. */
function attentionBlock(config: LlamaConfig, w: WeightSource, layer: number, x: Sym, B: number, T: number, rot: ReturnType<typeof rotaryTables>, inputs: ForwardInputs) {
  const p = `model.layers.${layer}.self_attn`;
  const { numHeads: H, numKvHeads: KVH, headDim: D } = config;
  const packedWeights = w.packedQkv?.(layer) ?? null;
  const packed = packedWeights ? op.linear(x, packedWeights.weight, packedWeights.bias) : undefined;
  // q, k, v: each projection's rows [B·T, heads·D] (cut from the one packed product, or its own)
  // split into heads.
  const heads = [H, KVH, KVH];
  const starts = [0, H * D, (H + KVH) * D];
  const [q0, k0, v] = (['q_proj', 'k_proj', 'v_proj'] as const).map((m, i) => {
    const rows = packed ? op.slice(packed, 1, starts[i], starts[i] + heads[i] * D) : linear(w, `${p}.${m}`, m, x, config.attentionBias);
    return splitHeads(rows, B, T, heads[i], D);
  });
  let [q, k] = [q0, k0];
  if (config.qkNorm) {
    q = op.rmsNorm(q, w.get(`${p}.q_norm.weight`), config.rmsNormEps);
    k = op.rmsNorm(k, w.get(`${p}.k_norm.weight`), config.rmsNormEps);
  }
  // A q/k norm between the product and RoPE is not what a fused node reading the packed rows does.
  const unrotated = { q, k, ...(packed && !config.qkNorm ? { packed } : {}) };
  q = op.rope(q, rot.cos, rot.sin, rot.rows);
  k = op.rope(k, rot.cos, rot.sin, rot.rows);
  let attended: Sym;
  if (inputs.attend) {
    attended = inputs.attend(layer, q, k, v, unrotated);
  } else {
    const past = inputs.past?.[layer];
    const keys = past ? op.concat([past.k, k], 2) : k;
    const values = past ? op.concat([past.v, v], 2) : v;
    attended = op.attention(q, keys, values, inputs.attentionBias);
  }
  const merged = op.reshape(op.transpose(attended, [0, 2, 1, 3]), [B * T, H * D]);
  return { out: linear(w, `${p}.o_proj`, 'o_proj', merged, false), k, v };
}

function mlp(w: WeightSource, layer: number, x: Sym): Sym {
  const p = `model.layers.${layer}.mlp`;
  const gate = op.silu(linear(w, `${p}.gate_proj`, 'gate_proj', x, false));
  const up = linear(w, `${p}.up_proj`, 'up_proj', x, false);
  return linear(w, `${p}.down_proj`, 'down_proj', op.mul(gate, up), false);
}

/** The transformer body: embeddings through the final norm. */
export function forward(config: LlamaConfig, w: WeightSource, inputs: ForwardInputs): ForwardResult {
  const span = (inputs.past?.[0]?.k.shape[2] ?? 0) + inputs.inputIds.shape[1];
  if (config.slidingWindow && span > config.slidingWindow) {
    throw new Error(
      `a sequence of ${span} positions exceeds this model's sliding attention window of ${config.slidingWindow}, which the engine does not implement; use sequences of at most ${config.slidingWindow} tokens`,
    );
  }
  const embed = w.get('model.embed_tokens.weight');
  const [B, T] = inputs.inputIds.shape;
  // The residual stream is [B·T, H] rows from the embedding to the last norm: every linear layer
  // is then a Gemm on it as it is, with no reshape before or after (nor in the gradients).
  let x = op.gather(embed, op.reshape(inputs.inputIds, [B * T]));
  const rot = rotaryTables(config, inputs.positionIds, x.dtype);
  const present: { k: Sym; v: Sym }[] = [];
  const eps = config.rmsNormEps;
  // Each residual sum is taken together with the norm that reads it (addRmsNorm).
  let normed = op.rmsNorm(x, w.get('model.layers.0.input_layernorm.weight'), eps);
  for (let l = 0; l < config.numLayers; l++) {
    const a = attentionBlock(config, w, l, normed, B, T, rot, inputs);
    present.push({ k: a.k, v: a.v });
    ({ sum: x, normed } = op.addRmsNorm(x, a.out, w.get(`model.layers.${l}.post_attention_layernorm.weight`), eps));
    const next = l + 1 < config.numLayers ? `model.layers.${l + 1}.input_layernorm.weight` : 'model.norm.weight';
    ({ sum: x, normed } = op.addRmsNorm(x, mlp(w, l, normed), w.get(next), eps));
  }
  return { hidden: op.reshape(normed, [B, T, config.hiddenSize]), present };
}

/** Logits [.., V] from final hidden states [.., H] (tied embeddings reuse embed_tokens). */
export function lmHead(config: LlamaConfig, w: WeightSource, hidden: Sym): Sym {
  return op.linear(hidden, lmHeadWeight(config, w));
}

/** The output embedding [V, H]: lm_head, or the input embedding when the two are tied. */
export function lmHeadWeight(config: LlamaConfig, w: WeightSource): Sym {
  return config.tieWordEmbeddings ? w.get('model.embed_tokens.weight') : w.get('lm_head.weight');
}

/** The additive causal mask for T new positions after P cached ones, [1, 1, 1, T, P + T]. */
export function causalBias(g: Graph, T: number, P = 0, dtype: Sym['dtype'] = 'float32'): Sym {
  const S = P + T;
  const values = new Array<number>(T * S);
  for (let t = 0; t < T; t++) for (let s = 0; s < S; s++) values[t * S + s] = s <= P + t ? 0 : MASKED;
  return g.constant(values, [1, 1, 1, T, S], dtype);
}
