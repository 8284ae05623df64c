// Training losses as graph ops: masked token cross-entropy (supervised) and the clipped policy
// loss with an optional k3 KL penalty to a reference model and an optional entropy term
// (METHODS.md; verl's conventions).
// Every loss is a token mean over the mask of the whole batch ("token-mean" aggregation). A batch
// trained in micro-batches divides each micro-batch's sums by the whole update's token count
// (`tokenCount`), so the micro-batches' losses and gradients add up to the whole batch's.
import type { Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';

/** Half-precision logits as float32 (mixed precision): log-softmax and entropies are never taken in float16. */
function float32(logits: Sym): Sym {
  return logits.dtype === 'float16' ? op.cast(logits, 'float32') : logits;
}

/**
 * log p(target) for each position: logits [B, T, V] divided by `temperature`, log-softmax over
 * the vocabulary, the target's entry picked. targets [B, T] int32 → [B, T].
 */
export function tokenLogprobs(logits: Sym, targets: Sym, temperature = 1): Sym {
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  if (targets.rank !== logits.rank - 1) throw new Error(`tokenLogprobs: targets ${targets} do not match logits ${logits}`);
  const full = float32(logits);
  const scaled = temperature === 1 ? full : op.mul(full, 1 / temperature);
  const picked = op.logSoftmaxPick(scaled, op.unsqueeze(targets, -1));
  return op.reshape(picked, [...targets.shape]);
}

/**
 * tokenLogprobs of the logits hidden·Wᵀ, from the last hidden states [B, T, H] and the output
 * embedding W [V, H], as one primitive (op.linearLogSoftmaxPick): its gradient never scales or
 * rebuilds a [B, T, V] tensor beyond the softmax itself.
 */
export function hiddenTokenLogprobs(hidden: Sym, weight: Sym, targets: Sym, temperature = 1): Sym {
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  if (targets.rank !== hidden.rank - 1) throw new Error(`hiddenTokenLogprobs: targets ${targets} do not match hidden states ${hidden}`);
  const picked = op.linearLogSoftmaxPick(hidden, weight, op.unsqueeze(targets, -1), 1 / temperature);
  return op.reshape(picked, [...targets.shape]);
}

/**
 * Entropy of the next-token distribution at each position, H = −Σ_v p_v log p_v with
 * p = softmax(logits / temperature): logits [B, T, V] → [B, T] (nats). Differentiable.
 */
export function tokenEntropy(logits: Sym, temperature = 1): Sym {
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  const full = float32(logits);
  const scaled = temperature === 1 ? full : op.mul(full, 1 / temperature);
  const logp = op.logSoftmax(scaled, -1);
  return op.neg(op.sum(op.mul(op.exp(logp), logp), [-1]));
}

/**
 * Mean of x over positions where mask = 1 (0 when the mask is empty, never NaN). With `count`
 * (a scalar: the mask's count over a whole batch of which this is a micro-batch) the sum is
 * divided by that instead of this mask's own count.
 */
export function maskedMean(x: Sym, mask: Sym, count?: Sym | null): Sym {
  const denominator = op.maximum(count ?? op.sum(mask), 1);
  return op.div(op.sum(op.mul(x, mask)), denominator);
}

/** Supervised loss: mean negative log-likelihood of the unmasked targets (`tokenCount`: see maskedMean). */
export function sftLoss(logprobs: Sym, mask: Sym, tokenCount?: Sym | null): { loss: Sym } {
  return { loss: op.neg(maskedMean(logprobs, mask, tokenCount)) };
}

/**
 * The k3 ("low_var_kl") estimator of KL(π ‖ π_ref) per token, as verl computes it:
 * d = clamp(ref − logp, ±20); exp(d) − d − 1, clamped to [−10, 10].
 */
export function k3Kl(logprobs: Sym, refLogprobs: Sym): Sym {
  const d = op.clip(op.sub(refLogprobs, logprobs), -20, 20);
  return op.clip(op.sub(op.sub(op.exp(d), d), 1), -10, 10);
}

export interface PolicyLossOptions {
  /** Ratio clip range [1 − clipLow, 1 + clipHigh] (PPO's ε; DAPO's clip-higher when unequal). */
  clipLow: number;
  clipHigh: number;
  /** KL penalty coefficient β; 0 leaves the reference out. */
  klCoef: number;
  /**
   * Entropy coefficient c (verl's entropy_coeff): the loss gets − c · mean token entropy.
   * c > 0 is an entropy BONUS (rewards spread-out distributions); c < 0 is entropy
   * MINIMISATION (sharpens the policy, the direction of TTRL's self-consistency). 0 or absent = off.
   */
  entropyCoef?: number;
}

export const POLICY_LOSS_DEFAULTS: Required<PolicyLossOptions> = { clipLow: 0.2, clipHigh: 0.2, klCoef: 0, entropyCoef: 0 };

export interface PolicyLossInputs {
  /** log π(y_t) under the policy being trained, [B, T]. */
  logprobs: Sym;
  /** log π_old(y_t) from the policy that sampled the tokens, [B, T]. */
  oldLogprobs: Sym;
  /** One advantage per sequence, [B], broadcast to its tokens; or one per token, [B, T] (OPID's dense signal). */
  advantages: Sym;
  /** 1 for response tokens that count, 0 elsewhere, [B, T]. */
  mask: Sym;
  /** log π_ref(y_t), [B, T]; required when klCoef > 0. */
  refLogprobs?: Sym | null;
  /**
   * The KL coefficient as a scalar input, for a coefficient that changes between steps (an
   * adaptive KL controller) without a new graph. When given it replaces the value of
   * options.klCoef, which must still be > 0 to include the term.
   */
  klCoef?: Sym | null;
  /** Entropy of the policy's next-token distribution at each position, [B, T] (tokenEntropy); required when entropyCoef ≠ 0. */
  entropy?: Sym | null;
  /** The whole update's count of masked tokens when this batch is one micro-batch of it (see maskedMean). */
  tokenCount?: Sym | null;
}

export interface PolicyLossResult {
  /** pgLoss + klCoef · kl − entropyCoef · entropy: what the gradient is taken of. */
  loss: Sym;
  /** The clipped surrogate, −min(r·A, clip(r)·A), token mean (verl's pg_loss). */
  pgLoss: Sym;
  /** Fraction of tokens where the clipped term is the active one (verl's pg_clipfrac). */
  clipRatio: Sym;
  /** Mean of old − new log-prob over tokens, an estimate of KL(π_old ‖ π) (verl's ppo_kl). */
  ppoKl: Sym;
  /** Mean k3 KL to the reference (verl's kl_loss); 0 without a reference. */
  kl: Sym;
  /** Mean token entropy over the mask (verl's entropy_loss); 0 when no entropy was given. */
  entropy: Sym;
}

export function policyLoss(inputs: PolicyLossInputs, options: PolicyLossOptions): PolicyLossResult {
  const { logprobs, oldLogprobs, advantages } = inputs;
  const { clipLow, clipHigh, klCoef } = options;
  const mean = (x: Sym) => maskedMean(x, inputs.mask, inputs.tokenCount);
  const entropyCoef = options.entropyCoef ?? 0;
  if (!(clipLow >= 0 && clipLow < 1) || !(clipHigh >= 0)) throw new Error(`policy loss: clip range needs 0 <= clipLow < 1 and clipHigh >= 0, got ${clipLow}, ${clipHigh}`);
  if (!(klCoef >= 0)) throw new Error(`policy loss: klCoef must be >= 0, got ${klCoef}`);
  if (!Number.isFinite(entropyCoef)) throw new Error(`policy loss: entropyCoef must be a finite number, got ${entropyCoef}`);
  const [B] = logprobs.shape;
  if (advantages.shape.length === 2 && advantages.shape.join() !== logprobs.shape.join()) {
    throw new Error(`policy loss: per-token advantages are [${advantages.shape.join(', ')}], the log-probs [${logprobs.shape.join(', ')}]`);
  }
  const adv = advantages.shape.length === 2 ? advantages : op.reshape(advantages, [B, 1]);
  const logRatio = op.clip(op.sub(logprobs, oldLogprobs), -20, 20);
  const ratio = op.exp(logRatio);
  const unclipped = op.neg(op.mul(ratio, adv));
  const clipped = op.neg(op.mul(op.clip(ratio, 1 - clipLow, 1 + clipHigh), adv));
  const pgLoss = mean(op.maximum(unclipped, clipped));

  const g = logprobs.graph;
  const { clipRatio, ppoKl } = g.untaped(() => ({
    clipRatio: mean(op.cast(op.greater(clipped, unclipped), logprobs.dtype)),
    ppoKl: mean(op.neg(op.stopGradient(logRatio))),
  }));

  let loss = pgLoss;
  let kl = g.scalar(0, logprobs.dtype);
  if (klCoef !== 0) {
    if (!inputs.refLogprobs) throw new Error('policy loss: klCoef > 0 needs reference log-probs');
    kl = mean(k3Kl(logprobs, inputs.refLogprobs));
    loss = op.add(loss, op.mul(kl, inputs.klCoef ?? klCoef));
  }
  let entropy = g.scalar(0, logprobs.dtype);
  if (entropyCoef !== 0) {
    if (!inputs.entropy) throw new Error('policy loss: entropyCoef != 0 needs the token entropies');
    entropy = mean(inputs.entropy);
    loss = op.sub(loss, op.mul(entropy, entropyCoef));
  } else if (inputs.entropy) {
    entropy = g.untaped(() => mean(op.stopGradient(inputs.entropy!)));
  }
  return { loss, pgLoss, clipRatio, ppoKl, kl, entropy };
}

/**
 * The critic's value head: a linear layer from the final hidden states [B, T, H] to one value per
 * position [B, T], weight [1, H] and bias [1] (its own parameters, not the model's).
 */
export function valueHead(hidden: Sym, weight: Sym, bias: Sym): Sym {
  const [B, T, H] = hidden.shape;
  if (hidden.rank !== 3 || weight.shape.join() !== `1,${H}` || bias.shape.join() !== '1') {
    throw new Error(`value head: hidden states ${hidden} need a [1, ${H}] weight and a [1] bias, got ${weight} and ${bias}`);
  }
  return op.reshape(op.linear(hidden, weight, bias), [B, T]);
}

export interface ValueLossInputs {
  /** The critic's current predictions, [B, T]. */
  vpreds: Sym;
  /** The regression targets (GAE returns), [B, T]. */
  returns: Sym;
  /** The values the returns were computed with (the critic before this update), [B, T]. */
  values: Sym;
  /** 1 for response tokens that count, [B, T]. */
  mask: Sym;
}

export interface ValueLossResult {
  /** ½ · token mean of max((v − R)², (clip(v, V ± c) − R)²) (verl's vf_loss). */
  loss: Sym;
  /** Share of tokens where the clipped term is the larger (verl's vf_clipfrac). */
  clipfrac: Sym;
  /** Mean prediction over the mask (verl's vpred_mean). */
  vpredMean: Sym;
}

/**
 * PPO's clipped value loss, as verl's compute_value_loss (from TRL): a prediction may move at most
 * `cliprange` from the old value before the clipped term, which no longer moves with it, takes
 * over the max; a clipped token therefore passes no gradient when it is the worse.
 */
export function valueLoss(inputs: ValueLossInputs, cliprange: number): ValueLossResult {
  if (!(cliprange > 0)) throw new Error(`value loss: the clip range must be > 0, got ${cliprange}`);
  const { vpreds, returns, values, mask } = inputs;
  // verl's clip_by_value: max(min(v, V + c), V − c); at a tie the prediction keeps the gradient.
  const clipped = op.maximum(op.minimum(vpreds, op.add(values, cliprange)), op.sub(values, cliprange));
  const unclippedLoss = op.pow(op.sub(vpreds, returns), 2);
  const clippedLoss = op.pow(op.sub(clipped, returns), 2);
  // Ties go to the unclipped term (its gradient is the same there).
  const loss = op.mul(maskedMean(op.maximum(unclippedLoss, clippedLoss), mask), 0.5);
  const g = vpreds.graph;
  const { clipfrac, vpredMean } = g.untaped(() => ({
    clipfrac: maskedMean(op.cast(op.greater(clippedLoss, unclippedLoss), vpreds.dtype), mask),
    vpredMean: maskedMean(op.stopGradient(vpreds), mask),
  }));
  return { loss, clipfrac, vpredMean };
}
