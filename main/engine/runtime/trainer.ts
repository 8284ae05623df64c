// The trainer: one ONNX graph per training step (forward, loss, backward, global-norm clipping,
// AdamW), run on the parameter store's flat buffer; or, for an update too big for memory at once,
// one graph per micro-batch (forward, loss, backward, gradient added to a sum) and one applying
// the summed gradient (clipping, AdamW). Parameters and optimizer moments are fed to
// the step and come back as outputs that are fed straight to the next one; on WebGPU they never
// leave the GPU, and only the loss and its diagnostics come back to the host.
//
// A run loop uses it like this:
//   const trainer = await Trainer.create({ config, weights, device, batch: { size: 8, seqLen: 512 },
//     mode: { kind: 'lora', rank: 16, alpha: 32, targetModules: ['q_proj', 'v_proj'] },
//     loss: { kind: 'policy', klCoef: 0.001 } });
//   generate with trainer.weights() (a WeightBinding: call feeds() before every run);
//   const refLogprobs = await trainer.logprobs(batch, { reference: true });
//   const r = await trainer.step({ ...batch, advantages, oldLogprobs, refLogprobs }, learningRate(schedule, trainer.stepCount));
//   await trainer.save(dir, loopState);  …  const { extra } = await trainer.load(dir);
import * as ort from 'onnxruntime-node';
import { grad } from '../graph/autodiff.ts';
import type { DType } from '../graph/dtype.ts';
import { Graph, type Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import type { LlamaConfig } from '../nn/config.ts';
import { MASKED, type WeightSource, causalBias, forward, lmHead, lmHeadWeight } from '../nn/llama.ts';
import { type LoraSpec, checkLoraSpec } from '../nn/lora.ts';
import { POLICY_LOSS_DEFAULTS, type PolicyLossOptions, hiddenTokenLogprobs, policyLoss, sftLoss, tokenEntropy, tokenLogprobs } from '../nn/losses.ts';
import { ADAMW_DEFAULTS, type AdamWHyper, type FlatRange, adamw, checkAdamW, clipCoefficient, optimizerRanges, rangeOfConcatenation, sumOfSquares } from '../optim/adamw.ts';
import { LOSS_SCALE_DEFAULTS, type LossScaleOptions, LossScaler } from '../optim/loss-scale.ts';
import { type CheckpointSource, type TrainerState, loadCheckpoint, saveCheckpoint } from './checkpoints.ts';
import type { CriticState } from './critic.ts';
import { type Device, checkPrecision } from './devices.ts';
import { FLAT_PARAMS_INPUT, type FlatArray, FrozenWeights, ParameterStore, type StoreDType, allocate, disposeTensor } from './parameter-store.ts';
import type { Precision } from './precision.ts';
import { SeededRng } from './rng.ts';
import { CompiledGraph } from './session.ts';
import type { HostWeight, WeightBinding } from './weights.ts';

export type TrainMode = { kind: 'full' } | ({ kind: 'lora' } & LoraSpec);

export type LossSpec =
  | { kind: 'sft' }
  | ({
      kind: 'policy';
      /** Logits are divided by this before the log-softmax (the rollout temperature). */
      temperature?: number;
      /** Advantages per token ([size · seqLen], e.g. OPID's A + w·Δ) instead of one per sequence. */
      tokenAdvantages?: boolean;
    } & Partial<PolicyLossOptions>);

type ResolvedLoss = { kind: 'sft' } | ({ kind: 'policy'; temperature: number; tokenAdvantages?: boolean } & PolicyLossOptions);

export interface BatchShape {
  /** Sequences per step. */
  size: number;
  /** Tokens per sequence. */
  seqLen: number;
  /**
   * Only positions from this one on predict a target that counts: the output layer and the
   * log-softmax run on those alone (over a 150k vocabulary that layer is a quarter of a small
   * model's work), and the log-probs (and entropies) before it are 0. Their loss mask must be 0
   * there. For batches whose prompts are left-padded to end at one position, so the responses
   * start together (TRL's logits_to_keep). Default 0: every position.
   */
  logitsFrom?: number;
}

/** A shape's graphs' cache key. */
function shapeKey(shape: BatchShape): string {
  return `${shape.size}x${shape.seqLen}${shape.logitsFrom ? `@${shape.logitsFrom}` : ''}`;
}

/** Token ids and the positions whose next token is scored, each [size · seqLen], row-major. */
export interface TokenBatch {
  inputIds: Int32Array | readonly number[];
  /** The token each position predicts (inputIds shifted left by one). */
  targets: Int32Array | readonly number[];
  /** 1 for real tokens, 0 for padding (left or right). Default: all 1. */
  attentionMask?: ArrayLike<number>;
  /** RoPE positions. Default: the count of real tokens before each position (Hugging Face's). */
  positionIds?: Int32Array | readonly number[];
}

export interface TrainBatch extends TokenBatch {
  /** 1 where the target counts towards the loss. */
  lossMask: ArrayLike<number>;
  /** Policy loss: one advantage per sequence, [size]. */
  advantages?: ArrayLike<number>;
  /** Policy loss: log-probs of the targets under the policy that sampled them. */
  oldLogprobs?: ArrayLike<number>;
  /** Policy loss with klCoef > 0: log-probs of the targets under the reference model. */
  refLogprobs?: ArrayLike<number>;
}

export interface StepResult {
  /** Updates applied so far, this one included (unchanged when the update was skipped). */
  step: number;
  lr: number;
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** True when the gradient was not finite and the update was skipped (parameters unchanged). */
  skipped: boolean;
  /** Policy loss diagnostics (verl's pg_loss, pg_clipfrac, ppo_kl, kl_loss). */
  pgLoss?: number;
  clipRatio?: number;
  ppoKl?: number;
  kl?: number;
  /** Mean token entropy of the trained tokens under the current policy (only with entropyCoef ≠ 0). */
  entropy?: number;
  /** Mixed precision: the loss scale this step ran at (a skipped step halves it for the next). */
  lossScale?: number;
}

/** Names of the step graph's inputs and outputs (the moments' are prefixes: see momentName). */
export const STEP_IO = {
  m: 'exp_avg',
  v: 'exp_avg_sq',
  lr: 'lr',
  step: 'step',
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  attentionMask: 'attention_mask',
  targets: 'targets',
  lossMask: 'loss_mask',
  advantages: 'advantages',
  oldLogprobs: 'old_logprobs',
  refLogprobs: 'ref_logprobs',
  klCoef: 'kl_coef',
  paramsOut: 'params_out',
  mOut: 'exp_avg_out',
  vOut: 'exp_avg_sq_out',
  loss: 'loss',
  gradNorm: 'grad_norm',
  pgLoss: 'pg_loss',
  clipRatio: 'clip_ratio',
  ppoKl: 'ppo_kl',
  kl: 'kl',
  entropy: 'entropy',
  logprobs: 'logprobs',
  hidden: 'hidden_states',
  tokenCount: 'token_count',
  gradAcc: 'grad_acc',
  gradAccOut: 'grad_acc_out',
  /** Mixed precision: the dynamic loss scale, the gradient the backward pass starts from. */
  lossScale: 'loss_scale',
  /** The flat parameters AdamW updates, fed by the store's feeds (FLAT_PARAMS_INPUT). */
  paramsFlat: FLAT_PARAMS_INPUT,
} as const;

/**
 * The optimizer moments are one input and one output per optimizer range (the pieces AdamW
 * updates, see optimizerRanges): `exp_avg.0`, `exp_avg_out.0`, … in range order.
 */
export function momentName(kind: 'm' | 'v' | 'mOut' | 'vOut', range: number): string {
  return `${STEP_IO[kind]}.${range}`;
}

/** A micro-batch graph's gradient sums, one per optimizer range: `grad_acc.0` in, `grad_acc_out.0` out. */
export function gradName(kind: 'in' | 'out', range: number): string {
  return `${kind === 'in' ? STEP_IO.gradAcc : STEP_IO.gradAccOut}.${range}`;
}

/**
 * The default size of an optimizer range on `device`: on the CPU 2^18 values (1 MiB of float32),
 * so a piece's AdamW passes stay in a core's cache (bench-256-32k: a step took 1,050 ms instead
 * of 1,230; 2^16 and 2^20 were slower); on a GPU one range, the fewest kernel launches.
 */
export function defaultOptimizerRange(device: Device): number {
  return device.name === 'cpu' ? 1 << 18 : Number.POSITIVE_INFINITY;
}

interface BatchSyms {
  inputIds: Sym;
  positionIds: Sym;
  attentionMask: Sym;
  targets: Sym;
}

/** The batch's inputs; the targets only from the shape's logitsFrom on (tokenFeeds cuts them so). */
function declareTokenInputs(g: Graph, shape: BatchShape, dtype: StoreDType): BatchSyms {
  const { size: B, seqLen: T } = shape;
  return {
    inputIds: g.input(STEP_IO.inputIds, [B, T], 'int32'),
    positionIds: g.input(STEP_IO.positionIds, [B, T], 'int32'),
    attentionMask: g.input(STEP_IO.attentionMask, [B, T], dtype),
    targets: g.input(STEP_IO.targets, [B, T - (shape.logitsFrom ?? 0)], 'int32'),
  };
}

/**
 * Per-token log-probs of the targets, [B, T], with causal + padding masking; with `entropy`,
 * also each position's entropy. The training step and the log-prob graph share this, so the
 * log-probs a step trains on are computed exactly like the ones it is compared with.
 */
function targetLogprobs(config: LlamaConfig, w: WeightSource, b: BatchSyms, temperature: number, entropy = false, logitsFrom = 0): { logprobs: Sym; entropy: Sym | null } {
  const [B, T] = b.inputIds.shape;
  if (!(Number.isInteger(logitsFrom) && logitsFrom >= 0 && logitsFrom < T)) throw new Error(`logitsFrom must be an integer in [0, ${T}), got ${logitsFrom}`);
  // The positions that count: all, or those from logitsFrom on (BatchShape.logitsFrom; the
  // targets come cut so), whose values are then put back after zeros for the positions before.
  const window = (x: Sym) => (logitsFrom === 0 ? x : op.slice(x, 1, logitsFrom, T));
  const full = (x: Sym) => (logitsFrom === 0 ? x : op.concat([x.graph.constant(new Array<number>(B * logitsFrom).fill(0), [B, logitsFrom], x.dtype), x], 1));
  const hidden = window(batchHidden(config, w, b));
  if (!entropy) return { logprobs: full(hiddenTokenLogprobs(hidden, lmHeadWeight(config, w), b.targets, temperature)), entropy: null };
  // The entropy needs every position's full distribution, so the logits are built once for both.
  const logits = lmHead(config, w, hidden);
  return { logprobs: full(tokenLogprobs(logits, b.targets, temperature)), entropy: full(tokenEntropy(logits, temperature)) };
}

/** The last hidden states [B, T, H] of the batch (causal + padding masking). */
function batchHidden(config: LlamaConfig, w: WeightSource, b: BatchSyms): Sym {
  const g = b.inputIds.graph;
  const [B, T] = b.inputIds.shape;
  const dtype = b.attentionMask.dtype;
  // Keys that are padding get MASKED for every query, on top of the causal mask.
  const padding = op.reshape(op.mul(op.sub(1, b.attentionMask), MASKED), [B, 1, 1, 1, T]);
  const bias = op.add(causalBias(g, T, 0, dtype), padding);
  return forward(config, w, { inputIds: b.inputIds, positionIds: b.positionIds, attentionBias: bias }).hidden;
}

export interface StepGraphSpec {
  batch: BatchShape;
  loss: ResolvedLoss;
  optimizer: AdamWHyper;
  /** How AdamW cuts the flat buffer (optimizerRanges); default one range, the whole buffer. */
  ranges?: readonly FlatRange[];
}

/** What a step graph reads of a parameter store: its model, float type, flat size and the training view. */
export type StepGraphParameters = Pick<ParameterStore, 'config' | 'dtype' | 'size' | 'trainingSource' | 'precision'>;

/**
 * The gradient as the optimizer's ranges of the flat buffer, in the master weights' type: under
 * mixed precision the graphs read the trainable weights as float16 copies (the store's views),
 * so their gradients are float16, cut into ranges as they are and cast to float32 a range at a
 * time (the same values as casting each weight's: one node per range, not per weight) before the
 * norm, the sums and AdamW. Unchanged in fp32.
 */
function masterGradientRanges(g: Graph, grads: Sym[], ranges: readonly FlatRange[], store: Pick<ParameterStore, 'dtype'>): Sym[] {
  return g.untaped(() => flatRanges(grads, ranges).map((x) => op.cast(x, store.dtype)));
}

/**
 * Under mixed precision the backward pass starts from the loss scale (an input) instead of 1, so
 * every gradient is scaled by it (see optim/loss-scale.ts); null in fp32.
 */
function declareLossScale(g: Graph, store: Pick<ParameterStore, 'dtype' | 'precision'>): Sym | null {
  return store.precision === 'mixed' ? g.input(STEP_IO.lossScale, [], store.dtype) : null;
}

/**
 * A batch's loss on `store`'s trainable weights, declared in `g`: the batch and loss inputs, the
 * loss, the trainable parameters (what the gradient is taken with respect to) and the loss's
 * diagnostics. With `tokenCount` every mean divides by that input (a micro-batch's share of the
 * whole update, see maskedMean) instead of this batch's own mask count.
 */
function batchLoss(g: Graph, store: StepGraphParameters, shape: BatchShape, spec: ResolvedLoss, tokenCount: Sym | null): { loss: Sym; params: Sym[]; diagnostics: [string, Sym][] } {
  const { size: B, seqLen: T } = shape;
  const dtype = store.dtype;
  const batch = declareTokenInputs(g, shape, dtype);
  const lossMask = g.input(STEP_IO.lossMask, [B, T], dtype);
  const { source, params } = store.trainingSource(g);
  const temperature = spec.kind === 'policy' ? spec.temperature : 1;
  // The policy loss with an entropy term also needs each position's full distribution.
  const withEntropy = spec.kind === 'policy' && (spec.entropyCoef ?? 0) !== 0;
  const { logprobs, entropy } = targetLogprobs(store.config, source, batch, temperature, withEntropy, shape.logitsFrom);

  const diagnostics: [string, Sym][] = [];
  if (spec.kind === 'sft') return { loss: sftLoss(logprobs, lossMask, tokenCount).loss, params, diagnostics };
  const advantages = g.input(STEP_IO.advantages, spec.tokenAdvantages === true ? [B, T] : [B], dtype);
  const oldLogprobs = g.input(STEP_IO.oldLogprobs, [B, T], dtype);
  const refLogprobs = spec.klCoef > 0 ? g.input(STEP_IO.refLogprobs, [B, T], dtype) : null;
  // The coefficient is an input, so an adaptive KL controller can change it every step.
  const klCoef = spec.klCoef > 0 ? g.input(STEP_IO.klCoef, [], dtype) : null;
  const r = policyLoss({ logprobs, oldLogprobs, advantages, mask: lossMask, refLogprobs, entropy, klCoef, tokenCount }, spec);
  diagnostics.push([STEP_IO.pgLoss, r.pgLoss], [STEP_IO.clipRatio, r.clipRatio], [STEP_IO.ppoKl, r.ppoKl], [STEP_IO.kl, r.kl]);
  if (withEntropy) diagnostics.push([STEP_IO.entropy, r.entropy]);
  return { loss: r.loss, params, diagnostics };
}

/** The per-weight gradients as the optimizer's ranges of the flat buffer. */
function flatRanges(xs: readonly Sym[], ranges: readonly FlatRange[]): Sym[] {
  const flat = xs.map((x) => op.reshape(x, [x.size]));
  return ranges.map((r) => rangeOfConcatenation(flat, r));
}

/**
 * Global-norm clipping and AdamW over `ranges` of the parameters, with the moments (inputs, one
 * pair per range), lr and step as inputs; outputs the updated flat parameters, the moments and
 * grad_norm.
 */
function declareUpdate(g: Graph, params: Sym[], grads: Sym[], ranges: readonly FlatRange[], optimizer: AdamWHyper, lossScale: Sym | null = null): void {
  const dtype = params[0].dtype;
  const m = ranges.map((r, i) => g.input(momentName('m', i), [r.end - r.start], dtype));
  const v = ranges.map((r, i) => g.input(momentName('v', i), [r.end - r.start], dtype));
  const lr = g.input(STEP_IO.lr, [], dtype);
  const step = g.input(STEP_IO.step, [], dtype);
  // Clipping, and under mixed precision the loss scale's division, fold into AdamW's scalars: the
  // norm is that of the unscaled gradient (Σ g² / scale², in float32).
  const sumSq = sumOfSquares(grads);
  const norm = clipCoefficient(lossScale ? g.untaped(() => op.div(sumSq, op.mul(lossScale, lossScale))) : sumSq, optimizer.maxGradNorm);
  const unscale = lossScale ? g.untaped(() => op.div(1, lossScale)) : null;
  const gradScale = unscale && norm.coef ? g.untaped(() => op.mul(norm.coef!, unscale)) : (unscale ?? norm.coef);
  const next = g.untaped(() => adamw({ params, grads, gradScale, m, v, lr, step }, optimizer));
  // A NaN or infinite gradient must leave everything as it was (verl skips such updates too).
  // The host does that by keeping the inputs when grad_norm is not finite, which costs nothing;
  // a Where here would be three more passes over every parameter each step.
  g.output(STEP_IO.paramsOut, g.untaped(() => op.concat(next.params, 0)));
  next.m.forEach((x, i) => g.output(momentName('mOut', i), x));
  next.v.forEach((x, i) => g.output(momentName('vOut', i), x));
  g.output(STEP_IO.gradNorm, norm.norm);
}

/**
 * The training step graph for `store`'s parameters. Inputs: every weight by name and the flat
 * buffer they view (`params_flat`, both from store.feeds), the moments (one pair per optimizer
 * range), lr, step (1-based, float) and the batch. Outputs: the updated flat parameters, the
 * moments, loss, grad_norm and the loss's diagnostics.
 */
export function buildTrainStepGraph(store: StepGraphParameters, spec: StepGraphSpec): Graph {
  const g = new Graph('train_step');
  const ranges = spec.ranges ?? [{ start: 0, end: store.size }];
  const { loss, params, diagnostics } = batchLoss(g, store, spec.batch, spec.loss, null);
  const lossScale = declareLossScale(g, store);
  const grads = masterGradientRanges(g, grad(loss, params, lossScale ?? undefined), ranges, store);
  // AdamW reads the parameters from the flat buffer the per-weight inputs view, so they are not
  // flattened and concatenated again (a node per weight fewer). The norm is taken of the ranges.
  const flat = g.input(STEP_IO.paramsFlat, [store.size], store.dtype);
  const flatParams = g.untaped(() => ranges.map((r) => op.slice(flat, 0, r.start, r.end)));
  declareUpdate(g, flatParams, grads, ranges, spec.optimizer, lossScale);
  g.output(STEP_IO.loss, loss);
  for (const [name, s] of diagnostics) g.output(name, s);
  return g;
}

/**
 * One micro-batch of an update trained in several (gradient accumulation): the micro-batch's
 * loss with every mean over the whole update's `token_count`, and its gradient, cut into the
 * optimizer's ranges, added to the sums so far (`grad_acc.i`, absent for the first micro-batch)
 * as `grad_acc_out.i`. The loss and diagnostics it outputs are its shares of the update's.
 */
export function buildMicroBatchGraph(store: StepGraphParameters, spec: Omit<StepGraphSpec, 'optimizer'> & { first: boolean }): Graph {
  const g = new Graph(spec.first ? 'micro_batch_first' : 'micro_batch');
  const ranges = spec.ranges ?? [{ start: 0, end: store.size }];
  const tokenCount = g.input(STEP_IO.tokenCount, [], store.dtype);
  const { loss, params, diagnostics } = batchLoss(g, store, spec.batch, spec.loss, tokenCount);
  const grads = masterGradientRanges(g, grad(loss, params, declareLossScale(g, store) ?? undefined), ranges, store);
  g.untaped(() =>
    grads.forEach((part, i) => {
      const sum = spec.first ? part : op.add(g.input(gradName('in', i), [part.size], store.dtype), part);
      g.output(gradName('out', i), sum);
    }),
  );
  g.output(STEP_IO.loss, loss);
  for (const [name, s] of diagnostics) g.output(name, s);
  return g;
}

/** The update of an accumulated gradient: the flat parameters and `grad_acc.i` in, as the step graph's outputs. */
export function buildApplyGradientGraph(store: Pick<ParameterStore, 'dtype' | 'size' | 'precision'>, spec: Pick<StepGraphSpec, 'optimizer' | 'ranges'>): Graph {
  const g = new Graph('apply_gradient');
  const ranges = spec.ranges ?? [{ start: 0, end: store.size }];
  const flat = g.input(STEP_IO.paramsFlat, [store.size], store.dtype);
  const params = ranges.map((r) => op.slice(flat, 0, r.start, r.end));
  const grads = ranges.map((r, i) => g.input(gradName('in', i), [r.end - r.start], store.dtype));
  declareUpdate(g, params, grads, ranges, spec.optimizer, declareLossScale(g, store));
  return g;
}

/**
 * A forward-only graph: log-probs [B, T] of the targets under `weights`, the model computing in
 * `compute` (float16 under mixed precision, as the training step; the log-probs are float32).
 */
export function buildLogprobGraph(config: LlamaConfig, weights: WeightBinding, batch: BatchShape, temperature: number, dtype: StoreDType, compute: DType = dtype): Graph {
  const g = new Graph('logprobs');
  g.recording = false;
  const b = declareTokenInputs(g, batch, dtype);
  g.output(STEP_IO.logprobs, targetLogprobs(config, weights.bind(g, compute), b, temperature, false, batch.logitsFrom).logprobs);
  return g;
}

/** A forward-only graph: the final hidden states [B, T, H] (after the last norm) under `weights`, as `dtype` whatever the model computes in. */
export function buildHiddenGraph(config: LlamaConfig, weights: WeightBinding, batch: BatchShape, dtype: StoreDType, compute: DType = dtype): Graph {
  const g = new Graph('hidden_states');
  g.recording = false;
  const b = declareTokenInputs(g, batch, dtype);
  g.output(STEP_IO.hidden, op.cast(batchHidden(config, weights.bind(g, compute), b), dtype));
  return g;
}

// ---------------------------------------------------------------------------------------------
// Host-side batch helpers

function floats(dtype: StoreDType, values: ArrayLike<number>): FlatArray {
  if (dtype === 'float64') return values instanceof Float64Array ? values : Float64Array.from(values);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

function ints(values: Int32Array | readonly number[]): Int32Array {
  return values instanceof Int32Array ? values : Int32Array.from(values);
}

/** Hugging Face's default positions: the number of real tokens before each one (0 for padding). */
export function positionsFromMask(mask: ArrayLike<number>, batch: BatchShape): Int32Array {
  const out = new Int32Array(batch.size * batch.seqLen);
  for (let b = 0; b < batch.size; b++) {
    let seen = 0;
    for (let t = 0; t < batch.seqLen; t++) {
      const i = b * batch.seqLen + t;
      out[i] = Math.max(0, seen + (mask[i] ? 1 : 0) - 1);
      if (mask[i]) seen++;
    }
  }
  return out;
}

function tokenFeeds(batch: TokenBatch, shape: BatchShape, dtype: StoreDType): Record<string, ort.Tensor> {
  const n = shape.size * shape.seqLen;
  const dims = [shape.size, shape.seqLen];
  const need = (what: string, a: ArrayLike<number> | undefined) => {
    if (a && a.length !== n) throw new Error(`batch.${what} has ${a.length} values; a ${shape.size}×${shape.seqLen} batch needs ${n}`);
  };
  need('inputIds', batch.inputIds);
  need('targets', batch.targets);
  need('attentionMask', batch.attentionMask);
  need('positionIds', batch.positionIds);
  const mask = batch.attentionMask ?? new Float32Array(n).fill(1);
  const positions = batch.positionIds ? ints(batch.positionIds) : positionsFromMask(mask, shape);
  // Only the targets from logitsFrom on, each row's (declareTokenInputs).
  const from = shape.logitsFrom ?? 0;
  const width = shape.seqLen - from;
  let targets = ints(batch.targets);
  if (from > 0) {
    const all = targets;
    targets = new Int32Array(shape.size * width);
    for (let b = 0; b < shape.size; b++) targets.set(all.subarray(b * shape.seqLen + from, (b + 1) * shape.seqLen), b * width);
  }
  return {
    [STEP_IO.inputIds]: new ort.Tensor('int32', ints(batch.inputIds), dims),
    [STEP_IO.targets]: new ort.Tensor('int32', targets, [shape.size, width]),
    [STEP_IO.positionIds]: new ort.Tensor('int32', positions, dims),
    [STEP_IO.attentionMask]: new ort.Tensor(dtype, floats(dtype, mask), dims),
  };
}

export interface SequenceExample {
  tokens: readonly number[];
  /** Index of the first token whose prediction counts towards the loss (default 1: all). */
  lossStart?: number;
  /**
   * Per token, 1 where its prediction counts (a multi-turn conversation's assistant turns);
   * replaces lossStart. The first token is never predicted.
   */
  trainTokens?: ArrayLike<number>;
  /** Per token, the advantage of its prediction (a loss with tokenAdvantages). */
  tokenAdvantages?: ArrayLike<number>;
  /** Padding positions before the sequence (left padding; default 0): its prompt then ends where the others' do (BatchShape.logitsFrom). */
  leadingPad?: number;
}

/**
 * Causal-LM batch from token sequences, padded on the right (and on the left by each sequence's
 * leadingPad): position lead + t reads tokens[t] and predicts tokens[t + 1]; the loss counts
 * predictions of tokens[lossStart..]. A sequence and its leading padding may hold up to
 * seqLen + 1 tokens; missing rows are all padding.
 */
export function makeCausalBatch(examples: readonly SequenceExample[], shape: BatchShape, padId = 0): TrainBatch & { attentionMask: Float32Array; tokenAdvantages?: Float32Array } {
  if (examples.length > shape.size) throw new Error(`makeCausalBatch: ${examples.length} sequences do not fit a batch of ${shape.size}`);
  const n = shape.size * shape.seqLen;
  const inputIds = new Int32Array(n).fill(padId);
  const targets = new Int32Array(n).fill(padId);
  const attentionMask = new Float32Array(n);
  const lossMask = new Float32Array(n);
  const withAdvantages = examples.some((ex) => ex.tokenAdvantages);
  const tokenAdvantages = withAdvantages ? new Float32Array(n) : undefined;
  examples.forEach((ex, b) => {
    const L = ex.tokens.length;
    for (const [name, values] of [['trainTokens', ex.trainTokens], ['tokenAdvantages', ex.tokenAdvantages]] as const) {
      if (values && values.length !== L) throw new Error(`makeCausalBatch: sequence ${b} has ${L} tokens but ${values.length} ${name}`);
    }
    if (L < 2) throw new Error(`makeCausalBatch: sequence ${b} has ${L} token(s); it needs at least 2 to predict anything`);
    const lead = ex.leadingPad ?? 0;
    if (!(Number.isInteger(lead) && lead >= 0)) throw new Error(`makeCausalBatch: sequence ${b} has leadingPad ${lead}; it must be a whole number >= 0`);
    if (lead + L > shape.seqLen + 1) throw new Error(`makeCausalBatch: sequence ${b} has ${L} tokens${lead ? ` after ${lead} of padding` : ''}; seqLen ${shape.seqLen} fits at most ${shape.seqLen + 1}`);
    const start = ex.lossStart ?? 1;
    for (let t = 0; t < L - 1; t++) {
      const i = b * shape.seqLen + lead + t;
      inputIds[i] = ex.tokens[t];
      targets[i] = ex.tokens[t + 1];
      attentionMask[i] = 1;
      lossMask[i] = ex.trainTokens ? (ex.trainTokens[t + 1] ? 1 : 0) : t + 1 >= start ? 1 : 0;
      if (tokenAdvantages && ex.tokenAdvantages) tokenAdvantages[i] = ex.tokenAdvantages[t + 1];
    }
  });
  return { inputIds, targets, attentionMask, lossMask, ...(tokenAdvantages ? { tokenAdvantages } : {}) };
}

// ---------------------------------------------------------------------------------------------

export interface TrainerOptions {
  config: LlamaConfig;
  /** The model's weights by Hugging Face name (e.g. HfModel.weights); never modified. */
  weights: ReadonlyMap<string, HostWeight>;
  device: Device;
  mode: TrainMode;
  optimizer?: Partial<AdamWHyper>;
  loss: LossSpec;
  batch: BatchShape;
  /** Seeds the trainer's generator (LoRA initialisation; saved in checkpoints). */
  seed?: number;
  /** float64 is for gradient checks on the CPU. */
  dtype?: StoreDType;
  /**
   * Keep the initial weights as the KL reference under full fine-tuning (under LoRA the
   * reference is the base model, always available). Default: when the loss has klCoef > 0.
   */
  keepReference?: boolean;
  /**
   * The most values AdamW updates as one piece (see optimizerRanges); default by device
   * (defaultOptimizerRange). Speed depends on it, and the result only in its last bits (the
   * order the gradient norm's squares are summed in, see sumOfSquares); checkpoints are the same.
   */
  optimizerRangeSize?: number;
  /** Where the base model came from: its folder (config and tokenizer files are copied into checkpoints) and its name for PEFT. */
  source?: CheckpointSource;
  /**
   * mixed: frozen weights in float16, float16 activations and products, float32 master weights,
   * moments, norms' statistics, softmaxes and losses, with dynamic loss scaling; refused on a
   * device without float16 kernels (checkPrecision). Default fp32.
   */
  precision?: Precision;
  /** Mixed precision's loss scaling (default LOSS_SCALE_DEFAULTS, PyTorch's GradScaler's). */
  lossScale?: LossScaleOptions;
  /**
   * Under LoRA, generate from weights with the adapters merged in (ParameterStore's
   * mergeAdapters: fewer nodes a decode step, one more copy of the adapted weights). Default off;
   * the run loops turn it on for a GPU where their memory plan has room (adaptersMerged in rl/memory.ts).
   */
  mergeAdapters?: boolean;
}

function resolveLoss(spec: LossSpec): ResolvedLoss {
  if (spec.kind === 'sft') return { kind: 'sft' };
  const temperature = spec.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`policy loss temperature must be > 0, got ${temperature}`);
  return {
    kind: 'policy',
    temperature,
    clipLow: spec.clipLow ?? POLICY_LOSS_DEFAULTS.clipLow,
    clipHigh: spec.clipHigh ?? POLICY_LOSS_DEFAULTS.clipHigh,
    klCoef: spec.klCoef ?? POLICY_LOSS_DEFAULTS.klCoef,
    entropyCoef: spec.entropyCoef ?? POLICY_LOSS_DEFAULTS.entropyCoef,
    tokenAdvantages: spec.tokenAdvantages ?? false,
  };
}

/** The moments on the device, cut into `ranges`: the saved flat ones, or zeros. */
async function uploadMoments(store: ParameterStore, ranges: readonly FlatRange[], saved: { m: Float32Array; v: Float32Array } | null): Promise<[ort.Tensor[], ort.Tensor[]]> {
  const piece = (flat: Float32Array | null, r: FlatRange): FlatArray => {
    const n = r.end - r.start;
    if (store.dtype === 'float64') return flat ? Float64Array.from(flat.subarray(r.start, r.end)) : new Float64Array(n);
    return flat ? flat.slice(r.start, r.end) : new Float32Array(n);
  };
  const tensors = await store.transfer.upload([
    ...ranges.map((r) => ({ data: piece(saved?.m ?? null, r), shape: [r.end - r.start] })),
    ...ranges.map((r) => ({ data: piece(saved?.v ?? null, r), shape: [r.end - r.start] })),
  ]);
  return [tensors.slice(0, ranges.length), tensors.slice(ranges.length)];
}

function compileStepGraph(store: ParameterStore, spec: StepGraphSpec & { ranges: readonly FlatRange[] }): Promise<CompiledGraph> {
  return CompiledGraph.create(buildTrainStepGraph(store, spec), store.device, { keepOnDevice: updateOutputs(spec.ranges) });
}

/** Step graphs of other shapes a trainer keeps compiled; the least recently used is released beyond this. */
const MAX_SHAPED_STEP_GRAPHS = 4;

/** The graph `key` names in `cache`, compiled by `build` when absent; the least recently used beyond MAX_SHAPED_STEP_GRAPHS is released. */
function cachedGraph(cache: Map<string, Promise<CompiledGraph>>, key: string, build: () => Promise<CompiledGraph>): Promise<CompiledGraph> {
  let p = cache.get(key);
  if (p) {
    // Map order is insertion order: re-insert to mark as most recently used.
    cache.delete(key);
  } else {
    p = build();
    p.catch(() => cache.delete(key));
  }
  cache.set(key, p);
  while (cache.size > MAX_SHAPED_STEP_GRAPHS) {
    const [oldest, old] = cache.entries().next().value as [string, Promise<CompiledGraph>];
    cache.delete(oldest);
    void old.then((c) => c.release(), () => undefined);
  }
  return p;
}

/** An update's outputs that stay on the device: the parameters and the moments. */
function updateOutputs(ranges: readonly FlatRange[]): string[] {
  return [STEP_IO.paramsOut, ...ranges.flatMap((_, i) => [momentName('mOut', i), momentName('vOut', i)])];
}

/**
 * Rows [from, from + rows) of a batch of `shape`, as a batch of `rows` sequences: rows past the
 * batch's end are padding that trains nothing (loss mask 0, as makeCausalBatch's missing rows).
 */
export function microBatchOf(batch: TrainBatch, shape: BatchShape, from: number, rows: number, tokenAdvantages: boolean): TrainBatch;
export function microBatchOf(batch: TokenBatch, shape: BatchShape, from: number, rows: number, tokenAdvantages: boolean): TokenBatch;
export function microBatchOf(batch: TokenBatch & Partial<TrainBatch>, shape: BatchShape, from: number, rows: number, tokenAdvantages: boolean): TokenBatch & Partial<TrainBatch> {
  const T = shape.seqLen;
  const take = Math.min(rows, shape.size - from);
  const perToken = <A extends ArrayLike<number>>(a: A | undefined, fill = 0): number[] | undefined => {
    if (!a) return undefined;
    const out = new Array<number>(rows * T).fill(fill);
    for (let i = 0; i < take * T; i++) out[i] = a[from * T + i];
    return out;
  };
  const advantages = !batch.advantages ? undefined : tokenAdvantages ? perToken(batch.advantages) : Array.from({ length: rows }, (_, r) => (r < take ? batch.advantages![from + r] : 0));
  return {
    inputIds: perToken(batch.inputIds)!,
    targets: perToken(batch.targets)!,
    ...(batch.lossMask ? { lossMask: perToken(batch.lossMask) } : {}),
    ...(batch.attentionMask ? { attentionMask: perToken(batch.attentionMask) } : {}),
    // Positions of the padding rows: any valid index; their tokens are never trained.
    ...(batch.positionIds ? { positionIds: perToken(batch.positionIds) } : {}),
    ...(advantages ? { advantages } : {}),
    ...(batch.oldLogprobs ? { oldLogprobs: perToken(batch.oldLogprobs) } : {}),
    ...(batch.refLogprobs ? { refLogprobs: perToken(batch.refLogprobs) } : {}),
  };
}

export class Trainer {
  private stepsDone = 0;
  private readonly logprobGraphs = new Map<string, Promise<CompiledGraph>>();
  /** Step graphs of other batch shapes (step's `shape`), least recently used first. */
  private readonly shapedStepGraphs = new Map<string, Promise<CompiledGraph>>();
  /** Micro-batch graphs of an update made in micro-batches (step's `microBatch`), and the graph applying their sum. */
  private readonly microGraphs = new Map<string, Promise<CompiledGraph>>();
  private applyGraph: Promise<CompiledGraph> | null = null;
  private hiddenGraph: Promise<CompiledGraph> | null = null;
  private reference: Promise<FrozenWeights> | null = null;
  /** Mixed precision's dynamic loss scale; null in fp32. */
  private readonly scaler: LossScaler | null;
  private skipped = 0;

  private constructor(
    /** The options the trainer was created with, less the weights (which it does not retain). */
    readonly options: Omit<TrainerOptions, 'weights'>,
    readonly store: ParameterStore,
    readonly loss: ResolvedLoss,
    readonly optimizer: AdamWHyper,
    readonly rng: SeededRng,
    private readonly stepGraph: CompiledGraph,
    /** The pieces AdamW updates; the moments are one tensor per range. */
    private readonly ranges: readonly FlatRange[],
    private m: ort.Tensor[],
    private v: ort.Tensor[],
    private readonly initialWeights: ReadonlyMap<string, HostWeight> | null,
  ) {
    this.scaler = store.precision === 'mixed' ? new LossScaler(options.lossScale ?? LOSS_SCALE_DEFAULTS) : null;
  }

  static async create(options: TrainerOptions): Promise<Trainer> {
    const { config, device, mode, batch } = options;
    if (!Number.isInteger(batch.size) || batch.size <= 0 || !Number.isInteger(batch.seqLen) || batch.seqLen <= 0) {
      throw new Error(`batch shape must be positive integers, got ${batch.size}×${batch.seqLen}`);
    }
    if (options.optimizerRangeSize !== undefined && !(options.optimizerRangeSize >= 1)) {
      throw new Error(`optimizerRangeSize must be a number >= 1, got ${options.optimizerRangeSize}`);
    }
    const optimizer: AdamWHyper = { ...ADAMW_DEFAULTS, ...options.optimizer };
    checkAdamW(optimizer);
    const loss = resolveLoss(options.loss);
    const lora = mode.kind === 'lora' ? { rank: mode.rank, alpha: mode.alpha, targetModules: mode.targetModules } : null;
    if (lora) checkLoraSpec(lora);
    const rng = new SeededRng(options.seed ?? 0);
    const dtype = options.dtype ?? 'float32';
    const precision = options.precision ?? 'fp32';
    if (options.lossScale) new LossScaler(options.lossScale);
    await checkPrecision(device, precision);
    const store = await ParameterStore.create({ config, weights: options.weights, device, lora, rng, dtype, precision, mergeAdapters: options.mergeAdapters });
    try {
      const ranges = optimizerRanges(
        store.layout.map((e) => e.size),
        options.optimizerRangeSize ?? defaultOptimizerRange(device),
      );
      const stepGraph = await compileStepGraph(store, { batch, loss, optimizer, ranges });
      const [m, v] = await uploadMoments(store, ranges, null);
      const keepReference = options.keepReference ?? (loss.kind === 'policy' && loss.klCoef > 0);
      const reference = mode.kind === 'full' && keepReference ? options.weights : null;
      // Under full fine-tuning the store holds its own copy, so the caller's weights are only
      // kept when they serve as the reference; a caller that drops them frees that memory.
      const { weights: _weights, ...settings } = options;
      return new Trainer(settings, store, loss, optimizer, rng, stepGraph, ranges, m, v, reference);
    } catch (e) {
      await store.release();
      throw e;
    }
  }

  get config(): LlamaConfig {
    return this.options.config;
  }

  get batchShape(): BatchShape {
    return this.options.batch;
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.stepsDone;
  }

  /** Updates skipped since the trainer was created because their gradient was not finite (under mixed precision: overflowed float16). */
  get skippedUpdates(): number {
    return this.skipped;
  }

  /** The loss scale the next update runs at (mixed precision); null in fp32. */
  get lossScale(): number | null {
    return this.scaler?.scale ?? null;
  }

  get mode(): TrainMode {
    return this.options.mode;
  }

  /**
   * One update on `batch` at learning rate `lr` (from a schedule: learningRate(spec, trainer.stepCount)).
   * `options.klCoef` replaces the policy loss's KL coefficient for this step (an adaptive KL
   * controller's value); the loss must have been created with klCoef > 0. `options.shape` runs
   * the step on a batch of another shape than the trainer's (a loop whose sequences vary in
   * length pads each batch to its longest): its graph is compiled at first use and kept.
   */
  /**
   * One update on `batch` (of `options.shape`, default the trainer's). With `microBatch` smaller
   * than the batch, the update is made in micro-batches of that many sequences, their gradients
   * summed before one clip and AdamW step (gradient accumulation, verl's
   * ppo_micro_batch_size_per_gpu): the same update, within rounding, for a fraction of the
   * activation memory (a short last micro-batch is padded with untrained rows).
   */
  async step(batch: TrainBatch, lr: number, options: { klCoef?: number; shape?: BatchShape; microBatch?: number } = {}): Promise<StepResult> {
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`learning rate must be a finite number >= 0, got ${lr}`);
    const compiledKl = this.loss.kind === 'policy' ? this.loss.klCoef : 0;
    if (options.klCoef !== undefined) {
      if (!(compiledKl > 0)) throw new Error('a per-step klCoef needs a policy loss created with klCoef > 0 (the KL term is compiled out otherwise)');
      if (!(Number.isFinite(options.klCoef) && options.klCoef >= 0)) throw new Error(`klCoef must be a finite number >= 0, got ${options.klCoef}`);
    }
    const shape = options.shape ?? this.options.batch;
    const micro = options.microBatch;
    if (micro !== undefined && !(Number.isInteger(micro) && micro > 0)) throw new Error(`microBatch must be a whole number > 0, got ${micro}`);
    const klCoef = options.klCoef ?? compiledKl;
    // The whole batch is checked before any micro-batch runs.
    const feeds = this.batchFeeds(batch, shape, klCoef);
    const out = micro !== undefined && micro < shape.size ? await this.accumulatedUpdate(batch, shape, micro, lr, klCoef) : await this.fusedUpdate(feeds, shape, lr);
    return this.adopt(out, lr);
  }

  /** The step graph's feeds of a batch: tokens, loss mask, and the policy loss's inputs; checked against `shape`. */
  private batchFeeds(batch: TrainBatch, shape: BatchShape, klCoef: number): Record<string, ort.Tensor> {
    const dtype = this.store.dtype;
    const n = shape.size * shape.seqLen;
    const feeds = tokenFeeds(batch, shape, dtype);
    if (batch.lossMask.length !== n) throw new Error(`batch.lossMask has ${batch.lossMask.length} values; the batch needs ${n}`);
    // Positions before logitsFrom have no log-prob to train: a loss there would be silently dropped.
    for (let b = 0; shape.logitsFrom && b < shape.size; b++) {
      for (let t = 0; t < shape.logitsFrom; t++) {
        if (batch.lossMask[b * shape.seqLen + t] !== 0) throw new Error(`batch.lossMask counts position ${t} of sequence ${b}, before the shape's logitsFrom (${shape.logitsFrom})`);
      }
    }
    feeds[STEP_IO.lossMask] = new ort.Tensor(dtype, floats(dtype, batch.lossMask), [shape.size, shape.seqLen]);
    if (this.loss.kind !== 'policy') return feeds;
    const perToken = (name: 'oldLogprobs' | 'refLogprobs', input: string, hint: string) => {
      const a = batch[name];
      if (!a) throw new Error(`the policy loss needs batch.${name} (${hint})`);
      if (a.length !== n) throw new Error(`batch.${name} has ${a.length} values; the batch needs ${n}`);
      feeds[input] = new ort.Tensor(dtype, floats(dtype, a), [shape.size, shape.seqLen]);
    };
    const perTokenAdvantages = this.loss.tokenAdvantages === true;
    const want = perTokenAdvantages ? n : shape.size;
    if (!batch.advantages || batch.advantages.length !== want) {
      throw new Error(
        perTokenAdvantages
          ? `the policy loss (tokenAdvantages) needs batch.advantages with one value per position (${n})`
          : `the policy loss needs batch.advantages with one value per sequence (${shape.size})`,
      );
    }
    feeds[STEP_IO.advantages] = new ort.Tensor(dtype, floats(dtype, batch.advantages), perTokenAdvantages ? [shape.size, shape.seqLen] : [shape.size]);
    perToken('oldLogprobs', STEP_IO.oldLogprobs, 'the sampling policy’s log-probs, from generation or trainer.logprobs()');
    if (this.loss.klCoef > 0) {
      perToken('refLogprobs', STEP_IO.refLogprobs, 'trainer.logprobs(batch, { reference: true })');
      feeds[STEP_IO.klCoef] = this.scalar(klCoef);
    }
    return feeds;
  }

  private scalar(x: number): ort.Tensor {
    const dtype = this.store.dtype;
    return new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.of(x) : Float32Array.of(x), []);
  }

  /** The optimizer's inputs: the moments, lr and the 1-based step (and the loss scale under mixed precision). */
  private updateFeeds(lr: number): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = { [STEP_IO.lr]: this.scalar(lr), [STEP_IO.step]: this.scalar(this.stepsDone + 1) };
    if (this.scaler) feeds[STEP_IO.lossScale] = this.scalar(this.scaler.scale);
    this.ranges.forEach((_, i) => {
      feeds[momentName('m', i)] = this.m[i];
      feeds[momentName('v', i)] = this.v[i];
    });
    return feeds;
  }

  /** The whole update in one graph: forward, backward, clipping and AdamW. */
  private async fusedUpdate(feeds: Record<string, ort.Tensor>, shape: BatchShape, lr: number): Promise<Record<string, ort.Tensor>> {
    const stepGraph = await this.stepGraphFor(shape);
    Object.assign(feeds, this.store.feeds(stepGraph.inputNames), this.updateFeeds(lr));
    return stepGraph.run(feeds);
  }

  /**
   * The update in micro-batches of `micro` sequences: each one's gradient (its loss over the whole
   * update's token count) added to the sums on the device, then one clip and AdamW step on them.
   * The loss and diagnostics are the micro-batches' shares, summed.
   */
  private async accumulatedUpdate(batch: TrainBatch, shape: BatchShape, micro: number, lr: number, klCoef: number): Promise<Record<string, ort.Tensor>> {
    const microShape = { size: micro, seqLen: shape.seqLen, logitsFrom: shape.logitsFrom };
    let tokens = 0;
    for (let i = 0; i < batch.lossMask.length; i++) tokens += batch.lossMask[i] ? 1 : 0;
    const sums: Record<string, number> = {};
    let acc: ort.Tensor[] | null = null;
    for (let from = 0; from < shape.size; from += micro) {
      const graph = await this.microGraphFor(microShape, acc === null);
      const feeds = this.batchFeeds(microBatchOf(batch, shape, from, micro, this.loss.kind === 'policy' && this.loss.tokenAdvantages === true), microShape, klCoef);
      Object.assign(feeds, this.store.feeds(graph.inputNames), { [STEP_IO.tokenCount]: this.scalar(tokens) });
      if (this.scaler) feeds[STEP_IO.lossScale] = this.scalar(this.scaler.scale);
      acc?.forEach((t, i) => (feeds[gradName('in', i)] = t));
      const out = await graph.run(feeds);
      acc?.forEach(disposeTensor);
      acc = this.ranges.map((_, i) => out[gradName('out', i)]);
      for (const name of graph.outputNames) if (!name.startsWith(STEP_IO.gradAccOut)) sums[name] = (sums[name] ?? 0) + Number(out[name].data[0]);
    }
    const apply = await (this.applyGraph ??= CompiledGraph.create(buildApplyGradientGraph(this.store, { optimizer: this.optimizer, ranges: this.ranges }), this.store.device, { keepOnDevice: updateOutputs(this.ranges) }));
    const feeds: Record<string, ort.Tensor> = { [STEP_IO.paramsFlat]: this.store.flatTensor, ...this.updateFeeds(lr) };
    acc!.forEach((t, i) => (feeds[gradName('in', i)] = t));
    const out = await apply.run(feeds);
    acc!.forEach(disposeTensor);
    for (const [name, value] of Object.entries(sums)) out[name] = this.scalar(value);
    return out;
  }

  /** The micro-batch graph of `shape` (the first of an update's, without sums to add to, or a later one's). */
  private microGraphFor(shape: BatchShape, first: boolean): Promise<CompiledGraph> {
    const key = `${first ? 'first' : 'next'}:${shapeKey(shape)}`;
    return cachedGraph(this.microGraphs, key, () =>
      CompiledGraph.create(buildMicroBatchGraph(this.store, { batch: shape, loss: this.loss, ranges: this.ranges, first }), this.store.device, { keepOnDevice: this.ranges.map((_, i) => gradName('out', i)) }),
    );
  }

  /** Adopts an update's outputs (parameters and moments) unless its gradient was not finite; the step's result. */
  private async adopt(out: Record<string, ort.Tensor>, lr: number): Promise<StepResult> {
    const gradNorm = Number(out[STEP_IO.gradNorm].data[0]);
    const skipped = !Number.isFinite(gradNorm);
    // Under mixed precision a float16 overflow in the backward pass shows here too: the step is
    // skipped as any other with a non-finite gradient, and the scale backs off.
    const lossScale = this.scaler?.scale;
    this.scaler?.update(!skipped);
    const m = this.ranges.map((_, i) => out[momentName('mOut', i)]);
    const v = this.ranges.map((_, i) => out[momentName('vOut', i)]);
    if (skipped) {
      this.skipped++;
      // The update is poisoned: drop it and keep the parameters and moments fed to this step.
      for (const t of [out[STEP_IO.paramsOut], ...m, ...v]) disposeTensor(t);
    } else {
      await this.store.replaceFlat(out[STEP_IO.paramsOut]);
      for (const t of [...this.m, ...this.v]) disposeTensor(t);
      this.m = m;
      this.v = v;
      this.stepsDone++;
    }

    const value = (name: string) => Number(out[name].data[0]);
    const result: StepResult = { step: this.stepsDone, lr, loss: value(STEP_IO.loss), gradNorm, skipped, ...(lossScale !== undefined ? { lossScale } : {}) };
    if (this.loss.kind === 'policy') {
      result.pgLoss = value(STEP_IO.pgLoss);
      result.clipRatio = value(STEP_IO.clipRatio);
      result.ppoKl = value(STEP_IO.ppoKl);
      result.kl = value(STEP_IO.kl);
      if ((this.loss.entropyCoef ?? 0) !== 0) result.entropy = value(STEP_IO.entropy);
    }
    return result;
  }

  private stepGraphFor(shape: BatchShape): Promise<CompiledGraph> {
    const own = this.options.batch;
    if (shapeKey(shape) === shapeKey(own)) return Promise.resolve(this.stepGraph);
    if (!Number.isInteger(shape.size) || shape.size <= 0 || !Number.isInteger(shape.seqLen) || shape.seqLen <= 0) {
      return Promise.reject(new Error(`batch shape must be positive integers, got ${shape.size}×${shape.seqLen}`));
    }
    return cachedGraph(this.shapedStepGraphs, shapeKey(shape), () => compileStepGraph(this.store, { batch: shape, loss: this.loss, optimizer: this.optimizer, ranges: this.ranges }));
  }


  /**
   * The current weights (adapters included, merged in under mergeAdapters) for generation and
   * scoring graphs; re-read feeds() after each step.
   */
  weights(): WeightBinding {
    return this.store.generationWeights();
  }

  /**
   * The KL reference: the base model with adapters off under LoRA; under full fine-tuning the
   * initial weights, kept when the trainer was created with keepReference (or klCoef > 0).
   */
  async referenceWeights(): Promise<WeightBinding> {
    if (this.store.lora) return this.store.baseBinding();
    if (!this.initialWeights) {
      throw new Error('this full fine-tuning trainer keeps no reference model: create it with keepReference: true (or a policy loss with klCoef > 0)');
    }
    this.reference ??= FrozenWeights.create(this.initialWeights, this.store.layout.map((e) => e.name), this.store.transfer, this.store.precision === 'mixed');
    return this.reference;
  }

  /**
   * Log-probs [size · seqLen] of `batch.targets` under the current policy (or the reference),
   * with the loss's temperature unless one is given. Any batch shape may be used.
   */
  async logprobs(batch: TokenBatch, options: { reference?: boolean; temperature?: number; shape?: BatchShape; microBatch?: number } = {}): Promise<FlatArray> {
    const shape = options.shape ?? this.options.batch;
    const micro = options.microBatch;
    if (micro !== undefined && micro < shape.size) {
      // In passes of `micro` rows (as an update in micro-batches): the memory of one pass.
      const out = allocate(this.store.dtype, shape.size * shape.seqLen);
      const microShape = { size: micro, seqLen: shape.seqLen, logitsFrom: shape.logitsFrom };
      for (let from = 0; from < shape.size; from += micro) {
        const part = microBatchOf(batch, shape, from, micro, false);
        const values = await this.logprobs(part, { ...options, shape: microShape, microBatch: undefined });
        out.set(values.subarray(0, Math.min(micro, shape.size - from) * shape.seqLen), from * shape.seqLen);
      }
      return out;
    }
    const temperature = options.temperature ?? (this.loss.kind === 'policy' ? this.loss.temperature : 1);
    const binding = options.reference ? await this.referenceWeights() : this.store;
    const key = `${options.reference ? 'ref' : 'policy'}|${shapeKey(shape)}|${temperature}`;
    let p = this.logprobGraphs.get(key);
    if (!p) {
      p = CompiledGraph.create(buildLogprobGraph(this.config, binding, shape, temperature, this.store.dtype, this.store.compute), this.store.device);
      this.logprobGraphs.set(key, p);
      p.catch(() => this.logprobGraphs.delete(key));
    }
    const graph = await p;
    const feeds = { ...tokenFeeds(batch, shape, this.store.dtype), ...binding.feeds(graph.inputNames) };
    const out = await graph.run(feeds);
    return out[STEP_IO.logprobs].data as FlatArray;
  }


  /**
   * The final hidden states [size · seqLen · H] of the current policy on `batch` (the trainer's
   * batch shape): what the critic's value head reads.
   */
  async hiddenStates(batch: TokenBatch): Promise<FlatArray> {
    const shape = this.options.batch;
    if (!this.hiddenGraph) {
      const p = CompiledGraph.create(buildHiddenGraph(this.config, this.store, shape, this.store.dtype, this.store.compute), this.store.device);
      this.hiddenGraph = p;
      p.catch(() => (this.hiddenGraph = null));
    }
    const graph = await this.hiddenGraph;
    const out = await graph.run({ ...tokenFeeds(batch, shape, this.store.dtype), ...this.store.feeds(graph.inputNames) });
    return out[STEP_IO.hidden].data as FlatArray;
  }

  /**
   * Save a checkpoint into `dir` (replaced as a whole, atomically): the weights as a Hugging
   * Face model folder (full) or a PEFT adapter (LoRA), plus the optimizer moments, step and RNG
   * state for an exact resume. `extra` is stored as is (the run loop's own state), `teacher` (an EMA
   * teacher's flat values) and `critic` (the actor–critic's value head) beside them.
   */
  async save(dir: string, extra?: unknown, options: { teacher?: FlatArray | null; critic?: CriticState | null } = {}): Promise<void> {
    const weights = await this.store.readWeights();
    // The moments are saved flat (float32), whatever ranges this trainer updates them in.
    const [m, v] = await Promise.all(
      [this.m, this.v].map(async (parts) => {
        const flat = new Float32Array(this.store.size);
        (await this.store.transfer.downloadAll(parts)).forEach((a, i) => flat.set(a, this.ranges[i].start));
        return flat;
      }),
    );
    const state: TrainerState = {
      step: this.stepsDone,
      rng: this.rng.state(),
      mode: this.options.mode,
      optimizer: this.optimizer,
      loss: this.loss,
      layout: this.store.layout.map((e) => [e.name, e.shape]),
      extra,
      ...(this.scaler ? { lossScale: this.scaler.state() } : {}),
    };
    await saveCheckpoint(dir, {
      config: this.config,
      lora: this.store.lora,
      weights,
      optimizer: { m, v },
      state,
      source: this.options.source,
      teacher: options.teacher ? Float32Array.from(options.teacher) : null,
      critic: options.critic ?? null,
    });
  }

  /**
   * Load a checkpoint saved by save() (exact resume), or a bare Hugging Face / PEFT folder of
   * matching shapes (weights only: optimizer state and step start from zero). Returns the
   * run loop's `extra` state, if any.
   */
  async load(dir: string): Promise<{ step: number; extra?: unknown; teacher: Float32Array | null; critic: CriticState | null }> {
    const ckpt = await loadCheckpoint(dir);
    const lora = this.store.lora;
    if ((ckpt.lora === null) !== (lora === null)) {
      throw new Error(`${dir} holds ${ckpt.lora ? 'a LoRA adapter' : 'full weights'} but this trainer trains ${lora ? 'LoRA adapters' : 'full weights'}`);
    }
    if (lora && ckpt.lora && (ckpt.lora.rank !== lora.rank || ckpt.lora.alpha !== lora.alpha || [...ckpt.lora.targetModules].sort().join() !== [...lora.targetModules].sort().join())) {
      throw new Error(`${dir}: adapter r=${ckpt.lora.rank}, alpha=${ckpt.lora.alpha}, targets ${ckpt.lora.targetModules.join(',')} differ from this trainer's r=${lora.rank}, alpha=${lora.alpha}, targets ${lora.targetModules.join(',')}`);
    }
    const flat = new Float32Array(this.store.size);
    for (const e of this.store.layout) {
      const t = ckpt.weights.get(e.name);
      if (!t) throw new Error(`${dir}: the checkpoint has no "${e.name}"`);
      if (t.data.length !== e.size || t.shape.join() !== e.shape.join()) throw new Error(`${dir}: "${e.name}" has shape [${t.shape}], expected [${e.shape}]`);
      flat.set(t.data, e.offset);
    }
    const dtype = this.store.dtype;
    const widen = (a: Float32Array): FlatArray => (dtype === 'float64' ? Float64Array.from(a) : a);
    const opt = ckpt.optimizer;
    if (opt && (opt.m.length !== this.store.size || opt.v.length !== this.store.size)) {
      throw new Error(`${dir}: optimizer state has ${opt.m.length} values, this trainer has ${this.store.size} parameters`);
    }
    // The moments are flat: they only fit a trainer that lays its weights out the same way.
    const layout = ckpt.state?.layout;
    if (opt && layout) {
      const mismatch = this.store.layout.findIndex((e, i) => layout[i]?.[0] !== e.name || layout[i][1].join() !== e.shape.join());
      if (mismatch >= 0 || layout.length !== this.store.layout.length) {
        throw new Error(`${dir}: the optimizer state was saved for a different parameter layout (first difference at "${this.store.layout[Math.max(0, mismatch)]?.name}")`);
      }
    }
    const [m, v] = await uploadMoments(this.store, this.ranges, opt ?? null);
    await this.store.writeFlat(widen(flat));
    for (const t of [...this.m, ...this.v]) disposeTensor(t);
    this.m = m;
    this.v = v;
    this.stepsDone = ckpt.state?.step ?? 0;
    if (ckpt.state?.rng) this.rng.setState(ckpt.state.rng);
    if (this.scaler && ckpt.state?.lossScale) this.scaler.restore(ckpt.state.lossScale);
    if (ckpt.teacher && ckpt.teacher.length !== this.store.size) throw new Error(`${dir}: the teacher has ${ckpt.teacher.length} values, this trainer has ${this.store.size} parameters`);
    return { step: this.stepsDone, extra: ckpt.state?.extra, teacher: ckpt.teacher, critic: ckpt.critic };
  }

  /** Free every session and device tensor; the trainer and its weights() are unusable after. */
  async release(): Promise<void> {
    // Device tensors go first, while sessions still keep the WebGPU device alive.
    for (const t of [...this.m, ...this.v]) disposeTensor(t);
    if (this.reference) (await this.reference).release();
    for (const p of this.logprobGraphs.values()) await (await p).release();
    this.logprobGraphs.clear();
    if (this.hiddenGraph) await (await this.hiddenGraph).release();
    this.hiddenGraph = null;
    await this.stepGraph.release();
    for (const p of [...this.shapedStepGraphs.values(), ...this.microGraphs.values(), ...(this.applyGraph ? [this.applyGraph] : [])]) await p.then((c) => c.release(), () => undefined);
    this.shapedStepGraphs.clear();
    this.microGraphs.clear();
    this.applyGraph = null;
    await this.store.release();
  }
}
