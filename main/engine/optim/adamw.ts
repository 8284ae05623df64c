// Global-norm gradient clipping and AdamW, as graph ops over flat tensors.
//
// The trainer keeps every trainable parameter in one flat buffer and updates it in a few ranges
// (optimizerRanges), so the whole optimizer is a dozen elementwise ops per range, whatever the
// model.
// Numerics follow PyTorch: clip_grad_norm_ (coefficient max_norm / (norm + 1e-6), at most 1)
// and torch.optim.AdamW (decoupled weight decay p *= 1 - lr·wd, bias corrections from the step).
import type { Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';

export interface AdamWHyper {
  betas: [number, number];
  eps: number;
  /** Decoupled weight decay, applied to every trainable parameter. */
  weightDecay: number;
  /** Clip the global gradient norm to this; null computes the norm but never clips. */
  maxGradNorm: number | null;
}

/** PyTorch's AdamW defaults, with the clipping Hugging Face's Trainer and verl apply. */
export const ADAMW_DEFAULTS: AdamWHyper = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1.0 };

export function checkAdamW(hp: AdamWHyper): void {
  const [b1, b2] = hp.betas;
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) throw new Error(`AdamW betas must be in [0, 1), got [${b1}, ${b2}]`);
  if (!(hp.eps > 0)) throw new Error(`AdamW eps must be > 0, got ${hp.eps}`);
  if (!(hp.weightDecay >= 0)) throw new Error(`AdamW weightDecay must be >= 0, got ${hp.weightDecay}`);
  if (hp.maxGradNorm !== null && !(hp.maxGradNorm > 0)) throw new Error(`maxGradNorm must be > 0 or null, got ${hp.maxGradNorm}`);
}

export interface ClipResult {
  /** The gradient after clipping. */
  grad: Sym;
  /** The global L2 norm before clipping (a scalar); NaN or ∞ means the update must be skipped. */
  norm: Sym;
  /**
   * The clipping coefficient (a scalar, grad = input · coef), or null when nothing is clipped:
   * AdamW can take the unclipped gradient and this as `gradScale`, saving a full-size pass.
   */
  coef: Sym | null;
}

/** The row length a flat tensor's squares are summed in first (sumOfSquares). */
export const SQUARES_ROW = 1024;

/**
 * Σ x² of all the tensors, summed in two levels (along each tensor's last axis, a flat one's
 * rows of SQUARES_ROW values, then over all those row sums at once): a single float32 ReduceSum
 * over millions of squares drifts by ~1e-4 relative, two levels by ~1e-7. The row sums are
 * concatenated rather than reduced per tensor. Given the flat gradient (the optimizer's ranges)
 * rather than each weight's, a step's norm is a few nodes whatever the number of weights (on a
 * GPU each node is a dispatch).
 */
export function sumOfSquares(xs: readonly Sym[]): Sym {
  const g = xs[0].graph;
  // ReduceSumSquare: one pass, where Mul then ReduceSum read the gradient twice.
  const rowSums = (x: Sym): Sym => {
    const shape = x.rank >= 2 ? x.shape.slice(0, -1) : [];
    const [r] = g.node('ReduceSumSquare', [x], [{ shape, dtype: x.dtype }], { axes: { ints: [-1] }, keepdims: { i: 0 } });
    return r.rank === 1 ? r : op.reshape(r, [r.size]);
  };
  return g.untaped(() => {
    const rows = xs.flatMap((x) => {
      if (x.rank !== 1 || x.size <= SQUARES_ROW) return [rowSums(x)];
      const whole = Math.floor(x.size / SQUARES_ROW) * SQUARES_ROW;
      const body = rowSums(op.reshape(whole === x.size ? x : op.slice(x, 0, 0, whole), [whole / SQUARES_ROW, SQUARES_ROW]));
      return whole === x.size ? [body] : [body, rowSums(op.slice(x, 0, whole, x.size))];
    });
    return op.sum(rows.length === 1 ? rows[0] : op.concat(rows, 0));
  });
}

/**
 * The global L2 norm of gradients whose Σ g² is `sumSq` (see sumOfSquares), and the coefficient
 * that scales them to a norm of at most `maxNorm` (null when nothing is clipped).
 */
export function clipCoefficient(sumSq: Sym, maxNorm: number | null): Omit<ClipResult, 'grad'> {
  return sumSq.graph.untaped(() => {
    const norm = op.sqrt(sumSq);
    if (maxNorm === null) return { norm, coef: null };
    return { norm, coef: op.minimum(op.div(sumSq.graph.scalar(maxNorm, sumSq.dtype), op.add(norm, 1e-6)), 1) };
  });
}

/** Scale `grad` (flat) so its global L2 norm is at most `maxNorm`. */
export function clipByGlobalNorm(grad: Sym, maxNorm: number | null): ClipResult {
  const { norm, coef } = clipCoefficient(sumOfSquares([grad]), maxNorm);
  return { grad: coef ? grad.graph.untaped(() => op.mul(grad, coef)) : grad, norm, coef };
}

export interface AdamWState {
  /**
   * The parameters in pieces of any shapes, each with its gradient and moments at the same
   * index and shape. AdamW is elementwise, so how the values are cut does not change the result.
   */
  params: readonly Sym[];
  grads: readonly Sym[];
  /** A scalar the gradient is multiplied by first (the clipping coefficient), folded into scalars. */
  gradScale?: Sym | null;
  /** First and second moments, shaped like `params`. */
  m: readonly Sym[];
  v: readonly Sym[];
  /** Learning rate, a scalar input. */
  lr: Sym;
  /** The 1-based count of this update, a float scalar input (bias corrections). */
  step: Sym;
}

