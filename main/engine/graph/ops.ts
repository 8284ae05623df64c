// The op library: each function infers its output shape, emits standard ONNX nodes, and tapes
// differentiable primitives for `autodiff.ts`. Composite ops (attention, ...) are written in
// terms of the primitives, so they need no gradient rule of their own. RMSNorm and SiLU are
// primitives emitted as the node patterns onnxruntime fuses, and RoPE and a @ bᵀ are primitives
// too, all with compact gradient rules.
import { type DType, ONNX_ELEM_TYPE, isFloat } from './dtype.ts';
import { type Attr, type NodeSpec, type Shape, Sym, assertShape, sameShape } from './graph.ts';

type Operand = Sym | number;

// ---------------------------------------------------------------------------------------------
// Shape helpers

export function broadcastShapes(a: Shape, b: Shape, what = 'broadcast'): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`${what}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Turn a number into a scalar constant matching `like`'s dtype. */
function lift(x: Operand, like: Sym): Sym {
  return typeof x === 'number' ? like.graph.scalar(x, like.dtype) : x;
}

function pair(a: Operand, b: Operand): [Sym, Sym] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error('an op needs at least one tensor');
  const sa = typeof a === 'number' ? lift(a, b as Sym) : a;
  const sb = typeof b === 'number' ? lift(b, sa) : b;
  if (sa.dtype !== sb.dtype) throw new Error(`dtype mismatch: ${sa} and ${sb}`);
  return [sa, sb];
}

// ---------------------------------------------------------------------------------------------
// Elementwise arithmetic (broadcasting)

function binary(opType: string, tapeOp: string | null, a: Operand, b: Operand, outDtype?: DType): Sym {
  const [x, y] = pair(a, b);
  const shape = broadcastShapes(x.shape, y.shape, opType);
  const [out] = x.graph.node(opType, [x, y], [{ shape, dtype: outDtype ?? x.dtype }]);
  if (tapeOp) x.graph.record(tapeOp, [x, y], [out]);
  return out;
}

export const add = (a: Operand, b: Operand): Sym => binary('Add', 'add', a, b);
export const sub = (a: Operand, b: Operand): Sym => binary('Sub', 'sub', a, b);
export const mul = (a: Operand, b: Operand): Sym => binary('Mul', 'mul', a, b);
export const div = (a: Operand, b: Operand): Sym => binary('Div', 'div', a, b);
/** Elementwise maximum and minimum; the gradient goes to the chosen side (ties: the first). */
export const maximum = (a: Operand, b: Operand): Sym => binary('Max', 'maximum', a, b);
export const minimum = (a: Operand, b: Operand): Sym => binary('Min', 'minimum', a, b);

// Comparisons and logic: never differentiated.
export const equal = (a: Operand, b: Operand): Sym => binary('Equal', null, a, b, 'bool');
export const less = (a: Operand, b: Operand): Sym => binary('Less', null, a, b, 'bool');
export const greater = (a: Operand, b: Operand): Sym => binary('Greater', null, a, b, 'bool');
export const lessOrEqual = (a: Operand, b: Operand): Sym => binary('LessOrEqual', null, a, b, 'bool');
export const greaterOrEqual = (a: Operand, b: Operand): Sym => binary('GreaterOrEqual', null, a, b, 'bool');
export const and = (a: Sym, b: Sym): Sym => binary('And', null, a, b, 'bool');
export const or = (a: Sym, b: Sym): Sym => binary('Or', null, a, b, 'bool');

export function not(a: Sym): Sym {
  return a.graph.node('Not', [a], [{ shape: a.shape, dtype: 'bool' }])[0];
}

function unary(opType: string, tapeOp: string | null, x: Sym, attrs: Record<string, Attr> = {}): Sym {
  const [out] = x.graph.node(opType, [x], [{ shape: x.shape, dtype: x.dtype }], attrs);
  if (tapeOp) x.graph.record(tapeOp, [x], [out]);
  return out;
}

export const neg = (x: Sym): Sym => unary('Neg', 'neg', x);
export const exp = (x: Sym): Sym => unary('Exp', 'exp', x);
export const log = (x: Sym): Sym => unary('Log', 'log', x);
export const sqrt = (x: Sym): Sym => unary('Sqrt', 'sqrt', x);
export const tanh = (x: Sym): Sym => unary('Tanh', 'tanh', x);
export const sigmoid = (x: Sym): Sym => unary('Sigmoid', 'sigmoid', x);
export const abs = (x: Sym): Sym => unary('Abs', 'abs', x);
export const identity = (x: Sym): Sym => unary('Identity', 'identity', x);
/** Identity whose gradient is zero: the value is used, never differentiated through. */
export const stopGradient = (x: Sym): Sym => unary('Identity', null, x);
export const sin = (x: Sym): Sym => unary('Sin', null, x);
export const cos = (x: Sym): Sym => unary('Cos', null, x);

/** x ** p for a constant exponent p. */
export function pow(x: Sym, p: number): Sym {
  const [out] = x.graph.node('Pow', [x, x.graph.scalar(p, x.dtype)], [{ shape: x.shape, dtype: x.dtype }]);
  x.graph.record('pow', [x], [out], { p });
  return out;
}

/** Clamp to [lo, hi]; the gradient passes only where x is strictly inside. */
export function clip(x: Sym, lo: number, hi: number): Sym {
  const g = x.graph;
  const [out] = g.node('Clip', [x, g.scalar(lo, x.dtype), g.scalar(hi, x.dtype)], [{ shape: x.shape, dtype: x.dtype }]);
  g.record('clip', [x], [out], { lo, hi });
  return out;
}

export function cast(x: Sym, dtype: DType): Sym {
  if (x.dtype === dtype) return x;
  const [out] = x.graph.node('Cast', [x], [{ shape: x.shape, dtype }], { to: { i: ONNX_ELEM_TYPE[dtype] } });
  if (isFloat(x.dtype) && isFloat(dtype)) x.graph.record('cast', [x], [out]);
  return out;
}

/** Elementwise select: cond ? a : b (cond is bool and broadcasts). */
export function where(cond: Sym, a: Operand, b: Operand): Sym {
  const [x, y] = pair(a, b);
  if (cond.dtype !== 'bool') throw new Error(`where: condition must be bool, got ${cond}`);
  const shape = broadcastShapes(broadcastShapes(cond.shape, x.shape, 'where'), y.shape, 'where');
  const [out] = x.graph.node('Where', [cond, x, y], [{ shape, dtype: x.dtype }]);
  x.graph.record('where', [x, y], [out], { cond });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Linear algebra

/** Batched matrix product with numpy broadcasting over the leading dimensions (rank >= 2). */
export function matmul(a: Sym, b: Sym): Sym {
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul needs rank >= 2: ${a}, ${b}`);
  if (a.dtype !== b.dtype) throw new Error(`matmul: dtype mismatch ${a}, ${b}`);
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new Error(`matmul: inner dimensions differ: ${a} @ ${b}`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const [out] = a.graph.node('MatMul', [a, b], [{ shape: [...batch, m, n], dtype: a.dtype }]);
  a.graph.record('matmul', [a, b], [out]);
  return out;
}

