// Per-token log-probabilities of given token sequences under a model (teacher forcing): the
// scoring half of `autodidact logprobs`, and a parity handle against any model folder.
//
// One forward graph per padded shape [B, T]: rows are right-padded, which a causal mask makes
// harmless (a real position never attends to a later pad). T is rounded up to a few bucket sizes
// so a file of texts of varied lengths compiles a handful of graphs, not one per length.
import { Graph } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import type { LlamaConfig } from '../nn/config.ts';
import { causalBias, forward, lmHead } from '../nn/llama.ts';
import type { Device } from './devices.ts';
import { type Precision, computeDtype } from './precision.ts';
import { CompiledGraph, cpuTensor } from './session.ts';
import type { WeightBinding } from './weights.ts';

/** The padded length a sequence of `n` tokens is scored at. */
export function bucketLength(n: number, max: number): number {
  let t = 8;
  while (t < n && t < 256) t *= 2;
  if (t < n) t = Math.ceil(n / 128) * 128;
  return Math.min(t, max);
}

export interface TokenScorerOptions {
  config: LlamaConfig;
  weights: WeightBinding;
  device: Device;
  /** Compiled shapes kept for reuse; the least recently used is released beyond this. */
  maxGraphs?: number;
  /** mixed: the model computes in float16, the log-softmax in float32 (a GPU device). Default fp32. */
  precision?: Precision;
}

export class TokenScorer {
  private readonly graphs = new Map<string, Promise<CompiledGraph>>();

  constructor(private readonly options: TokenScorerOptions) {}

  get config(): LlamaConfig {
    return this.options.config;
  }

  /** The forward graph for B rows of T tokens: out[b, t] = log p(targets[b, t] | ids[b, ..t]). */
  private build(B: number, T: number): Graph {
    const { config, weights } = this.options;
    const g = new Graph(`logprobs_${B}x${T}`);
    const inputIds = g.input('input_ids', [B, T], 'int32');
    const targets = g.input('targets', [B, T, 1], 'int32');
    g.untaped(() => {
      const w = weights.bind(g, computeDtype(this.options.precision ?? 'fp32'));
      const positions = Array.from({ length: B * T }, (_, i) => i % T);
      const { hidden } = forward(config, w, {
        inputIds,
        positionIds: g.constant(positions, [B, T], 'int32'),
        attentionBias: causalBias(g, T),
      });
      const logits = lmHead(config, w, hidden);
      const picked = op.logSoftmaxPick(logits.dtype === 'float16' ? op.cast(logits, 'float32') : logits, targets);
      g.output('logprobs', op.reshape(picked, [B, T]));
    });
    return g;
  }

  private graph(B: number, T: number): Promise<CompiledGraph> {
    const key = `${B}x${T}`;
    let p = this.graphs.get(key);
    if (p) {
      // Map order is insertion order: re-insert to mark as most recently used.
      this.graphs.delete(key);
    } else {
      p = CompiledGraph.create(this.build(B, T), this.options.device);
      p.catch(() => this.graphs.delete(key));
    }
    this.graphs.set(key, p);
    const max = this.options.maxGraphs ?? 4;
    while (this.graphs.size > max) {
      const [oldest, old] = this.graphs.entries().next().value as [string, Promise<CompiledGraph>];
      this.graphs.delete(oldest);
      void old.then((c) => c.release(), () => undefined);
    }
    return p;
  }

  /**
   * For each sequence, out[i] = log p(seq[i + 1] | seq[0..i]) (length n - 1; empty for n < 2).
   * All sequences are scored in one run, so pass a batch of the size you want to run at.
   */
  async score(sequences: readonly (readonly number[])[]): Promise<Float32Array[]> {
    const { config } = this.options;
    const out = sequences.map((s) => new Float32Array(Math.max(0, s.length - 1)));
    const rows = sequences.map((s, i) => ({ s, i })).filter((r) => r.s.length >= 2);
    if (rows.length === 0) return out;
    const longest = Math.max(...rows.map((r) => r.s.length));
    if (longest > config.maxPositionEmbeddings) {
      throw new Error(`a sequence of ${longest} tokens is longer than the model's max_position_embeddings (${config.maxPositionEmbeddings})`);
    }
    for (const r of rows) {
      const bad = r.s.find((id) => !Number.isInteger(id) || id < 0 || id >= config.vocabSize);
      if (bad !== undefined) throw new Error(`sequence ${r.i}: token id ${bad} is outside the vocabulary (0..${config.vocabSize - 1})`);
    }
    const B = rows.length;
    const T = bucketLength(longest, config.maxPositionEmbeddings);
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    rows.forEach((r, b) => {
      ids.set(r.s, b * T);
      targets.set(r.s.slice(1), b * T);
    });
    const compiled = await this.graph(B, T);
    const feeds = {
      ...this.options.weights.feeds(compiled.inputNames),
      input_ids: cpuTensor(ids, [B, T]),
      targets: cpuTensor(targets, [B, T, 1]),
    };
    const result = (await compiled.run(feeds)).logprobs.data as Float32Array;
    rows.forEach((r, b) => out[r.i].set(result.subarray(b * T, b * T + r.s.length - 1)));
    return out;
  }

  async release(): Promise<void> {
    const all = [...this.graphs.values()];
    this.graphs.clear();
    for (const p of all) await p.then((c) => c.release(), () => undefined);
  }
}