/**
 * One AdamW update; returns the new parameters and moments, piece by piece. Every scalar factor
 * is folded into one scalar before it meets a full-size tensor, so each piece takes 12 passes
 * (13 with weight decay): with ĝ = scale·g, c = sqrt(1 − β₂ᵗ),
 *   m' = β₁m + ((1−β₁)·scale)·g,   v' = β₂v + ((1−β₂)·scale²)·g²,
 *   p' = p·(1 − lr·wd) − (lr·c/(1 − β₁ᵗ)) · m' / (sqrt(v') + eps·c),
 * which is PyTorch's m̂/(sqrt(v̂) + eps) multiplied through by c.
 */
export function adamw(s: AdamWState, hp: AdamWHyper): { params: Sym[]; m: Sym[]; v: Sym[] } {
  checkAdamW(hp);
  const n = s.params.length;
  if (n === 0 || s.grads.length !== n || s.m.length !== n || s.v.length !== n) {
    throw new Error(`adamw: ${n} parameter pieces need as many gradients and moments (got ${s.grads.length}, ${s.m.length}, ${s.v.length})`);
  }
  const g = s.params[0].graph;
  const [b1, b2] = hp.betas;
  return g.untaped(() => {
    const scale = s.gradScale ?? null;
    const c1 = scale ? op.mul(scale, 1 - b1) : 1 - b1;
    const c2 = scale ? op.mul(op.mul(scale, scale), 1 - b2) : 1 - b2;
    // beta^step with the step as a runtime input: Pow(constant, step).
    const betaPow = (beta: number) => g.node('Pow', [g.scalar(beta, s.step.dtype), s.step], [{ shape: [], dtype: s.step.dtype }])[0];
    const bc1 = op.sub(1, betaPow(b1));
    const c = op.sqrt(op.sub(1, betaPow(b2)));
    const stepSize = op.div(op.mul(s.lr, c), bc1);
    const epsC = op.mul(c, hp.eps);
    const decay = hp.weightDecay === 0 ? null : op.sub(1, op.mul(s.lr, hp.weightDecay));
    const out = { params: [] as Sym[], m: [] as Sym[], v: [] as Sym[] };
    for (let i = 0; i < n; i++) {
      const [p, grad] = [s.params[i], s.grads[i]];
      for (const [what, x] of [['gradient', grad], ['m', s.m[i]], ['v', s.v[i]]] as const) {
        if (x.shape.join() !== p.shape.join()) throw new Error(`adamw: piece ${i} is [${p.shape}] but its ${what} is [${x.shape}]`);
      }
      const m = op.add(op.mul(s.m[i], b1), op.mul(grad, c1));
      const v = op.add(op.mul(s.v[i], b2), op.mul(op.mul(grad, grad), c2));
      const denom = op.add(op.sqrt(v), epsC);
      out.params.push(op.sub(decay ? op.mul(p, decay) : p, op.mul(op.div(m, denom), stepSize)));
      out.m.push(m);
      out.v.push(v);
    }
    return out;
  });
}

/** A half-open range [start, end) of a flat buffer. */
export interface FlatRange {
  start: number;
  end: number;
}

/**
 * How the trainer cuts the flat parameter buffer into pieces for AdamW: ranges of at most
 * `maxSize` values, neighbouring small parameters grouped into one range and a large one cut
 * into equal parts. On the CPU each piece's dozen passes then run while it is in cache, instead
 * of a dozen trips through main memory for the whole buffer (on a 20M-parameter model the
 * optimizer took 90 ms of a step that way); `maxSize` = Infinity keeps one range (GPUs).
 */
export function optimizerRanges(sizes: readonly number[], maxSize: number): FlatRange[] {
  if (!(maxSize >= 1)) throw new Error(`optimizerRanges: maxSize must be >= 1, got ${maxSize}`);
  const ranges: FlatRange[] = [];
  let start = 0;
  let end = 0;
  const close = () => {
    if (end > start) ranges.push({ start, end });
    start = end;
  };
  for (const size of sizes) {
    if (size > maxSize) {
      close();
      const parts = Math.ceil(size / maxSize);
      const base = end;
      for (let k = 1; k <= parts; k++) {
        end = base + Math.round((size * k) / parts);
        close();
      }
    } else {
      if (end + size - start > maxSize) close();
      end += size;
    }
  }
  close();
  return ranges;
}

/**
 * Values [start, end) of the concatenation of the 1-D tensors `parts`, cut from the parts that
 * overlap the range without building the whole concatenation.
 */
export function rangeOfConcatenation(parts: readonly Sym[], range: FlatRange): Sym {
  const pieces: Sym[] = [];
  let offset = 0;
  for (const part of parts) {
    if (part.rank !== 1) throw new Error(`rangeOfConcatenation: parts must be 1-D, got ${part}`);
    const [from, to] = [Math.max(range.start, offset), Math.min(range.end, offset + part.size)];
    if (from < to) pieces.push(op.slice(part, 0, from - offset, to - offset));
    offset += part.size;
  }
  if (range.start < 0 || range.end > offset || range.end <= range.start) throw new Error(`rangeOfConcatenation: [${range.start}, ${range.end}) is not inside [0, ${offset})`);
  return op.concat(pieces, 0);
}