/**
 * a @ bᵀ over the last two axes, batched like `matmul`. Emitted as Transpose + MatMul, which
 * onnxruntime folds into a transposed product (or into b's own layout transpose). Its rule
 * transposes only inputs of the backward products, ga = g @ b and gb = gᵀ @ a, which fold the
 * same way; matmul's rule on a @ transpose(b) would transpose gbᵀ's output, a copy each time.
 */
export function matmulT(a: Sym, b: Sym): Sym {
  const g = a.graph;
  const y = g.untaped(() => matmul(a, transposeLast2(b)));
  g.record('matmulT', [a, b], [y]);
  return y;
}

/**
 * General matrix product of 2-D operands, op(a) @ op(b), where op transposes when asked
 * (ONNX Gemm). Linear layers use it with transB so Hugging Face's [out, in] weights are never
 * copied into another layout.
 */
export function gemm(a: Sym, b: Sym, transA = false, transB = false): Sym {
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`gemm needs 2-D operands: ${a}, ${b}`);
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== k2) throw new Error(`gemm: inner dimensions differ: ${a}${transA ? 'ᵀ' : ''} @ ${b}${transB ? 'ᵀ' : ''}`);
  const [out] = a.graph.node('Gemm', [a, b], [{ shape: [m, n], dtype: a.dtype }], {
    transA: { i: transA ? 1 : 0 },
    transB: { i: transB ? 1 : 0 },
  });
  a.graph.record('gemm', [a, b], [out], { transA, transB });
  return out;
}

/** A linear layer: x [..., in] times a weight stored as [out, in] (PyTorch's layout), plus bias. */
export function linear(x: Sym, weight: Sym, bias?: Sym | null): Sym {
  const [outF, inF] = weight.shape;
  if (x.shape[x.rank - 1] !== inF) throw new Error(`linear: ${x} does not fit weight ${weight}`);
  const lead = x.shape.slice(0, -1);
  const y2 = gemm(reshape(x, [-1, inF]), weight, false, true);
  const y = reshape(y2, [...lead, outF]);
  return bias ? add(y, bias) : y;
}

// ---------------------------------------------------------------------------------------------
// Shape manipulation

/**
 * The tensor each reshape's output views, so a chain of reshapes is one node from its start, and
 * whether that reshape is on the tape. A reshape made inside a primitive (untaped) must not be
 * skipped by a taped one: the gradient reaches the primitive's output, not what it viewed.
 */
const reshapeSource = new WeakMap<Sym, { source: Sym; taped: boolean; node: NodeSpec }>();

/**
 * Reshape; one dimension may be -1 and is inferred. A reshape of a reshape reads the first one's
 * input (and back to that input's shape is that input itself): every Reshape is a dispatch on a
 * GPU, and the model's views ([N, H] rows, [B, T, heads, D] heads, ...) and their gradients
 * would otherwise chain them.
 */
