// The Llama-family configuration, read from a Hugging Face config.json.
// One struct covers Llama 2/3, Qwen2/2.5, Qwen3, Mistral, SmolLM and TinyLlama: they differ
// only in q/k/v biases (Qwen2), per-head q/k RMSNorm (Qwen3), RoPE scaling and tied embeddings.
import { z } from 'zod';
import { PHRASED } from '../../issues.ts';

export type Architecture = 'llama' | 'qwen2' | 'qwen3' | 'mistral';

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number };

export interface LlamaConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Biases on the q, k and v projections (Qwen2). */
  attentionBias: boolean;
  /** RMSNorm over each head of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /**
   * Mistral's (and Qwen's optional) sliding-window attention span. The engine attends to every
   * earlier position, which equals the window for sequences no longer than it; longer ones are
   * refused rather than silently computed differently.
   */
  slidingWindow: number | null;
}

const ARCHITECTURES: Record<string, Architecture> = {
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
};

const tokenIds = z.union([z.number().int(), z.array(z.number().int())]).nullish();

const ropeSchema = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().optional(),
    high_freq_factor: z.number().optional(),
    original_max_position_embeddings: z.number().int().optional(),
  })
  .passthrough();

const hfConfigSchema = z.object({
  model_type: z.string(),
  vocab_size: z.number().int().positive(),
  hidden_size: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive().nullish(),
  head_dim: z.number().int().positive().nullish(),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().optional(),
  rope_scaling: ropeSchema.nullish(),
  // transformers >= 5 writes theta and scaling together here instead of the two fields above.
  rope_parameters: ropeSchema.extend({ rope_theta: z.number().positive().optional() }).nullish(),
  max_position_embeddings: z.number().int().positive().default(2048),
  tie_word_embeddings: z.boolean().default(false),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  hidden_act: z.string().default('silu'),
  bos_token_id: tokenIds,
  eos_token_id: tokenIds,
  sliding_window: z.number().int().positive().nullish(),
  use_sliding_window: z.boolean().optional(),
});

/**
 * A value of config.json for a message: shown where it is a short name ("gpt2"), else left out,
 * so a file that is not a model's config is never quoted back.
 */
function shown(value: unknown): string {
  return typeof value === 'string' && /^[\w.-]{1,40}$/.test(value) ? ` "${value}"` : '';
}

/** Parse a config.json object; `source` names the file in error messages. */
export function parseConfig(json: unknown, source = 'config.json'): LlamaConfig {
  const parsed = hfConfigSchema.safeParse(json, PHRASED);
  if (!parsed.success) throw new Error(`${source}: ${parsed.error.issues[0].message}`);
  const c = parsed.data;
  const architecture = ARCHITECTURES[c.model_type];
  if (!architecture) {
    throw new Error(
      `${source}: model_type${shown(c.model_type)} is not supported; supported: ${Object.keys(ARCHITECTURES).join(', ')} (Llama 2/3, Qwen2/2.5, Qwen3, Mistral, SmolLM, TinyLlama)`,
    );
  }
  if (c.hidden_act !== 'silu') throw new Error(`${source}: hidden_act${shown(c.hidden_act)} is not supported (only silu)`);
  if (c.mlp_bias) throw new Error(`${source}: mlp_bias true is not supported (the MLP projections have no biases here)`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new Error(`${source}: num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new Error(`${source}: head dimension ${headDim} must be an even integer`);
  return {
    architecture,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10000,
    ropeScaling: parseRopeScaling(c.rope_parameters ?? c.rope_scaling, c.max_position_embeddings, source),
    maxPositionEmbeddings: c.max_position_embeddings,
    tieWordEmbeddings: c.tie_word_embeddings,
    // Qwen2 always has q/k/v biases (its modeling code ignores attention_bias).
    attentionBias: architecture === 'qwen2' || (c.attention_bias ?? false),
    qkNorm: architecture === 'qwen3',
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : null,
    eosTokenIds: c.eos_token_id == null ? [] : Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id],
    // Qwen configs carry a window that only applies with use_sliding_window; Mistral's applies.
    slidingWindow: c.sliding_window != null && (c.use_sliding_window ?? architecture === 'mistral') ? c.sliding_window : null,
  };
}

function parseRopeScaling(rs: z.infer<typeof ropeSchema> | null | undefined, maxPositions: number, source: string): RopeScaling | null {
  if (!rs) return null;
  const kind = rs.rope_type ?? rs.type;
  if (kind === 'default' || kind === undefined) return null;
  if (kind === 'llama3') {
    return {
      type: 'llama3',
      factor: rs.factor ?? 8,
      lowFreqFactor: rs.low_freq_factor ?? 1,
      highFreqFactor: rs.high_freq_factor ?? 4,
      // transformers falls back to max_position_embeddings too.
      originalMaxPositionEmbeddings: rs.original_max_position_embeddings ?? maxPositions,
    };
  }
  if (kind === 'linear') return { type: 'linear', factor: rs.factor ?? 1 };
  throw new Error(`${source}: rope_scaling type${shown(kind)} is not supported (default, linear, llama3)`);
}

/** RoPE inverse frequencies, as Hugging Face computes them (float32), with scaling applied. */
export function ropeInverseFrequencies(config: LlamaConfig): Float32Array {
  const d = config.headDim;
  const inv = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / Math.pow(config.ropeTheta, Math.fround((2 * i) / d));
  const rs = config.ropeScaling;
  if (rs?.type === 'linear') {
    for (let i = 0; i < inv.length; i++) inv[i] = inv[i] / rs.factor;
  } else if (rs?.type === 'llama3') {
    const lowWavelen = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) {
        inv[i] = inv[i] / rs.factor;
      } else if (wavelen >= highWavelen) {
        const smooth = (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / rs.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** Every weight name the model reads, with its shape (PyTorch layout), in a fixed order. */
export function weightShapes(config: LlamaConfig): [string, number[]][] {
  const { hiddenSize: h, intermediateSize: f, vocabSize: v, numHeads, numKvHeads, headDim: d } = config;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [v, h]]];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    out.push([`${p}.input_layernorm.weight`, [h]]);
    out.push([`${p}.self_attn.q_proj.weight`, [numHeads * d, h]]);
    out.push([`${p}.self_attn.k_proj.weight`, [numKvHeads * d, h]]);
    out.push([`${p}.self_attn.v_proj.weight`, [numKvHeads * d, h]]);
    if (config.attentionBias) {
      out.push([`${p}.self_attn.q_proj.bias`, [numHeads * d]]);
      out.push([`${p}.self_attn.k_proj.bias`, [numKvHeads * d]]);
      out.push([`${p}.self_attn.v_proj.bias`, [numKvHeads * d]]);
    }
    if (config.qkNorm) {
      out.push([`${p}.self_attn.q_norm.weight`, [d]]);
      out.push([`${p}.self_attn.k_norm.weight`, [d]]);
    }
    out.push([`${p}.self_attn.o_proj.weight`, [h, numHeads * d]]);
    out.push([`${p}.post_attention_layernorm.weight`, [h]]);
    out.push([`${p}.mlp.gate_proj.weight`, [f, h]]);
    out.push([`${p}.mlp.up_proj.weight`, [f, h]]);
    out.push([`${p}.mlp.down_proj.weight`, [h, f]]);
  }
  out.push(['model.norm.weight', [h]]);
  if (!config.tieWordEmbeddings) out.push(['lm_head.weight', [v, h]]);
  return out;
}

/** The names of the linear layers LoRA can target, as PEFT calls them. */
export const LINEAR_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LinearModule = (typeof LINEAR_MODULES)[number];
