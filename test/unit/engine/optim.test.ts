// AdamW and global-norm clipping as graph ops, against a host computation of PyTorch's
// formulas; the learning-rate schedules against their definitions.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../../main/engine/graph/graph.ts';
import * as op from '../../../main/engine/graph/ops.ts';
import { type AdamWHyper, SQUARES_ROW, adamw, clipByGlobalNorm, optimizerRanges, rangeOfConcatenation, sumOfSquares } from '../../../main/engine/optim/adamw.ts';
import { learningRate, makeSchedule, warmupStepsFromRatio } from '../../../main/engine/optim/schedule.ts';
import { CompiledGraph } from '../../../main/engine/runtime/session.ts';
import { CHECK_DTYPE, testDevice } from '../../helpers/device.ts';
import { rng } from '../../helpers/gradcheck.ts';

const dtype = CHECK_DTYPE as 'float32' | 'float64';
const TOL = dtype === 'float64' ? 1e-13 : 2e-6;

function tensor(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values), dims);
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])))) expect.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]}`);
  }
}

/**
 * One clipped AdamW update as a graph: (params, grad, m, v, lr, step) → (params, m, v, norm),
 * with AdamW applied to pieces of at most `maxPiece` values (the trainer's optimizer ranges).
 */
async function optimizerGraph(n: number, hp: AdamWHyper, foldClip = false, maxPiece = Number.POSITIVE_INFINITY): Promise<CompiledGraph> {
  const g = new Graph('adamw');
  const params = g.input('p', [n], dtype);
  const grad = g.input('g', [n], dtype);
  const m = g.input('m', [n], dtype);
  const v = g.input('v', [n], dtype);
  const lr = g.input('lr', [], dtype);
  const step = g.input('step', [], dtype);
  const clipped = clipByGlobalNorm(grad, hp.maxGradNorm);
  // foldClip: the trainer's way, the unclipped gradient with the coefficient as gradScale.
  const ranges = optimizerRanges([n], maxPiece);
  const cut = (x: typeof params) => ranges.map((r) => op.slice(x, 0, r.start, r.end));
  const state = { params: cut(params), m: cut(m), v: cut(v), lr, step };
  const next = foldClip ? adamw({ ...state, grads: cut(grad), gradScale: clipped.coef }, hp) : adamw({ ...state, grads: cut(clipped.grad) }, hp);
  g.output('p_out', op.concat(next.params, 0));
  g.output('m_out', op.concat(next.m, 0));
  g.output('v_out', op.concat(next.v, 0));
  g.output('norm', clipped.norm);
  return CompiledGraph.create(g, await testDevice());
}

/** torch.nn.utils.clip_grad_norm_ then torch.optim.AdamW.step, written out in float64. */
class HostAdamW {
  m: Float64Array;
  v: Float64Array;
  t = 0;
  constructor(
    public p: Float64Array,
    readonly hp: AdamWHyper,
  ) {
    this.m = new Float64Array(p.length);
    this.v = new Float64Array(p.length);
  }

  step(grad: ArrayLike<number>, lr: number): void {
    const norm = Math.sqrt(Array.from(grad).reduce((s, x) => s + x * x, 0));
    const coef = this.hp.maxGradNorm === null ? 1 : Math.min(1, this.hp.maxGradNorm / (norm + 1e-6));
    const [b1, b2] = this.hp.betas;
    this.t++;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    for (let i = 0; i < this.p.length; i++) {
      const g = grad[i] * coef;
      this.p[i] *= 1 - lr * this.hp.weightDecay;
      this.m[i] = b1 * this.m[i] + (1 - b1) * g;
      this.v[i] = b2 * this.v[i] + (1 - b2) * g * g;
      this.p[i] -= (lr / bc1) * (this.m[i] / (Math.sqrt(this.v[i]) / Math.sqrt(bc2) + this.hp.eps));
    }
  }
}

describe('AdamW', () => {
  it.each([
    ['unclipped', null, false, Number.POSITIVE_INFINITY],
    ['clipped, coefficient folded into the scalars', 0.5, true, Number.POSITIVE_INFINITY],
    ['clipped and folded, updated in three pieces', 0.5, true, 3],
  ] as const)('matches PyTorch AdamW (decoupled weight decay, bias correction) over several steps, %s', async (_, maxGradNorm, fold, maxPiece) => {
    const n = 7;
    const hp: AdamWHyper = { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1, maxGradNorm };
    const graph = await optimizerGraph(n, hp, fold, maxPiece);
    const random = rng(3);
    const p0 = Float64Array.from({ length: n }, () => random() * 2 - 1);
    const host = new HostAdamW(p0.slice(), hp);
    let p = tensor(p0, [n]);
    let m = tensor(new Float64Array(n), [n]);
    let v = tensor(new Float64Array(n), [n]);
    const lrs = [1e-2, 5e-3, 2e-2, 1e-3];
    for (let s = 0; s < lrs.length; s++) {
      // Different signs and scales per step, including an exact zero.
      const grad = Float64Array.from({ length: n }, (_, i) => (i === 2 ? 0 : (random() * 2 - 1) * 10 ** (i % 3 - 1)));
      const out = await graph.run({ p, g: tensor(grad, [n]), m, v, lr: tensor([lrs[s]], []), step: tensor([s + 1], []) });
      host.step(grad, lrs[s]);
      expectClose(out.p_out.data as Float64Array, host.p, TOL, `params after step ${s + 1}`);
      expectClose(out.m_out.data as Float64Array, host.m, TOL, `m after step ${s + 1}`);
      expectClose(out.v_out.data as Float64Array, host.v, TOL, `v after step ${s + 1}`);
      [p, m, v] = [out.p_out, out.m_out, out.v_out];
    }
    await graph.release();
  });

  it('first step moves each parameter by about lr against the sign of its gradient', async () => {
    const hp: AdamWHyper = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, maxGradNorm: null };
    const graph = await optimizerGraph(3, hp);
    const out = await graph.run({
      p: tensor([1, 1, 1], [3]),
      g: tensor([0.5, -3, 1e-3], [3]),
      m: tensor([0, 0, 0], [3]),
      v: tensor([0, 0, 0], [3]),
      lr: tensor([0.1], []),
      step: tensor([1], []),
    });
    expectClose(out.p_out.data as Float64Array, [0.9, 1.1, 0.9], dtype === 'float64' ? 1e-6 : 1e-5, 'params');
    await graph.release();
  });
});

describe('optimizer ranges', () => {
  const spans = (sizes: number[], max: number) => optimizerRanges(sizes, max).map((r) => [r.start, r.end]);

  it('groups neighbouring small parameters, cuts a large one into equal parts, and covers the buffer once', () => {
    expect(spans([2, 3, 4, 10, 1, 1], 5)).toEqual([
      [0, 5],
      [5, 9],
      [9, 14],
      [14, 19],
      [19, 21],
    ]);
    expect(spans([11], 5)).toEqual([
      [0, 4],
      [4, 7],
      [7, 11],
    ]);
    expect(spans([2, 3, 4], Number.POSITIVE_INFINITY)).toEqual([[0, 9]]);
    for (const max of [1, 2, 7, 64]) {
      const sizes = [5, 1, 1, 64, 3, 30, 2];
      const ranges = optimizerRanges(sizes, max);
      expect(ranges[0].start).toBe(0);
      expect(ranges.at(-1)!.end).toBe(sizes.reduce((a, b) => a + b));
      ranges.forEach((r, i) => {
        expect(r.end - r.start, `range ${i} with max ${max}`).toBeGreaterThan(0);
        expect(r.end - r.start).toBeLessThanOrEqual(max);
        if (i > 0) expect(r.start).toBe(ranges[i - 1].end);
      });
    }
  });

  it('cuts a range out of a concatenation from the parts it overlaps', async () => {
    const g = new Graph('ranges');
    const parts = [g.input('a', [3], dtype), g.input('b', [1], dtype), g.input('c', [4], dtype)];
    const wanted = [
      { start: 0, end: 3 },
      { start: 2, end: 6 },
      { start: 5, end: 7 },
      { start: 0, end: 8 },
    ];
    wanted.forEach((r, i) => g.output(`r${i}`, rangeOfConcatenation(parts, r)));
    const graph = await CompiledGraph.create(g, await testDevice());
    const all = [1, 2, 3, 4, 5, 6, 7, 8];
    const out = await graph.run({ a: tensor(all.slice(0, 3), [3]), b: tensor(all.slice(3, 4), [1]), c: tensor(all.slice(4), [4]) });
    wanted.forEach((r, i) => expect(Array.from(out[`r${i}`].data as Float64Array)).toEqual(all.slice(r.start, r.end)));
    await graph.release();
  });
});

describe('global-norm clipping', () => {
  const hp = (maxGradNorm: number | null): AdamWHyper => ({ betas: [0, 0.999], eps: 1e-8, weightDecay: 0, maxGradNorm });
  // With beta1 = 0 the m output is the clipped gradient itself.
  async function clip(grad: number[], maxNorm: number | null) {
    const graph = await optimizerGraph(grad.length, hp(maxNorm));
    const zeros = new Array<number>(grad.length).fill(0);
    const out = await graph.run({ p: tensor(zeros, [grad.length]), g: tensor(grad, [grad.length]), m: tensor(zeros, [grad.length]), v: tensor(zeros, [grad.length]), lr: tensor([0], []), step: tensor([1], []) });
    await graph.release();
    return { clipped: Array.from(out.m_out.data as Float64Array), norm: Number(out.norm.data[0]), finite: Number.isFinite(Number(out.norm.data[0])) };
  }

  it('scales a gradient above the limit to the limit and reports the norm before clipping', async () => {
    const r = await clip([3, -4, 0, 12], 1);
    expect(r.norm).toBeCloseTo(13, 5);
    const coef = 1 / (13 + 1e-6);
    expectClose(r.clipped, [3 * coef, -4 * coef, 0, 12 * coef], dtype === 'float64' ? 1e-14 : 1e-6, 'clipped');
    expect(r.finite).toBe(true);
  });

  it('sums a flat gradient\'s squares in rows of SQUARES_ROW and a tail: a few nodes, and float32 within 1e-6 of the exact sum', async () => {
    for (const n of [5 * SQUARES_ROW, 1_000_003]) {
      const g = new Graph('sum_sq');
      const x = g.input('x', [n], dtype);
      g.output('s', sumOfSquares([x]));
      // Slice, reshape, row sums, the tail's slice, sum and view as [1], their concatenation and the total (what ops.ts writes, before pruning).
      expect(g.nodes.length, `nodes for ${n} values`).toBeLessThanOrEqual(10);
      const random = rng(n);
      const values = Float64Array.from({ length: n }, () => (random() * 2 - 1) * 10 ** Math.floor(random() * 4 - 2));
      const input = tensor(values, [n]);
      const used = input.data as Float32Array | Float64Array;
      let exact = 0;
      for (const v of used) exact += v * v;
      const graph = await CompiledGraph.create(g, await testDevice());
      const got = Number((await graph.run({ x: input })).s.data[0]);
      await graph.release();
      expect(Math.abs(got - exact) / exact, `relative error for ${n} values`).toBeLessThan(dtype === 'float64' ? 1e-13 : 1e-6);
    }
  });

  it('leaves a gradient below the limit, or with no limit, unchanged', async () => {
    expectClose((await clip([0.3, -0.4], 1)).clipped, [0.3, -0.4], 1e-7, 'below the limit');
    const r = await clip([30, -40], null);
    expectClose(r.clipped, [30, -40], 1e-7, 'no limit');
    expect(r.norm).toBeCloseTo(50, 4);
  });

  it('flags a NaN or infinite gradient as not finite', async () => {
    expect((await clip([1, NaN, 2], 1)).finite).toBe(false);
    expect((await clip([1, Infinity], 1)).finite).toBe(false);
    expect((await clip([1, -Infinity], null)).finite).toBe(false);
  });
});

describe('learning-rate schedules', () => {
  it('constant, with and without linear warmup', () => {
    expect(learningRate({ kind: 'constant', lr: 0.1 }, 0)).toBe(0.1);
    const warm = makeSchedule({ kind: 'constant', lr: 0.1, warmupSteps: 4 });
    // Rising over warmup + 1 intervals: no update runs at lr 0, update 4 is the first at full rate.
    [0.02, 0.04, 0.06, 0.08, 0.1, 0.1].forEach((want, i) => expect(warm([0, 1, 2, 3, 4, 100][i])).toBeCloseTo(want, 15));
  });

  it('cosine with warmup decays from lr to the floor at totalSteps and stays there', () => {
    const spec = { kind: 'cosine' as const, lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
    expect(learningRate(spec, 0)).toBeCloseTo(1 / 11, 12);
    expect(learningRate(spec, 5)).toBeCloseTo(6 / 11, 12);
    // LambdaLR's ramp, as the built-in models were trained with.
    expect(learningRate({ ...spec, warmupFromZero: true }, 0)).toBe(0);
    expect(learningRate({ ...spec, warmupFromZero: true }, 5)).toBeCloseTo(0.5, 12);
    expect(learningRate({ ...spec, warmupFromZero: true }, 10)).toBeCloseTo(1, 12);
    expect(learningRate(spec, 10)).toBeCloseTo(1, 12);
    // Halfway through the decay: floor + (1 - floor) / 2.
    expect(learningRate(spec, 60)).toBeCloseTo(0.55, 12);
    // A quarter of the way: floor + (1 - floor) * (1 + cos(π/4)) / 2.
    expect(learningRate(spec, 35)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.SQRT1_2), 12);
    expect(learningRate(spec, 110)).toBeCloseTo(0.1, 12);
    expect(learningRate(spec, 500)).toBeCloseTo(0.1, 12);
    const noFloor = { kind: 'cosine' as const, lr: 2e-5, totalSteps: 100 };
    expect(learningRate(noFloor, 0)).toBeCloseTo(2e-5, 15);
    expect(learningRate(noFloor, 100)).toBeCloseTo(0, 15);
  });

  it('warmup from a ratio of the run, and actionable errors', () => {
    expect(warmupStepsFromRatio(0.03, 100)).toBe(3);
    // The default run (40 steps, 3% warmup: one warmup update) trains from its first step.
    const defaultRun = { kind: 'cosine' as const, lr: 1e-6, warmupSteps: warmupStepsFromRatio(0.03, 40), totalSteps: 40 };
    expect(learningRate(defaultRun, 0)).toBeCloseTo(0.5e-6, 18);
    expect(learningRate(defaultRun, 1)).toBeCloseTo(1e-6, 18);
    expect(warmupStepsFromRatio(0.03, 20)).toBe(0);
    expect(() => learningRate({ kind: 'cosine', lr: 1, totalSteps: 0 }, 0)).toThrow(/totalSteps/);
    expect(() => learningRate({ kind: 'constant', lr: -1 }, 0)).toThrow(/lr/);
    expect(() => learningRate({ kind: 'constant', lr: 1 }, 1.5)).toThrow(/step/);
  });
});
