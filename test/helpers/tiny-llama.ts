// Tiny Llama-family configs with random weights, for the training tests.
import { type LlamaConfig, weightShapes } from '../../main/engine/nn/config.ts';
import type { HostTensor } from '../../main/engine/runtime/weights.ts';
import { rng } from './gradcheck.ts';

export function tinyLlama(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    architecture: 'llama',
    vocabSize: 11,
    hiddenSize: 8,
    intermediateSize: 12,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 4,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 64,
    tieWordEmbeddings: false,
    attentionBias: false,
    qkNorm: false,
    bosTokenId: null,
    eosTokenIds: [],
    slidingWindow: null,
    ...overrides,
  };
}

/** Random weights whose activations and logits are of order one, so every gradient matters. */
export function randomWeights(config: LlamaConfig, seed = 5): Map<string, HostTensor> {
  const random = rng(seed);
  const map = new Map<string, HostTensor>();
  for (const [name, shape] of weightShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const isNorm = name.endsWith('norm.weight');
    const scale = name.endsWith('.bias') ? 0.2 : 1.2 / Math.sqrt(shape[shape.length - 1]);
    for (let i = 0; i < size; i++) data[i] = isNorm ? 1 + 0.3 * (random() - 0.5) : scale * (2 * random() - 1) * Math.sqrt(3);
    map.set(name, { shape: [...shape], data });
  }
  return map;
}

/** Random token ids in [0, vocab). */
export function randomTokens(n: number, vocab: number, seed = 9): Int32Array {
  const random = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(random() * vocab));
}
