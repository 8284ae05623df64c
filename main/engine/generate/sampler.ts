// Sampling on the device: the last op block of the prefill and decode graphs.
//
// A row's next token is drawn by inverse CDF: with one uniform u in [0, 1) supplied by the host,
// the token is the first one (in a fixed order) whose cumulative probability exceeds u times the
// total. That is exact, needs no random op in the graph (RandomUniform and Multinomial fall back
// to the CPU on WebGPU), and a seed on the host reproduces every sample.
//
// The statistics returned with each token (its log-prob, the entropy H(p) and the self-certainty
// KL(U ‖ p)) are computed from p = softmax(logits / T) BEFORE top-k / top-p truncation. That is
// the distribution the policy-gradient graph evaluates (log_softmax(logits / T) at the token),
// so the two agree; truncation only decides which token is drawn. At temperature 0 (greedy)
// the statistics use T = 1.
import type { Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';

export interface SamplingSettings {
  /** 0 = greedy; otherwise logits are divided by it. */
  temperature: number;
  /** Keep only the k most likely tokens; 0 = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p (after top-k); 1 = off. */
  topP: number;
}

/**
 * How the graph picks a token; part of a graph's identity (each mode compiles its own graph),
 * while the temperature and top-p value are run-time inputs.
 *  - greedy: argmax.
 *  - full: inverse CDF over the whole softmax in vocabulary order (no sort).
 *  - filtered: sort the `candidates` best logits (TopK) to find the top-k / top-p cut, then
 *    inverse CDF over the kept tokens in vocabulary order. Without top-k, top-p needs every
 *    token sorted (candidates = V), the one costly case for large vocabularies.
 */
export type SamplingMode = { kind: 'greedy' } | { kind: 'full' } | { kind: 'filtered'; candidates: number };

export function validateSampling(s: SamplingSettings): void {
  if (!(Number.isFinite(s.temperature) && s.temperature >= 0)) throw new Error(`temperature must be a number >= 0 (0 = greedy), got ${s.temperature}`);
  if (!(Number.isInteger(s.topK) && s.topK >= 0)) throw new Error(`topK must be an integer >= 0 (0 = off), got ${s.topK}`);
  if (!(s.topP > 0 && s.topP <= 1)) throw new Error(`topP must be in (0, 1] (1 = off), got ${s.topP}`);
}

export function samplingMode(s: SamplingSettings, vocabSize: number): SamplingMode {
  validateSampling(s);
  if (s.temperature === 0) return { kind: 'greedy' };
  const k = s.topK > 0 && s.topK < vocabSize ? s.topK : 0;
  if (k === 0 && s.topP >= 1) return { kind: 'full' };
  return { kind: 'filtered', candidates: k || vocabSize };
}

export function samplingModeKey(m: SamplingMode): string {
  return m.kind === 'filtered' ? `filtered${m.candidates}` : m.kind;
}

/** The temperature the statistics (and sampling) use: T, or 1 when greedy. */
export function statsTemperature(s: SamplingSettings): number {
  return s.temperature > 0 ? s.temperature : 1;
}

export interface SamplerInputs {
  /** [B] float32 in [0, 1): one uniform per row. */
  uniforms: Sym;
  /**
   * [1] float32: 1 / temperature (1 when greedy). Logits are multiplied by it, exactly as the
   * training graph's token log-probs scale them, so both see the same float32 numbers.
   */
  inverseTemperature: Sym;
  /** [1] float32: the top-p threshold (read only in the filtered mode). */
  topP: Sym;
}

export interface SamplerOutputs {
  /** [B] int32 */
  token: Sym;
  /** [B] log p(token) under softmax(logits / T), before truncation. */
  logprob: Sym;
  /** [B] H(p) = −Σ p log p. */
  entropy: Sym;
  /** [B] KL(U ‖ p) = logsumexp(z) − mean(z) − log V with z = logits / T. */
  selfCertainty: Sym;
}

/**
 * Draw one token per row from logits [B, V] and compute the per-token statistics.
 * Written without LogSoftmax, ArgMax and int64 indices (TopK's index output is unused), which
 * the WebGPU provider runs on the CPU; everything here stays on the device.
 */
export function sampleFromLogits(logits: Sym, mode: SamplingMode, inputs: SamplerInputs): SamplerOutputs {
  const [B, V] = logits.shape;
  if (logits.rank !== 2) throw new Error(`sampleFromLogits: logits must be [B, V], got ${logits}`);
  const g = logits.graph;
  return g.untaped(() => {
    const z = op.mul(op.cast(logits, 'float32'), inputs.inverseTemperature);
    const zMax = op.max(z, [-1], true);
    const e = op.exp(op.sub(z, zMax));
    const sumE = op.sum(e, [-1], true);
    const logZ = op.add(op.log(sumE), zMax);
    const logp = op.sub(z, logZ);
    const p = op.div(e, sumE);
    const entropy = op.neg(op.sum(op.mul(p, logp), [-1]));
    // KL(U ‖ p) = Σ (1/V) log((1/V) / p_v) = logsumexp(z) − mean(z) − log V
    const selfCertainty = op.reshape(op.sub(op.sub(logZ, op.mean(z, [-1], true)), Math.log(V)), [B]);

    let token: Sym; // [B, 1] int32
    if (mode.kind === 'greedy') {
      // the first index of the maximum (ArgMax's tie rule)
      const negIndex = g.constant(Array.from({ length: V }, (_, i) => -i), [V], 'float32');
      token = op.cast(op.neg(op.max(op.where(op.equal(z, zMax), negIndex, -V), [-1], true)), 'int32');
    } else {
      let weights = p;
      if (mode.kind === 'filtered') {
        // Top-k / top-p on the sorted candidates: renormalise over the k best (HF applies top-p
        // after top-k, to the rescaled distribution) and keep the sorted prefix whose mass
        // before each token is < top-p, i.e. up to the first rank whose running mass reaches
        // top-p. Its logit is the threshold for the kept set, in vocabulary order.
        const [values] = op.topk(z, mode.candidates);
        const lastKept = searchRunningSum(op.softmax(values, -1), op.expand(inputs.topP, [B, 1]), false);
        weights = op.where(op.greaterOrEqual(z, op.gatherLast(values, lastKept)), p, 0);
      }
      // inverse CDF: the first token whose running sum exceeds u · total
      const u = op.reshape(inputs.uniforms, [B, 1]);
      token = searchRunningSum(weights, op.mul(u, op.sum(weights, [-1], true)), true);
    }
    const logprob = op.reshape(op.gatherLast(logp, token), [B]);
    return { token: op.reshape(token, [B]), logprob, entropy, selfCertainty };
  });
}

/** Rows up to this long are searched with one running sum (O(n²) per row on WebGPU is cheap). */
const SINGLE_BLOCK = 512;

/**
 * Per row, the first index i of non-negative weights w [B, n] whose running sum c_i exceeds x
 * (`exceed`: c_i > x) or reaches it (c_i >= x), as [B, 1] int32; never an entry of weight 0
 * (rounding is clamped to the last positive one).
 *
 * Two levels, so no running sum is longer than about √n: block sums locate the block, a running
 * sum inside that block the entry. Mathematically the same index as one running sum over all n;
 * it matters because WebGPU's CumSum costs O(n) per output element (O(n²) per row), far too
 * slow for a vocabulary, and on the CPU it reads the weights once instead of four times.
 */
function searchRunningSum(w: Sym, x: Sym, exceed: boolean): Sym {
  const g = w.graph;
  const [B, n] = w.shape;
  const below = (c: Sym, target: Sym) => op.sum(op.cast(exceed ? op.lessOrEqual(c, target) : op.less(c, target), 'float32'), [-1], true);
  // Short rows: one running sum (fewer nodes; each costs a few microseconds per decode step).
  if (n <= SINGLE_BLOCK) return op.cast(op.minimum(below(op.cumsum(w, -1), x), lastPositive(w)), 'int32');

  const bs = blockSize(n);
  const nb = Math.ceil(n / bs);
  const padded = nb * bs === n ? w : op.concat([w, op.expand(g.constant([0], [1, 1], 'float32'), [B, nb * bs - n])], -1);

  const blockMass = op.sum(op.reshape(padded, [B, nb, bs]), [-1]); // [B, nb]
  const blockEnd = op.cumsum(blockMass, -1);
  const block = op.minimum(below(blockEnd, x), lastPositive(blockMass)); // [B, 1] float
  const block32 = op.cast(block, 'int32');
  const before = op.sub(op.gatherLast(blockEnd, block32), op.gatherLast(blockMass, block32));
  const start = op.mul(block32, bs);
  const inBlock = op.gatherLast(padded, op.add(start, op.iota(g, bs, 'int32'))); // [B, bs]
  const offset = op.minimum(below(op.cumsum(inBlock, -1), op.sub(x, before)), lastPositive(inBlock));
  return op.add(start, op.cast(offset, 'int32'));
}

/**
 * The block length for n entries: about √n, a power of two, and one that divides n where such
 * a one is at least √n / 4 (every common vocabulary: 151,936 = 128 · 1,187, 128,256 = 256 · 501,
 * 32,000 = 256 · 125), so the weights need no padding: the Concat that pads them copies the
 * whole [B, n] distribution every step.
 */
export function blockSize(n: number): number {
  const root = Math.sqrt(n);
  const nearRoot = 2 ** Math.ceil(Math.log2(Math.ceil(root)));
  const dividing = Math.min(n & -n, nearRoot); // both powers of two: it divides n
  return dividing >= root / 4 ? dividing : nearRoot;
}

/** Index of the last positive entry of w [B, m] per row, as [B, 1] float (0 if none). */
function lastPositive(w: Sym): Sym {
  const m = w.shape[1];
  return op.max(op.where(op.greater(w, 0), op.iota(w.graph, m, 'float32'), 0), [-1], true);
}

// ---------------------------------------------------------------------------------------------
// Host-side uniforms

/** One independent uniform stream per sample row, derived from (seed, prompt, sample). */
export class RowUniforms {
  private readonly state: Uint32Array;

  constructor(seed: number, rows: readonly { promptIndex: number; sampleIndex: number }[]) {
    if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    this.state = Uint32Array.from(rows, (r) => mix32(mix32(mix32(seed >>> 0) ^ r.promptIndex) ^ Math.imul(r.sampleIndex + 1, 0x9e3779b9)));
  }

  /** Fill `out` with the next uniform of every row. Each is k / 2^24, exact in float32, < 1. */
  next(out: Float32Array): void {
    for (let i = 0; i < this.state.length; i++) {
      this.state[i] = (this.state[i] + 0x6d2b79f5) >>> 0;
      out[i] = (mix32(this.state[i]) >>> 8) / 16777216;
    }
  }
}

/** A 32-bit finaliser (murmur3 fmix32): every input bit affects every output bit. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
