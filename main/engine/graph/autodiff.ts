// Reverse-mode automatic differentiation over the tape, emitting the backward pass into the
// same ONNX graph. Each rule is a vector-Jacobian product written with the op library, so the
// backward graph uses only standard ONNX ops (no com.microsoft *Grad kernels).
import { type Shape, type Sym, type TapeEntry, sameShape } from './graph.ts';
import * as op from './ops.ts';

/** Given the gradient of each output (null where none flows), the gradient of each input. */
type Rule = (gradOut: Sym[], entry: TapeEntry) => (Sym | null)[];

/** Sum a broadcast gradient back down to the shape of the operand that was broadcast. */
export function unbroadcast(g: Sym, shape: Shape): Sym {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return op.reshape(op.sum(g, axes, true), [...shape]);
}

/** Give a reduced gradient its reduced axes back, so it broadcasts against the input. */
function keepReducedDims(g: Sym, x: Sym, axes: readonly number[], keepdims: boolean): Sym {
  return keepdims ? g : op.reshape(g, x.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
}

/** Up to this many elements (N lookups × V rows) an embedding gradient uses a one-hot Gemm. */
const ONE_HOT_LIMIT = 1 << 22;

function zerosLike(x: Sym): Sym {
  return op.expand(x.graph.scalar(0, x.dtype), [...x.shape]);
}

export const RULES: Record<string, Rule> = {
  identity: ([g]) => [g],
  cast: ([g], e) => [op.cast(g, e.inputs[0].dtype)],
  add: ([g], { inputs: [a, b] }) => [unbroadcast(g, a.shape), unbroadcast(g, b.shape)],
  sub: ([g], { inputs: [a, b] }) => [unbroadcast(g, a.shape), unbroadcast(op.neg(g), b.shape)],
  mul: ([g], { inputs: [a, b] }) => [unbroadcast(op.mul(g, b), a.shape), unbroadcast(op.mul(g, a), b.shape)],
  div: ([g], { inputs: [a, b], outputs: [y] }) => [
    unbroadcast(op.div(g, b), a.shape),
    unbroadcast(op.neg(op.div(op.mul(g, y), b)), b.shape),
  ],
  maximum: ([g], e) => pickRule(g, e, op.greaterOrEqual),
  minimum: ([g], e) => pickRule(g, e, op.lessOrEqual),
  max: ([g], e) => reduceMaxRule(g, e),
  neg: ([g]) => [op.neg(g)],
  exp: ([g], { outputs: [y] }) => [op.mul(g, y)],
  log: ([g], { inputs: [x] }) => [op.div(g, x)],
  sqrt: ([g], { outputs: [y] }) => [op.div(op.mul(g, 0.5), y)],
  tanh: ([g], { outputs: [y] }) => [op.mul(g, op.sub(1, op.mul(y, y)))],
  sigmoid: ([g], { outputs: [y] }) => [op.mul(g, op.mul(y, op.sub(1, y)))],
  silu: ([g], e) => siluRule(g, e),
  rmsNorm: ([g], e) => rmsNormRule(g, e),
  rope: ([g], e) => ropeRule(g, e),
  abs: ([g], { inputs: [x] }) => [op.where(op.less(x, 0), op.neg(g), g)],
  pow: ([g], { inputs: [x], params }) => {
    const p = params.p as number;
    return [op.mul(g, op.mul(op.pow(x, p - 1), p))];
  },
  clip: ([g], { inputs: [x], params }) => {
    const inside = op.and(op.greater(x, params.lo as number), op.less(x, params.hi as number));
    return [op.where(inside, g, 0)];
  },
  where: ([g], { inputs: [a, b], params }) => {
    const cond = params.cond as Sym;
    return [unbroadcast(op.where(cond, g, 0), a.shape), unbroadcast(op.where(cond, 0, g), b.shape)];
  },
  matmul: ([g], { inputs: [a, b] }) => [
    unbroadcast(op.matmul(g, op.transposeLast2(b)), a.shape),
    unbroadcast(op.matmul(op.transposeLast2(a), g), b.shape),
  ],
  matmulT: ([g], { inputs: [a, b] }) => [
    unbroadcast(op.matmul(g, b), a.shape),
    unbroadcast(op.matmul(op.transposeLast2(g), a), b.shape),
  ],
  gemm: ([g], { inputs: [a, b], params }) => {
    // C = op(A) op(B); each case's products are again Gemms, so no transpose is materialised.
    const tA = params.transA as boolean;
    const tB = params.transB as boolean;
    if (!tA && !tB) return [op.gemm(g, b, false, true), op.gemm(a, g, true, false)];
    if (!tA && tB) return [op.gemm(g, b, false, false), op.gemm(g, a, true, false)];
    if (tA && !tB) return [op.gemm(b, g, false, true), op.gemm(a, g, false, false)];
    return [op.gemm(b, g, true, true), op.gemm(g, a, true, true)];
  },
  reshape: ([g], { inputs: [x] }) => [op.reshape(g, [...x.shape])],
  transpose: ([g], { params }) => {
    const perm = params.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [op.transpose(g, inverse)];
  },
  slice: ([g], { inputs: [x], params }) => {
    // Pad the gradient with zeros back to the input's extent along the sliced axis.
    const axis = params.axis as number;
    const before = params.start as number;
    const after = x.shape[axis] - (params.end as number);
    const pads = new Array<number>(2 * x.rank).fill(0);
    pads[axis] = before;
    pads[x.rank + axis] = after;
    const [out] = g.graph.node('Pad', [g, g.graph.int64s(pads), g.graph.scalar(0, g.dtype)], [{ shape: x.shape, dtype: g.dtype }], {
      mode: { s: 'constant' },
    });
    return [out];
  },
  concat: ([g], { inputs, params }) => {
    const axis = params.axis as number;
    let offset = 0;
    return inputs.map((x) => {
      const part = op.slice(g, axis, offset, offset + x.shape[axis]);
      offset += x.shape[axis];
      return part;
    });
  },
  expand: ([g], { inputs: [x] }) => [unbroadcast(g, x.shape)],
  sum: ([g], { inputs: [x], params }) => [
    op.expand(keepReducedDims(g, x, params.axes as number[], params.keepdims as boolean), [...x.shape]),
  ],
  softmax: ([g], { outputs: [y], params }) => {
    const axis = params.axis as number;
    const dot = op.sum(op.mul(g, y), [axis], true);
    return [op.mul(y, op.sub(g, dot))];
  },
  logSoftmax: ([g], { outputs: [y], params }) => {
    const axis = params.axis as number;
    return [op.sub(g, op.mul(op.exp(y), op.sum(g, [axis], true)))];
  },
  gather: ([g], { inputs: [table], params }) => {
    const indices = params.indices as Sym;
    const rowShape = table.shape.slice(1);
    const n = indices.size;
    const way = params.gradient as 'auto' | 'scatter' | 'onehot';
    if (table.rank === 2 && (way === 'onehot' || (way === 'auto' && n * table.shape[0] <= ONE_HOT_LIMIT))) {
      // Small vocabularies: onehot(ids)ᵀ @ g is one multi-threaded Gemm, where the CPU's
      // ScatterElements add runs on one thread.
      const ids = op.reshape(indices, [n, 1]);
      const oneHot = op.cast(op.equal(ids, op.iota(g.graph, table.shape[0], indices.dtype)), g.dtype);
      return [op.gemm(oneHot, op.reshape(g, [n, rowShape[0]]), true, false)];
    }
    // Scatter-add each looked-up row's gradient back into a zero table. ScatterElements needs
    // its indices at the full shape of the updates: [N, D...].
    const flatIdx = op.reshape(indices, [n, ...rowShape.map(() => 1)]);
    const idx = op.expand(flatIdx, [n, ...rowShape]);
    const updates = op.reshape(g, [n, ...rowShape]);
    const [out] = g.graph.node('ScatterElements', [zerosLike(table), idx, updates], [{ shape: table.shape, dtype: g.dtype }], {
      axis: { i: 0 },
      reduction: { s: 'add' },
    });
    return [out];
  },
  logSoftmaxPick: ([g], { params }) => {
    // d/dx_j Σ_k g_k·logp[i_k] = Σ_k g_k·[j = i_k] − p_j·Σ_k g_k: the scatter adds the first term.
    const indices = params.indices as Sym;
    const logp = params.logp as Sym;
    const rowSum = g.shape[g.rank - 1] === 1 ? g : op.sum(g, [g.rank - 1], true);
    const spread = op.mul(op.exp(logp), op.neg(rowSum));
    const [gx] = g.graph.node('ScatterElements', [spread, indices, g], [{ shape: logp.shape, dtype: g.dtype }], {
      axis: { i: logp.rank - 1 },
      reduction: { s: 'add' },
    });
    return [gx];
  },
  linearLogSoftmaxPick: ([g], e) => linearLogSoftmaxPickRule(g, e),
  gatherLast: ([g], { inputs: [x], params }) => {
    const indices = params.indices as Sym;
    const [out] = g.graph.node('ScatterElements', [zerosLike(x), indices, g], [{ shape: x.shape, dtype: g.dtype }], {
      axis: { i: x.rank - 1 },
      reduction: { s: 'add' },
    });
    return [out];
  },
};

/**
 * The token log-prob from hidden states (see op.linearLogSoftmaxPick). With xs = scale·x
 * [N, H], P = exp(logp) [N, V] and s = Σ_k g_k per row:
 *   dxs = Σ_k g_k·W[i_k] − s·(P·W),   dW = Pᵀ·(−s·xs) + Σ_{n,k} g_nk·xs_n added into row i_nk,
 * the last by an in-place ScatterElements add on the product's output; dx = scale·dxs.
 */
function linearLogSoftmaxPickRule(g: Sym, { inputs: [x, w], params }: TapeEntry): (Sym | null)[] {
  const xs = params.xs as Sym;
  const logp = params.logp as Sym;
  const ids = params.ids as Sym;
  const scale = params.scale as number;
  const [N, H] = xs.shape;
  const K = ids.shape[1];
  // Under mixed precision the log-probs are float32 and the products float16: the gradient's
  // products are taken in the hidden states' type, as the forward's.
  const g2 = op.cast(op.reshape(g, [N, K]), xs.dtype);
  const s = K === 1 ? g2 : op.sum(g2, [1], true);
  const p = op.cast(op.exp(logp), xs.dtype);
  // Σ_k g_k·W[i_k]: the picked rows of W, weighted.
  const rows = op.gather(w, ids);
  const picked = K === 1 ? op.mul(op.reshape(rows, [N, H]), g2) : op.sum(op.mul(rows, op.unsqueeze(g2, -1)), [1]);
  const dxs = op.sub(picked, op.mul(op.gemm(p, w), s));
  const dx = op.reshape(scale === 1 ? dxs : op.mul(dxs, scale), [...x.shape]);
  // dW: the products' part, then each pick's g·xs added into its row.
  const base = op.gemm(p, op.mul(xs, op.neg(s)), true, false);
  const updates = K === 1 ? op.mul(xs, g2) : op.reshape(op.mul(op.unsqueeze(xs, 1), op.unsqueeze(g2, -1)), [N * K, H]);
  const rowIds = op.expand(op.reshape(ids, [N * K, 1]), [N * K, H]);
  const [dw] = g.graph.node('ScatterElements', [base, rowIds, updates], [{ shape: [...w.shape], dtype: w.dtype }], {
    axis: { i: 0 },
    reduction: { s: 'add' },
  });
  return [dx, dw];
}

/**
 * SiLU, y = x·s with s = sigmoid(x): dy/dx = s·(1 + x·(1 − s)) = s·(1 + x − y). s is computed
 * again rather than kept from the forward, so the forward's Sigmoid has one consumer and
 * onnxruntime fuses it with its Mul (QuickGelu); the backward is five elementwise passes.
 * The Sigmoid reads x through a Reshape (a view, no copy): a second Sigmoid(x) would be merged
 * with the forward's by onnxruntime's common-subexpression pass, undoing the fusion.
 */
function siluRule(g: Sym, { inputs: [x], outputs: [y] }: TapeEntry): (Sym | null)[] {
  const view = op.reshape(x, x.rank === 1 ? [1, x.size] : [x.size]);
  const s = op.reshape(op.sigmoid(view), [...x.shape]);
  return [op.mul(g, op.mul(s, op.sub(op.add(x, 1), y)))];
}

/**
 * RMSNorm, y = x·r·w with r = 1/sqrt(mean(x²) + eps) over the last axis (H wide):
 *   gx = r·(g·w) − x·r³·mean(g·w·x),   gw = Σ over the leading axes of g·x·r.
 * r comes from x again, through ReduceSumSquare: no forward intermediate is read (each would
 * gain a second consumer and stop the forward's fusion), and no node repeats one of the
 * forward's (onnxruntime's common-subexpression pass would merge the two, with the same effect).
 * With p = g·x, both Σ_h p·w and Σ_n p·r are matrix-vector products, so the full-size passes
 * are one read of x, p, two products reading p, r·w, and gx = g·(r·w) − x·k.
 */
function rmsNormRule(g: Sym, { inputs: [x, w], params }: TapeEntry): (Sym | null)[] {
  const eps = params.eps as number;
  const H = x.shape[x.rank - 1];
  const N = x.size / H;
  const rowShape = [...x.shape.slice(0, -1), 1];
  const [ss] = x.graph.node('ReduceSumSquare', [x], [{ shape: rowShape, dtype: x.dtype }], {
    axes: { ints: [-1] },
    keepdims: { i: 1 },
  });
  const u = op.add(ss, H * eps); // H·(mean(x²) + eps), per row
  const r = op.div(Math.sqrt(H), op.sqrt(u));
  const p = op.mul(g, x);
  let dot: Sym; // Σ_h g·w·x, per row
  let gw: Sym;
  if (w.rank === 1 && w.shape[0] === H) {
    const p2 = op.reshape(p, [N, H]);
    dot = op.reshape(op.gemm(p2, op.reshape(w, [1, H]), false, true), rowShape);
    gw = op.reshape(op.gemm(op.reshape(r, [1, N]), p2), [H]);
  } else {
    dot = op.sum(op.mul(p, w), [x.rank - 1], true);
    gw = unbroadcast(op.mul(p, r), w.shape);
  }
  const k = op.div(op.mul(r, dot), u); // r³·mean(g·w·x), per row
  return [op.sub(op.mul(g, op.mul(r, w)), op.mul(x, k)), gw];
}

/**
 * RoPE, y = x·cos + swap(x)·s with s = σ·sin (see op.rope). The swap of halves is a symmetric
 * permutation, so gx = g·cos + swap(g·s): four full-size passes, which are the rotation by the
 * opposite angles (swap(σ) = −σ), so with the forward's rotary rows a provider that fuses RoPE
 * writes them as one RotaryEmbedding reading −sin. gcos = g·x and gsin = σ·g·swap(x), summed to
 * their shapes (pruned when nothing reads them).
 */
function ropeRule(g: Sym, { inputs: [x, c, s], params }: TapeEntry): (Sym | null)[] {
  const signedSin = params.signedSin as Sym;
  const rows = params.rows as op.RotaryRows | undefined;
  const back = rows && sameShape(g.shape, x.shape) ? op.negatedRotarySin(rows) : null;
  const gx = op.add(op.mul(g, c), op.swapHalves(op.mul(g, signedSin)));
  // The Add that wrote gx is the graph's last node (the negated rows were made before it).
  if (back) op.nameRotaryEmbedding(g, rows!, back);
  const d = x.shape[x.rank - 1];
  const sign = g.graph.constant(Array.from({ length: d }, (_, i) => (i < d / 2 ? -1 : 1)), [d], s.dtype);
  return [
    unbroadcast(gx, x.shape),
    unbroadcast(op.mul(g, x), c.shape),
    unbroadcast(op.mul(op.mul(g, op.swapHalves(x)), sign), s.shape),
  ];
}

/** Elementwise max/min: the gradient goes to `a` where `pick(a, b)`, else to `b`. */
function pickRule(g: Sym, { inputs: [a, b], outputs: [y] }: TapeEntry, pick: (a: Sym, b: Sym) => Sym): (Sym | null)[] {
  const ea = op.expand(a, [...y.shape]);
  const eb = op.expand(b, [...y.shape]);
  const toA = pick(ea, eb);
  return [unbroadcast(op.where(toA, g, 0), a.shape), unbroadcast(op.where(toA, 0, g), b.shape)];
}

/** ReduceMax: the gradient is shared equally by every position that attains the maximum. */
function reduceMaxRule(g: Sym, { inputs: [x], outputs: [y], params }: TapeEntry): (Sym | null)[] {
  const axes = params.axes as number[];
  const keep = params.keepdims as boolean;
  const yk = keepReducedDims(y, x, axes, keep);
  const gk = keepReducedDims(g, x, axes, keep);
  const hit = op.cast(op.equal(x, yk), x.dtype);
  const count = op.sum(hit, axes, true);
  return [op.mul(hit, op.div(gk, count))];
}

/**
 * Gradients of scalar `loss` with respect to each of `wrt`, added to the same graph.
 * A parameter the loss does not depend on gets a zero gradient.
 */
export function grad(loss: Sym, wrt: readonly Sym[], seed?: Sym): Sym[] {
  const graph = loss.graph;
  if (!seed && loss.size !== 1) throw new Error(`grad: loss must be a scalar, got ${loss}`);
  const tape = graph.tape;

  // Forward pass over the tape: which values depend on a parameter we differentiate for.
  const depends = new Set<string>(wrt.map((s) => s.name));
  const relevant: TapeEntry[] = [];
  for (const e of tape) {
    if (e.inputs.some((x) => depends.has(x.name))) {
      relevant.push(e);
      for (const y of e.outputs) depends.add(y.name);
    }
  }

  const grads = new Map<string, Sym>();
  grads.set(loss.name, seed ?? graph.untaped(() => op.expand(graph.scalar(1, loss.dtype), [...loss.shape])));

  graph.untaped(() => {
    for (let i = relevant.length - 1; i >= 0; i--) {
      const e = relevant[i];
      const outGrads = e.outputs.map((y) => grads.get(y.name) ?? null);
      if (outGrads.every((g) => g === null)) continue;
      const rule = RULES[e.op];
      if (!rule) throw new Error(`no gradient rule for op "${e.op}"`);
      const filled = outGrads.map((g, j) => g ?? zerosLike(e.outputs[j]));
      const inGrads = rule(filled, e);
      e.inputs.forEach((x, j) => {
        const gx = inGrads[j];
        if (!gx || !depends.has(x.name)) return;
        if (!sameShape(gx.shape, x.shape)) {
          throw new Error(`rule ${e.op}: gradient shape [${gx.shape}] does not match input ${x}`);
        }
        const prev = grads.get(x.name);
        grads.set(x.name, prev ? op.add(prev, gx) : gx);
      });
    }
  });

  return wrt.map((w) => grads.get(w.name) ?? graph.untaped(() => zerosLike(w)));
}
