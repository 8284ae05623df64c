// Shared by the generation tests: small random Llama-family models, a character tokenizer, and
// the training-style reference (one full forward over prompt + generated tokens, no cache).
import { Graph } from '../../../main/engine/graph/graph.ts';
import * as op from '../../../main/engine/graph/ops.ts';
import { type LlamaConfig, weightShapes } from '../../../main/engine/nn/config.ts';
import { causalBias, forward, lmHead } from '../../../main/engine/nn/llama.ts';
import { tokenLogprobs } from '../../../main/engine/nn/losses.ts';
import type { Device } from '../../../main/engine/runtime/devices.ts';
import { CompiledGraph, cpuTensor } from '../../../main/engine/runtime/session.ts';
import { type HostTensor, HostWeights, type WeightBinding } from '../../../main/engine/runtime/weights.ts';
import { rng } from '../../helpers/gradcheck.ts';
import { tinyLlama } from '../../helpers/tiny-llama.ts';

/** The generation tests' default size: big enough for top-k/top-p and grouped KV heads to matter. */
export function tinyConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return tinyLlama({ vocabSize: 40, hiddenSize: 32, intermediateSize: 64, numHeads: 4, numKvHeads: 2, headDim: 8, maxPositionEmbeddings: 256, ...overrides });
}

/** Random weights with roughly unit-scale activations and logits spread enough to matter. */
export function randomWeights(config: LlamaConfig, seed = 7): HostWeights<HostTensor> {
  const random = rng(seed);
  const map = new Map<string, HostTensor>();
  for (const [name, shape] of weightShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith('norm.weight')) {
      for (let i = 0; i < size; i++) data[i] = 1 + 0.2 * (random() - 0.5);
    } else {
      const scale = name.includes('embed') ? 1 : name.includes('lm_head') ? 3 / Math.sqrt(shape[1]) : 1.5 / Math.sqrt(shape[shape.length - 1]);
      for (let i = 0; i < size; i++) data[i] = scale * (2 * random() - 1) * Math.sqrt(3);
    }
    map.set(name, { shape: [...shape], data });
  }
  return new HostWeights(map);
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** Token i is the i-th character of a fixed alphabet. */
export const charTokenizer = {
  decode: (ids: readonly number[]) => ids.map((i) => ALPHABET[i] ?? '?').join(''),
};

export interface Reference {
  /** Per sequence, per generated token: the raw logits that predicted it. */
  logits: Float32Array[][];
  /** log_softmax(logits / T) at the generated tokens (computed in the graph). */
  logprobs: number[][];
}

/**
 * The training-style computation for sequences prompt + generated: one causal forward over the
 * whole (right-padded) sequences, lm head, and the training losses' per-token log-probs
 * (log_softmax(logits / T) at each next token).
 */
export async function referenceLogprobs(
  config: LlamaConfig,
  weights: WeightBinding,
  device: Device,
  seqs: { prompt: number[]; generated: number[] }[],
  temperature: number,
): Promise<Reference> {
  const B = seqs.length;
  const S = Math.max(...seqs.map((s) => s.prompt.length + s.generated.length)) - 1;
  const V = config.vocabSize;
  const g = new Graph('reference');
  const ids = g.input('ids', [B, S], 'int32');
  const pos = g.input('pos', [B, S], 'int32');
  const targets = g.input('targets', [B, S], 'int32');
  const w = weights.bind(g);
  const dtype = w.get('model.embed_tokens.weight').dtype;
  const { hidden } = forward(config, w, { inputIds: ids, positionIds: pos, attentionBias: causalBias(g, S, 0, dtype) });
  const logits = lmHead(config, w, hidden);
  g.output('logits', op.cast(logits, 'float32'));
  g.output('logprobs', op.cast(tokenLogprobs(logits, targets, temperature), 'float32'));
  const compiled = await CompiledGraph.create(g, device);
  const idData = new Int32Array(B * S);
  const posData = new Int32Array(B * S);
  const targetData = new Int32Array(B * S);
  seqs.forEach((s, b) => {
    const all = [...s.prompt, ...s.generated];
    for (let t = 0; t < S; t++) {
      idData[b * S + t] = all[t] ?? 0;
      posData[b * S + t] = t;
      targetData[b * S + t] = all[t + 1] ?? 0;
    }
  });
  const out = await compiled.run({
    ...weights.feeds(compiled.inputNames),
    ids: cpuTensor(idData, [B, S]),
    pos: cpuTensor(posData, [B, S]),
    targets: cpuTensor(targetData, [B, S]),
  });
  await compiled.release();
  const allLogits = out.logits.data as Float32Array;
  const lp = out.logprobs.data as Float32Array;
  return {
    logits: seqs.map((s, b) => s.generated.map((_, i) => {
      const t = s.prompt.length - 1 + i;
      return allLogits.slice((b * S + t) * V, (b * S + t + 1) * V);
    })),
    logprobs: seqs.map((s, b) => s.generated.map((_, i) => lp[b * S + s.prompt.length - 1 + i])),
  };
}

/** Entropy and KL(U ‖ p) of softmax(z / T), in float64 on the host. */
export function hostStats(logits: Float32Array, temperature: number): { entropy: number; selfCertainty: number; logp: Float64Array } {
  const V = logits.length;
  const z = Float64Array.from(logits, (x) => x / temperature);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, x) => s + Math.exp(x - m), 0));
  const logp = z.map((x) => x - lse);
  const entropy = -logp.reduce((s, l) => s + Math.exp(l) * l, 0);
  const mean = z.reduce((s, x) => s + x, 0) / V;
  return { entropy, selfCertainty: lse - mean - Math.log(V), logp };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