export function reshape(x: Sym, shape: readonly number[]): Sym {
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  assertShape(resolved, `reshape ${x} to [${shape}]`);
  if (resolved.reduce((p, d) => p * d, 1) !== x.size) throw new Error(`reshape: ${x} cannot become [${shape}]`);
  if (sameShape(resolved, x.shape)) return x;
  const g = x.graph;
  const viewed = reshapeSource.get(x);
  // A composite's output (its last node names an equivalent) is read as itself, so that the
  // equivalent node, which writes it, is what its readers read.
  const source = viewed && !viewed.node.equivalent && (viewed.taped || !g.recording) ? viewed.source : x;
  if (sameShape(resolved, source.shape)) return source;
  const [out] = g.node('Reshape', [source, g.int64s(resolved)], [{ shape: resolved, dtype: x.dtype }]);
  g.record('reshape', [source], [out]);
  reshapeSource.set(out, { source, taped: g.recording, node: g.nodes[g.nodes.length - 1] });
  return out;
}

export function transpose(x: Sym, perm: readonly number[]): Sym {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`transpose: bad permutation [${perm}] for ${x}`);
  }
  if (perm.every((p, i) => p === i)) return x;
  const shape = perm.map((p) => x.shape[p]);
  // Moving only axes of size 1 leaves the elements in memory order: that is a reshape, which
  // onnxruntime runs without a copy (on a GPU, without a kernel dispatch). Attention's head
  // split and merge are such transposes in every decode step (one new position).
  const sized = perm.filter((p) => x.shape[p] !== 1);
  if (sized.every((p, i) => i === 0 || p > sized[i - 1])) return reshape(x, shape);
  const [out] = x.graph.node('Transpose', [x], [{ shape, dtype: x.dtype }], { perm: { ints: perm } });
  x.graph.record('transpose', [x], [out], { perm: [...perm] });
  return out;
}

