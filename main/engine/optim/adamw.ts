// Global-norm gradient clipping and AdamW, as graph ops over flat tensors.
//
// The trainer keeps every trainable parameter in one flat buffer and concatenates the gradients
// into one flat tensor, so the whole optimizer is a dozen elementwise ops, whatever the model.
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

/**
 * Σ x² of each tensor, summed in two levels (along the last axis, then the rest): a single
 * float32 ReduceSum over millions of squares drifts by ~1e-4 relative, two levels by ~1e-7.
 */
export function sumOfSquares(xs: readonly Sym[]): Sym {
  const g = xs[0].graph;
  return g.untaped(() => {
    const parts = xs.map((x) => {
      const sq = op.mul(x, x);
      return op.reshape(x.rank >= 2 ? op.sum(op.sum(sq, [-1])) : op.sum(sq), [1]);
    });
    return op.sum(op.concat(parts, 0));
  });
}

/**
 * Scale `grad` (flat) so its global L2 norm is at most `maxNorm`. `sumSq` is Σ grad² when the
 * caller has it more accurately (from the per-weight gradients, see sumOfSquares).
 */
export function clipByGlobalNorm(grad: Sym, maxNorm: number | null, sumSq?: Sym): ClipResult {
  return grad.graph.untaped(() => {
    const norm = op.sqrt(sumSq ?? sumOfSquares([grad]));
    if (maxNorm === null) return { grad, norm, coef: null };
    const coef = op.minimum(op.div(grad.graph.scalar(maxNorm, grad.dtype), op.add(norm, 1e-6)), 1);
    return { grad: op.mul(grad, coef), norm, coef };
  });
}

export interface AdamWState {
  params: Sym;
  grad: Sym;
  /** A scalar the gradient is multiplied by first (the clipping coefficient), folded into scalars. */
  gradScale?: Sym | null;
  /** First and second moments, shaped like `params`. */
  m: Sym;
  v: Sym;
  /** Learning rate, a scalar input. */
  lr: Sym;
  /** The 1-based count of this update, a float scalar input (bias corrections). */
  step: Sym;
}

/**
 * One AdamW update; returns the new parameters and moments. Every scalar factor is folded into
 * one scalar before it meets a full-size tensor, so the update is 12 passes over the parameters
 * (13 with weight decay): with ĝ = scale·g, c = sqrt(1 − β₂ᵗ),
 *   m' = β₁m + ((1−β₁)·scale)·g,   v' = β₂v + ((1−β₂)·scale²)·g²,
 *   p' = p·(1 − lr·wd) − (lr·c/(1 − β₁ᵗ)) · m' / (sqrt(v') + eps·c),
 * which is PyTorch's m̂/(sqrt(v̂) + eps) multiplied through by c.
 */
export function adamw(s: AdamWState, hp: AdamWHyper): { params: Sym; m: Sym; v: Sym } {
  checkAdamW(hp);
  const g = s.params.graph;
  const [b1, b2] = hp.betas;
  return g.untaped(() => {
    const scale = s.gradScale ?? null;
    const c1 = scale ? op.mul(scale, 1 - b1) : 1 - b1;
    const c2 = scale ? op.mul(op.mul(scale, scale), 1 - b2) : 1 - b2;
    const m = op.add(op.mul(s.m, b1), op.mul(s.grad, c1));
    const v = op.add(op.mul(s.v, b2), op.mul(op.mul(s.grad, s.grad), c2));
    // beta^step with the step as a runtime input: Pow(constant, step).
    const betaPow = (beta: number) => g.node('Pow', [g.scalar(beta, s.step.dtype), s.step], [{ shape: [], dtype: s.step.dtype }])[0];
    const bc1 = op.sub(1, betaPow(b1));
    const c = op.sqrt(op.sub(1, betaPow(b2)));
    const stepSize = op.div(op.mul(s.lr, c), bc1);
    const denom = op.add(op.sqrt(v), op.mul(c, hp.eps));
    const decayed = hp.weightDecay === 0 ? s.params : op.mul(s.params, op.sub(1, op.mul(s.lr, hp.weightDecay)));
    const params = op.sub(decayed, op.mul(op.div(m, denom), stepSize));
    return { params, m, v };
  });
}