/** Swap the last two axes. */
export function transposeLast2(x: Sym): Sym {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

/** x[start:end] along one axis (step 1; negative bounds count from the end). */
export function slice(x: Sym, axis: number, start: number, end: number): Sym {
  const ax = normAxis(axis, x.rank, 'slice');
  const dim = x.shape[ax];
  const s = Math.max(0, Math.min(dim, start < 0 ? start + dim : start));
  const e = Math.max(s, Math.min(dim, end < 0 ? end + dim : end));
  if (s === 0 && e === dim) return x;
  const shape = x.shape.map((d, i) => (i === ax ? e - s : d));
  const g = x.graph;
  const [out] = g.node('Slice', [x, g.int64s([s]), g.int64s([e]), g.int64s([ax])], [{ shape, dtype: x.dtype }]);
  g.record('slice', [x], [out], { axis: ax, start: s, end: e });
  return out;
}

export function concat(xs: readonly Sym[], axis: number): Sym {
  if (xs.length === 0) throw new Error('concat of nothing');
  if (xs.length === 1) return xs[0];
  const ax = normAxis(axis, xs[0].rank, 'concat');
  for (const x of xs) {
    if (x.rank !== xs[0].rank || x.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new Error(`concat: ${x} does not match ${xs[0]} off axis ${ax}`);
    }
  }
  const shape = xs[0].shape.map((d, i) => (i === ax ? xs.reduce((s, x) => s + x.shape[ax], 0) : d));
  const [out] = xs[0].graph.node('Concat', xs, [{ shape, dtype: xs[0].dtype }], { axis: { i: ax } });
  xs[0].graph.record('concat', xs, [out], { axis: ax });
  return out;
}

/** Broadcast to a larger shape. */
export function expand(x: Sym, shape: readonly number[]): Sym {
  const out = broadcastShapes(x.shape, shape, 'expand');
  if (sameShape(out, x.shape)) return x;
  const [y] = x.graph.node('Expand', [x, x.graph.int64s(out)], [{ shape: out, dtype: x.dtype }]);
  x.graph.record('expand', [x], [y]);
  return y;
}

/** Insert a size-1 axis at `axis`. */
export function unsqueeze(x: Sym, axis: number): Sym {
  const ax = axis < 0 ? axis + x.rank + 1 : axis;
  const shape = [...x.shape];
  shape.splice(ax, 0, 1);
  return reshape(x, shape);
}

/**
 * Rows of `table` picked by integer `indices` along axis 0 (an embedding lookup).
 * The gradient scatters back with ScatterElements add (never ScatterND add, see DESIGN.md), or,
 * for small tables, multiplies by a one-hot matrix; `gradient` forces one way (for tests).
 */
export function gather(table: Sym, indices: Sym, gradient: 'auto' | 'scatter' | 'onehot' = 'auto'): Sym {
  if (indices.dtype !== 'int32' && indices.dtype !== 'int64') throw new Error(`gather: indices must be integers, got ${indices}`);
  const shape = [...indices.shape, ...table.shape.slice(1)];
  const [out] = table.graph.node('Gather', [table, indices], [{ shape, dtype: table.dtype }], { axis: { i: 0 } });
  table.graph.record('gather', [table], [out], { indices, gradient });
  return out;
}

/** out[..., i] = x[..., indices[..., i]] along the last axis (picks a token's log-prob). */
export function gatherLast(x: Sym, indices: Sym): Sym {
  if (indices.rank !== x.rank) throw new Error(`gatherLast: ${indices} must have the rank of ${x}`);
  const shape = [...indices.shape];
  const [out] = x.graph.node('GatherElements', [x, indices], [{ shape, dtype: x.dtype }], { axis: { i: x.rank - 1 } });
  x.graph.record('gatherLast', [x], [out], { indices });
  return out;
}

/**
 * logSoftmax(x) over the last axis, picked at `indices` (the rank of x, usually [..., 1]): each
 * position's log-prob of its token. One primitive so that its gradient, g·(onehot − softmax),
 * is an Exp, a Mul and a ScatterElements add that onnxruntime runs in place: no vocabulary-wide
 * zeros, row sum or subtraction. On a 32k vocabulary (batch 32 x 64) these passes took 46 ms
 * instead of the generic rules' 112.
 */
export function logSoftmaxPick(x: Sym, indices: Sym): Sym {
  const g = x.graph;
  const { logp, picked } = g.untaped(() => {
    const logp = logSoftmax(x, -1);
    return { logp, picked: gatherLast(logp, indices) };
  });
  g.record('logSoftmaxPick', [x], [picked], { indices, logp });
  return picked;
}

/**
 * logSoftmax(scale · x·Wᵀ) picked at `indices`: each position's log-prob of its token straight
 * from the last hidden states x [..., H] and the output embedding W [V, H] (indices [..., K],
 * K picks per position). One primitive because the gradient can stay on the hidden side: with
 * P = softmax and s the row sums of g, dlogits = scatter(g) − s·P, so
 *   dx = scale · (Σ_k g_k·W[i_k] − s·(P·W)),   dW = −Pᵀ·(s·scale·x) + Σ scatter of g·scale·x,
 * whose vocabulary-wide work is one Exp and the two products. Composed from linear, a logits
 * scale and logSoftmaxPick, the rules would also scale the logits and their gradient and
 * multiply P by s: three more passes over [tokens, V] (the temperature of a policy loss).
 */
export function linearLogSoftmaxPick(x: Sym, weight: Sym, indices: Sym, scale = 1): Sym {
  const H = weight.shape[1];
  if (weight.rank !== 2 || x.shape[x.rank - 1] !== H) throw new Error(`linearLogSoftmaxPick: ${x} does not fit weight ${weight}`);
  if (indices.rank !== x.rank || indices.shape.slice(0, -1).join() !== x.shape.slice(0, -1).join()) {
    throw new Error(`linearLogSoftmaxPick: indices ${indices} must be [..., K] over the positions of ${x}`);
  }
  if (!(scale > 0)) throw new Error(`linearLogSoftmaxPick: scale must be > 0, got ${scale}`);
  const g = x.graph;
  const N = x.size / H;
  const K = indices.shape[indices.rank - 1];
  const { xs, logp, ids, picked } = g.untaped(() => {
    const flat = reshape(x, [N, H]);
    const xs = scale === 1 ? flat : mul(flat, scale);
    // Half precision: the product in float16, the log-softmax (and so the log-probs) in float32.
    const logp = logSoftmax(cast(gemm(xs, weight, false, true), x.dtype === 'float16' ? 'float32' : x.dtype), -1);
    const ids = reshape(indices, [N, K]);
    return { xs, logp, ids, picked: reshape(gatherLast(logp, ids), [...indices.shape]) };
  });
  g.record('linearLogSoftmaxPick', [x, weight], [picked], { xs, logp, ids, scale });
  return picked;
}

// ---------------------------------------------------------------------------------------------
// Reductions and normalisers

function reducedShape(x: Sym, axes: readonly number[], keepdims: boolean): number[] {
  return keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
}

function normAxes(x: Sym, axes: readonly number[] | undefined): number[] {
  return axes === undefined ? x.shape.map((_, i) => i) : [...new Set(axes.map((a) => normAxis(a, x.rank, 'reduce')))].sort();
}

export function sum(x: Sym, axes?: readonly number[], keepdims = false): Sym {
  const ax = normAxes(x, axes);
  if (ax.length === 0) return x;
  const shape = reducedShape(x, ax, keepdims);
  const [out] = x.graph.node('ReduceSum', [x, x.graph.int64s(ax)], [{ shape, dtype: x.dtype }], { keepdims: { i: keepdims ? 1 : 0 } });
  x.graph.record('sum', [x], [out], { axes: ax, keepdims });
  return out;
}

export function mean(x: Sym, axes?: readonly number[], keepdims = false): Sym {
  const ax = normAxes(x, axes);
  const count = ax.reduce((p, a) => p * x.shape[a], 1);
  return div(sum(x, ax, keepdims), count);
}

/** Maximum over axes; gradient flows to every position that attains it, shared equally. */
export function max(x: Sym, axes?: readonly number[], keepdims = false): Sym {
  const ax = normAxes(x, axes);
  const shape = reducedShape(x, ax, keepdims);
  const [out] = x.graph.node('ReduceMax', [x], [{ shape, dtype: x.dtype }], { axes: { ints: ax }, keepdims: { i: keepdims ? 1 : 0 } });
  x.graph.record('max', [x], [out], { axes: ax, keepdims });
  return out;
}

export function softmax(x: Sym, axis = -1): Sym {
  const ax = normAxis(axis, x.rank, 'softmax');
  const [out] = x.graph.node('Softmax', [x], [{ shape: x.shape, dtype: x.dtype }], { axis: { i: ax } });
  x.graph.record('softmax', [x], [out], { axis: ax });
  return out;
}

export function logSoftmax(x: Sym, axis = -1): Sym {
  const ax = normAxis(axis, x.rank, 'logSoftmax');
  const [out] = x.graph.node('LogSoftmax', [x], [{ shape: x.shape, dtype: x.dtype }], { axis: { i: ax } });
  x.graph.record('logSoftmax', [x], [out], { axis: ax });
  return out;
}

/** log Σ exp(x) over `axis`, stable (max-shifted), keeping the axis. */
export function logSumExp(x: Sym, axis = -1): Sym {
  const m = stopGradient(max(x, [axis], true));
  return add(log(sum(exp(sub(x, m)), [axis], true)), m);
}

/**
 * RMSNorm as Llama defines it: x / sqrt(mean(x²) + eps) * weight, over the last axis.
 * One primitive: its nodes are exactly Pow(x, 2) -> ReduceMean(-1) -> Add(eps) -> Sqrt ->
 * Div(x, ·) -> Mul(·, weight), which onnxruntime's CPU optimiser fuses into one
 * SimplifiedLayerNormalization (float32). The gradient rule reads only x, weight and the
 * output's gradient, so none of these intermediates gains a second consumer (that would stop
 * the fusion).
 */
export function rmsNorm(x: Sym, weight: Sym, eps: number): Sym {
  if (x.rank === 0) throw new Error(`rmsNorm needs a tensor with a last axis, got ${x}`);
  if (!sameShape(broadcastShapes(x.shape, weight.shape, 'rmsNorm'), x.shape)) throw new Error(`rmsNorm: weight ${weight} does not broadcast to ${x}`);
  const g = x.graph;
  // Half precision: the statistics in float32 (mean(x²) overflows float16 once |x| passes 256),
  // the result cast back for the products that read it (mixed precision). Its equivalent is the
  // same fused node on the float16 values: onnxruntime's kernel accumulates in float32 (stash_type
  // 1; on lavapipe it normalises rows of |x| ≈ 300 exactly, where a float16 sum of squares is ∞).
  if (x.dtype === 'float16') {
    const y = cast(rmsNorm(cast(x, 'float32'), cast(weight, 'float32'), eps), 'float16');
    if (weight.rank === 1 && weight.shape[0] === x.shape[x.rank - 1]) {
      g.nodes[g.nodes.length - 1].equivalent = {
        opType: 'SimplifiedLayerNormalization',
        inputs: [x.name, weight.name],
        attrs: { axis: { i: -1 }, epsilon: { f: eps }, stash_type: { i: 1 } },
      };
    }
    return y;
  }
  const y = g.untaped(() => {
    const [ms] = g.node('ReduceMean', [pow(x, 2)], [{ shape: [...x.shape.slice(0, -1), 1], dtype: x.dtype }], {
      axes: { ints: [-1] },
      keepdims: { i: 1 },
    });
    return mul(div(x, sqrt(add(ms, eps))), weight);
  });
  if (weight.rank === 1 && weight.shape[0] === x.shape[x.rank - 1]) {
    g.nodes[g.nodes.length - 1].equivalent = {
      opType: 'SimplifiedLayerNormalization',
      inputs: [x.name, weight.name],
      attrs: { axis: { i: -1 }, epsilon: { f: eps }, stash_type: { i: 1 } },
    };
  }
  g.record('rmsNorm', [x, weight], [y], { eps });
  return y;
}

/**
 * x + delta and RMSNorm of that sum (a residual connection and the norm of the next block): the
 * composite of add and rmsNorm, which names SkipSimplifiedLayerNormalization (it writes the
 * norm and the sum) as its equivalent, one dispatch for seven where a lowering writes it.
 */
export function addRmsNorm(x: Sym, delta: Sym, weight: Sym, eps: number): { sum: Sym; normed: Sym } {
  const sum = add(x, delta);
  const normed = rmsNorm(sum, weight, eps);
  const last = x.graph.nodes[x.graph.nodes.length - 1];
  if (last.equivalent && sameShape(x.shape, delta.shape)) {
    last.equivalent = {
      opType: 'SkipSimplifiedLayerNormalization',
      domain: 'com.microsoft',
      inputs: [x.name, delta.name, weight.name],
      attrs: { epsilon: { f: eps } },
      outputs: [normed.name, '', '', sum.name],
    };
  }
  return { sum, normed };
}

/**
 * SiLU, x · sigmoid(x). One primitive emitted as Sigmoid + Mul, which onnxruntime's CPU
 * optimiser fuses into QuickGelu (float32) since the gradient rule never reads the sigmoid; its
 * equivalent is that one node (QuickGelu with alpha 1 is x · sigmoid(x)), for WebGPU, whose
 * provider has the kernel but does not fuse the pair.
 */
export function silu(x: Sym): Sym {
  const g = x.graph;
  const y = g.untaped(() => mul(x, sigmoid(x)));
  g.nodes[g.nodes.length - 1].equivalent = { opType: 'QuickGelu', domain: 'com.microsoft', inputs: [x.name], attrs: { alpha: { f: 1 } } };
  g.record('silu', [x], [y]);
  return y;
}

/**
 * The same rotary tables as onnxruntime's RotaryEmbedding reads them: one row of D/2 angles'
 * cos and sin per entry of `positions` (int64 [B, T] indices into the rows). Given to `rope`, they
 * name RotaryEmbedding as its equivalent.
 */
export interface RotaryRows {
  positions: Sym;
  cos: Sym;
  sin: Sym;
}

/**
 * Rotary position embedding in the Hugging Face "rotate half" layout.
 * x: [..., T, D]; cos, sin: broadcastable to [..., T, D] (already duplicated over both halves).
 * One primitive: rotate_half(x)·sin = swapHalves(x)·(σ·sin) with σ = (−1…, +1…), so the
 * full-size passes are one Slice and three arithmetic ops (σ·sin is table-sized), and the rule
 * is as compact (see ropeRule in autodiff.ts). With `rows` (the same angles, see RotaryRows) and
 * x as [B, heads, T, D], its equivalent is one RotaryEmbedding.
 */
export function rope(x: Sym, cosT: Sym, sinT: Sym, rows?: RotaryRows): Sym {
  const g = x.graph;
  const d = x.shape[x.rank - 1];
  if (d % 2 !== 0) throw new Error(`rope: odd head dimension in ${x}`);
  const { y, signedSin } = g.untaped(() => {
    const sign = g.constant(Array.from({ length: d }, (_, i) => (i < d / 2 ? -1 : 1)), [d], sinT.dtype);
    const signedSin = mul(sinT, sign);
    return { y: add(mul(x, cosT), mul(swapHalves(x), signedSin)), signedSin };
  });
  if (rows) {
    const [B, , T] = x.shape;
    if (x.rank !== 4 || rows.positions.shape.join() !== [B, T].join() || rows.cos.shape[1] !== d / 2 || rows.sin.shape[1] !== d / 2) {
      throw new Error(`rope: rotary rows (positions ${rows.positions}, cos ${rows.cos}) do not fit ${x}`);
    }
    nameRotaryEmbedding(x, rows, rows.sin);
  }
  g.record('rope', [x, cosT, sinT], [y], { signedSin, rows });
  return y;
}

/**
 * Name one RotaryEmbedding of `x` (as [B, heads, T, D]) with `rows`' angles and `sin` as the
 * equivalent of the graph's last node, the one that wrote the rotation (see rope). With the rows'
 * sin negated it is the rotation back, which is rope's gradient (see ropeRule in autodiff.ts).
 */
export function nameRotaryEmbedding(x: Sym, rows: RotaryRows, sin: Sym): void {
  const g = x.graph;
  g.nodes[g.nodes.length - 1].equivalent = {
    opType: 'RotaryEmbedding',
    domain: 'com.microsoft',
    inputs: [x.name, rows.positions.name, rows.cos.name, sin.name],
    attrs: { interleaved: { i: 0 } },
  };
}

const negatedSin = new WeakMap<Sym, Sym>();

/** −sin of the rotary rows, made once per table: the angles of the rotation back. */
export function negatedRotarySin(rows: RotaryRows): Sym {
  let s = negatedSin.get(rows.sin);
  if (!s) {
    s = rows.sin.graph.untaped(() => neg(rows.sin));
    negatedSin.set(rows.sin, s);
  }
  return s;
}

/**
 * concat(x₂, x₁) over the last axis, as one Gather of rows [1, 0] from a [..., 2, D/2] view
 * (untaped: the swap is its own adjoint, rules call it directly). Gather copies whole D/2 rows;
 * the Slice with step -1 it replaced took twice as long in a CPU training step.
 */
export function swapHalves(x: Sym): Sym {
  const d = x.shape[x.rank - 1];
  if (d % 2 !== 0) throw new Error(`swapHalves: odd last axis in ${x}`);
  const g = x.graph;
  return g.untaped(() => {
    const view = reshape(x, [...x.shape.slice(0, -1), 2, d / 2]);
    const [swapped] = g.node('Gather', [view, g.int64s([1, 0])], [{ shape: view.shape, dtype: x.dtype }], { axis: { i: x.rank - 1 } });
    return reshape(swapped, [...x.shape]);
  });
}

/**
 * Scaled dot-product attention with grouped KV heads.
 * q: [B, H, T, D]; k, v: [B, KVH, S, D] with H a multiple of KVH; bias: additive mask
 * broadcastable to [B, 1, 1, T, S] (0 where allowed, a large negative number where not).
 * Head h reads KV head h / G (G = H / KVH), so the G query heads of one KV head are stacked
 * along the row axis, [B, KVH, G·T, D] (a free reshape of q): every product is then a plain
 * 4-D batched MatMul against that KV head's keys and values, never copied or broadcast, and
 * the gradients of k and v sum over the group inside their MatMuls.
 */
export function attention(q: Sym, k: Sym, v: Sym, bias: Sym | null): Sym {
  const [B, H, T, D] = q.shape;
  const [, KVH, S] = k.shape;
  if (H % KVH !== 0) throw new Error(`attention: ${H} query heads do not group over ${KVH} KV heads`);
  const G = H / KVH;
  const rows = reshape(q, [B, KVH, G * T, D]);
  // Half precision: the products in float16, the scores' scale, mask and softmax in float32 (the
  // mask's MASKED is beyond float16's range; a row whose every key is masked would be NaN there).
  const half = q.dtype === 'float16';
  let scores = mul(half ? cast(matmulT(rows, k), 'float32') : matmulT(rows, k), 1 / Math.sqrt(D));
  if (bias) scores = add(scores, groupedBias(half ? cast(bias, 'float32') : bias, G, T, S));
  const probs = softmax(scores, -1);
  return reshape(matmul(half ? cast(probs, 'float16') : probs, v), [B, H, T, D]);
}

/** What onnxruntime's GroupQueryAttention reads besides the composite's tensors (see cachedAttention). */
export interface GroupQueryInputs {
  /** int32 [B]: each row's write slot (its total length − 1). */
  seqlens: Sym;
  /** int32 [1]: the slots attended at most, here the whole cache L. */
  totalLength: Sym;
  /**
   * q and k before RoPE, with the angles' cos and sin tables [L, D/2] (in q's type) that the
   * composite's q and k were rotated by, at the row of each row's own slot (seqlens): then the
   * fused node rotates them itself (do_rotary), and the two RotaryEmbeddings drop out. The
   * kernel takes it for head sizes that are multiples of 16 only. With `packed`, q, k and v
   * unrotated as one product's rows [B, (H + 2·KVH)·D]: the node reads them as they are.
   */
  rotary?: { q: Sym; k: Sym; cos: Sym; sin: Sym; packed?: Sym };
}

/**
 * One decode step of grouped-query attention over a cache kept on the device: the new token's
 * k, v [B, KVH, 1, D] are written at the slot `atSlot` marks (bool [B|1, 1, L, 1]: each row's own),
 * and q [B, H, 1, D] (after RoPE) attends over the updated cache [B, KVH, L, D] with `bias`
 * [B, 1, 1, L] added (0 where a row may attend, its own slot included). Returns the attention as
 * [B, 1, H·D] and the updated caches. With `gqa` (and D a multiple of 8) its equivalent is one
 * GroupQueryAttention, which reads each row's slots 0 .. seqlens and takes no bias: so the rows
 * must be laid out from slot 0 (right-padded), where the bias masks exactly the later slots; with
 * `gqa.rotary` that node also does q's and k's RoPE, at the position seqlens (each row's slot is
 * then its token's position).
 */
export function cachedAttention(
  q: Sym,
  k: Sym,
  v: Sym,
  past: { k: Sym; v: Sym },
  atSlot: Sym,
  bias: Sym,
  gqa?: GroupQueryInputs,
): { out: Sym; k: Sym; v: Sym } {
  const [B, H, T, D] = q.shape;
  const [, KVH, L] = past.k.shape;
  if (T !== 1 || H % KVH !== 0 || k.shape.join() !== [B, KVH, 1, D].join() || past.k.shape.join() !== [B, KVH, L, D].join()) {
    throw new Error(`cachedAttention: q ${q}, k ${k} and the cache ${past.k} do not fit one decode step`);
  }
  const G = H / KVH;
  // onnxruntime's kernels take head sizes that are multiples of 8 only, and rotate q and k
  // themselves for multiples of 16.
  const fused = gqa && D % 8 === 0;
  const rotary = fused && D % 16 === 0 ? gqa.rotary : undefined;
  if (rotary && (rotary.q.shape.join() !== q.shape.join() || rotary.k.shape.join() !== k.shape.join() || rotary.cos.shape.join() !== [L, D / 2].join())) {
    throw new Error(`cachedAttention: unrotated q ${rotary.q}, k ${rotary.k} or the rotary table ${rotary.cos} do not fit q ${q} over ${L} slots`);
  }
  if (rotary?.packed && rotary.packed.shape.join() !== [B, (H + 2 * KVH) * D].join()) {
    throw new Error(`cachedAttention: packed q, k, v ${rotary.packed} do not fit q ${q} and k ${k}`);
  }
  // GroupQueryAttention's own layout, [B, 1, heads·D] (packed: [B, 1, (H + 2·KVH)·D] as query,
  // no key or value): views the composite itself never reads.
  const views = !fused
    ? []
    : rotary?.packed
      ? [reshape(rotary.packed, [B, 1, (H + 2 * KVH) * D])]
      : [reshape(rotary?.q ?? q, [B, 1, H * D]), reshape(rotary?.k ?? k, [B, 1, KVH * D]), reshape(v, [B, 1, KVH * D])];
  const kNext = where(atSlot, k, past.k);
  const vNext = where(atSlot, v, past.v);
  const rows = mul(reshape(q, [B, KVH, G, D]), 1 / Math.sqrt(D));
  // Half precision: the products in float16, the mask and softmax in float32 (as attention()).
  const half = q.dtype === 'float16';
  const scores = matmulT(rows, kNext);
  const probs = softmax(add(half ? cast(scores, 'float32') : scores, half ? cast(bias, 'float32') : bias), -1);
  const out = reshape(matmul(half ? cast(probs, 'float16') : probs, vNext), [B, 1, H * D]);
  if (fused) {
    q.graph.nodes[q.graph.nodes.length - 1].equivalent = {
      opType: 'GroupQueryAttention',
      domain: 'com.microsoft',
      inputs: [...views.map((x) => x.name), ...(views.length === 1 ? ['', ''] : []), past.k.name, past.v.name, gqa.seqlens.name, gqa.totalLength.name, ...(rotary ? [rotary.cos.name, rotary.sin.name] : [])],
      attrs: { num_heads: { i: H }, kv_num_heads: { i: KVH }, scale: { f: 1 / Math.sqrt(D) }, ...(rotary ? { do_rotary: { i: 1 }, rotary_interleaved: { i: 0 } } : {}) },
      outputs: [out.name, kNext.name, vNext.name],
    };
  }
  return { out, k: kNext, v: vNext };
}

/** A mask broadcastable to [B, 1, 1, T, S] as rows of the stacked groups: [B|1, 1, G·T|1, S]. */
function groupedBias(bias: Sym, G: number, T: number, S: number): Sym {
  if (bias.rank > 5) throw new Error(`attention: the mask ${bias} has more than 5 axes`);
  const shape = [...new Array<number>(5 - bias.rank).fill(1), ...bias.shape];
  const [b0, b1, b2, b3, b4] = shape;
  if (b1 !== 1 || b2 !== 1 || (b3 !== 1 && b3 !== T) || (b4 !== 1 && b4 !== S)) {
    throw new Error(`attention: the mask ${bias} does not broadcast to [B, 1, 1, ${T}, ${S}]`);
  }
  // One group, or a mask that is the same for every query row: only the axes change.
  if (G === 1 || b3 === 1) return reshape(bias, [b0, 1, b3, b4]);
  return reshape(expand(reshape(bias, [b0, 1, 1, T, b4]), [b0, 1, G, T, b4]), [b0, 1, G * T, b4]);
}

// ---------------------------------------------------------------------------------------------
// Non-differentiable helpers (indices, sampling)

/** Integer index of the maximum along `axis` (int64 as ONNX returns it). */
export function argmax(x: Sym, axis = -1, keepdims = false): Sym {
  const ax = normAxis(axis, x.rank, 'argmax');
  const shape = reducedShape(x, [ax], keepdims);
  return x.graph.node('ArgMax', [x], [{ shape, dtype: 'int64' }], { axis: { i: ax }, keepdims: { i: keepdims ? 1 : 0 } })[0];
}

/** Running sum along `axis`. */
export function cumsum(x: Sym, axis = -1): Sym {
  const ax = normAxis(axis, x.rank, 'cumsum');
  return x.graph.node('CumSum', [x, x.graph.constant([ax], [], 'int32')], [{ shape: x.shape, dtype: x.dtype }])[0];
}

/** The k largest values along the last axis, sorted descending, with their int64 indices. */
export function topk(x: Sym, k: number): [Sym, Sym] {
  const shape = [...x.shape.slice(0, -1), k];
  const [values, indices] = x.graph.node('TopK', [x, x.graph.int64s([k])], [
    { shape, dtype: x.dtype },
    { shape, dtype: 'int64' },
  ], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } });
  return [values, indices];
}

/** A constant 0, 1, ..., n-1. */
export function iota(g: Sym['graph'], n: number, dtype: DType = 'int32'): Sym {
  return g.constant(Array.from({ length: n }, (_, i) => (dtype === 'int64' ? BigInt(i) : i)) as number[], [n], dtype);
}

export type { Sym };
