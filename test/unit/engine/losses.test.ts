// The training losses against hand computations of their definitions (METHODS.md, verl), and
// their gradients against finite differences.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { grad } from '../../../main/engine/graph/autodiff.ts';
import { Graph, type Sym } from '../../../main/engine/graph/graph.ts';
import { k3Kl, maskedMean, policyLoss, sftLoss, tokenEntropy, tokenLogprobs, valueHead, valueLoss } from '../../../main/engine/nn/losses.ts';
import { CompiledGraph } from '../../../main/engine/runtime/session.ts';
import { CHECK_DTYPE, testDevice } from '../../helpers/device.ts';
import { gradcheck, rng } from '../../helpers/gradcheck.ts';

const dtype = CHECK_DTYPE as 'float32' | 'float64';
const TOL = dtype === 'float64' ? 1e-12 : 1e-5;

function tensor(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values), dims);
}

/** Build, compile and run a graph once; returns every output as numbers. */
async function evaluate(
  inputs: Record<string, { values: ArrayLike<number>; dims: number[]; int?: boolean }>,
  build: (x: Record<string, Sym>) => Record<string, Sym>,
): Promise<Record<string, number[]>> {
  const g = new Graph('loss');
  const syms = Object.fromEntries(Object.entries(inputs).map(([name, i]) => [name, g.input(name, i.dims, i.int ? 'int32' : dtype)]));
  for (const [name, s] of Object.entries(build(syms))) g.output(name, s);
  const compiled = await CompiledGraph.create(g, await testDevice());
  const feeds = Object.fromEntries(
    Object.entries(inputs).map(([name, i]) => [name, i.int ? new ort.Tensor('int32', Int32Array.from(i.values), i.dims) : tensor(i.values, i.dims)]),
  );
  const out = await compiled.run(feeds);
  await compiled.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as Float64Array, Number)]));
}

function expectClose(got: number[], want: number[], what: string, tol = TOL): void {
  expect(got.length, what).toBe(want.length);
  want.forEach((w, i) => {
    if (!(Math.abs(got[i] - w) <= tol * Math.max(1, Math.abs(w)))) expect.fail(`${what}[${i}]: got ${got[i]}, expected ${w}`);
  });
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

describe('token log-probs and the supervised loss', () => {
  it('picks log softmax(logits / T) of each target', async () => {
    const [B, T, V] = [2, 3, 5];
    const random = rng(4);
    const logits = Array.from({ length: B * T * V }, () => 4 * random() - 2);
    const targets = [4, 0, 2, 1, 3, 3];
    for (const temperature of [1, 0.6]) {
      const out = await evaluate(
        { logits: { values: logits, dims: [B, T, V] }, targets: { values: targets, dims: [B, T], int: true } },
        (x) => ({ lp: tokenLogprobs(x.logits, x.targets, temperature) }),
      );
      const want = targets.map((y, r) => {
        const z = logits.slice(r * V, (r + 1) * V).map((l) => l / temperature);
        const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
        return z[y] - lse;
      });
      expectClose(out.lp, want, `log-probs at T=${temperature}`);
    }
  });

  it('averages the negative log-likelihood over unmasked tokens only, and an empty mask gives 0', async () => {
    const lp = [-1, -2, -3, -40, -0.5, -7];
    const mask = [1, 1, 0, 0, 1, 0];
    const out = await evaluate({ lp: { values: lp, dims: [2, 3] }, mask: { values: mask, dims: [2, 3] }, none: { values: [0, 0, 0, 0, 0, 0], dims: [2, 3] } }, (x) => ({
      loss: sftLoss(x.lp, x.mask).loss,
      empty: maskedMean(x.lp, x.none),
    }));
    expectClose(out.loss, [(1 + 2 + 0.5) / 3], 'loss');
    expectClose(out.empty, [0], 'empty mask');
  });
});

interface PolicyCase {
  lp: number[];
  old: number[];
  ref: number[];
  adv: number[];
  mask: number[];
}

/** verl's compute_policy_loss (vanilla, token-mean) and low_var_kl, written out. */
function hostPolicy(c: PolicyCase, T: number, clipLow: number, clipHigh: number, klCoef: number) {
  let pg = 0;
  let clipped = 0;
  let ppoKl = 0;
  let kl = 0;
  let count = 0;
  c.lp.forEach((lp, i) => {
    if (!c.mask[i]) return;
    const logRatio = clamp(lp - c.old[i], -20, 20);
    const r = Math.exp(logRatio);
    // One advantage per sequence, or (OPID's dense signal) one per token.
    const a = c.adv.length === c.lp.length ? c.adv[i] : c.adv[Math.floor(i / T)];
    const l1 = -a * r;
    const l2 = -a * clamp(r, 1 - clipLow, 1 + clipHigh);
    pg += Math.max(l1, l2);
    clipped += l2 > l1 ? 1 : 0;
    ppoKl += -logRatio;
    const d = clamp(c.ref[i] - lp, -20, 20);
    kl += clamp(Math.exp(d) - d - 1, -10, 10);
    count++;
  });
  const n = Math.max(1, count);
  return { loss: pg / n + klCoef * (kl / n), pgLoss: pg / n, clipRatio: clipped / n, ppoKl: ppoKl / n, kl: kl / n };
}

describe('policy loss', () => {
  // Ratios inside and outside [1 - ε, 1 + ε] for positive and negative advantages, a k3 term
  // that hits its clamp, and masked positions with wild values that must not count.
  const T = 4;
  const c: PolicyCase = {
    lp: [-1.0, -2.0, -0.5, -30, -1.2, -0.7, -3.0, -2.2],
    old: [-1.0, -2.5, -0.2, 0, -1.0, -1.4, -2.9, -1.0],
    ref: [-1.1, -1.5, -0.5, 50, -20, -0.7, -3.5, -2.0],
    adv: [1.5, -0.7],
    mask: [1, 1, 1, 0, 1, 1, 1, 0],
  };
  const inputs = {
    lp: { values: c.lp, dims: [2, T] },
    old: { values: c.old, dims: [2, T] },
    ref: { values: c.ref, dims: [2, T] },
    adv: { values: c.adv, dims: [2] },
    mask: { values: c.mask, dims: [2, T] },
  };

  it('computes the clipped objective, clip ratio, ppo_kl and k3 KL as verl does', async () => {
    for (const [clipLow, clipHigh, klCoef] of [[0.2, 0.2, 0.001], [0.2, 0.28, 0.5], [0.1, 0.1, 0]]) {
      const out = await evaluate(inputs, (x) => {
        const r = policyLoss({ logprobs: x.lp, oldLogprobs: x.old, advantages: x.adv, mask: x.mask, refLogprobs: x.ref }, { clipLow, clipHigh, klCoef });
        return { loss: r.loss, pgLoss: r.pgLoss, clipRatio: r.clipRatio, ppoKl: r.ppoKl, kl: r.kl };
      });
      const want = hostPolicy(c, T, clipLow, clipHigh, klCoef);
      expectClose(out.pgLoss, [want.pgLoss], `pg_loss (ε ${clipLow}/${clipHigh})`);
      expectClose(out.clipRatio, [want.clipRatio], 'clip_ratio');
      expectClose(out.ppoKl, [want.ppoKl], 'ppo_kl');
      expectClose(out.kl, [klCoef === 0 ? 0 : want.kl], 'kl');
      expectClose(out.loss, [klCoef === 0 ? want.pgLoss : want.loss], 'loss');
    }
    // The case really exercises both sides: some tokens are clipped, some are not.
    const h = hostPolicy(c, T, 0.2, 0.2, 0);
    expect(h.clipRatio).toBeGreaterThan(0);
    expect(h.clipRatio).toBeLessThan(1);
  });

  it('takes one advantage per token ([B, T]) as well, each token weighted by its own', async () => {
    const perToken: PolicyCase = { ...c, adv: [1.5, -0.2, 0.7, 9, -0.7, 2.0, -1.1, 9] };
    const tokenInputs = { ...inputs, adv: { values: perToken.adv, dims: [2, T] } };
    const out = await evaluate(tokenInputs, (x) => {
      const r = policyLoss({ logprobs: x.lp, oldLogprobs: x.old, advantages: x.adv, mask: x.mask, refLogprobs: x.ref }, { clipLow: 0.2, clipHigh: 0.28, klCoef: 0.5 });
      return { loss: r.loss, pgLoss: r.pgLoss, clipRatio: r.clipRatio };
    });
    const want = hostPolicy(perToken, T, 0.2, 0.28, 0.5);
    expectClose(out.pgLoss, [want.pgLoss], 'pg_loss, per-token advantages');
    expectClose(out.clipRatio, [want.clipRatio], 'clip_ratio, per-token advantages');
    expectClose(out.loss, [want.loss], 'loss, per-token advantages');
    // Broadcasting each sequence's advantage over its tokens gives the per-sequence loss.
    const broadcast = { ...inputs, adv: { values: [1.5, 1.5, 1.5, 1.5, -0.7, -0.7, -0.7, -0.7], dims: [2, T] } };
    const same = await evaluate(broadcast, (x) => ({ pg: policyLoss({ logprobs: x.lp, oldLogprobs: x.old, advantages: x.adv, mask: x.mask }, { clipLow: 0.2, clipHigh: 0.2, klCoef: 0 }).pgLoss }));
    expectClose(same.pg, [hostPolicy(c, T, 0.2, 0.2, 0).pgLoss], 'pg_loss, broadcast');
    await expect(
      evaluate({ ...inputs, adv: { values: [1, 2, 3, 4, 5, 6], dims: [2, 3] } }, (x) => ({ pg: policyLoss({ logprobs: x.lp, oldLogprobs: x.old, advantages: x.adv, mask: x.mask }, { clipLow: 0.2, clipHigh: 0.2, klCoef: 0 }).pgLoss })),
    ).rejects.toThrow('per-token advantages are [2, 3], the log-probs [2, 4]');
  });

  it('k3 is exp(ref − logp) − (ref − logp) − 1, non-negative, clamped to [−10, 10]', async () => {
    const lp = [-1, -1, -1, -1, 0];
    const ref = [-1, -1.5, 0.5, 30, -40];
    const out = await evaluate({ lp: { values: lp, dims: [5] }, ref: { values: ref, dims: [5] } }, (x) => ({ k3: k3Kl(x.lp, x.ref) }));
    const want = lp.map((l, i) => {
      const d = clamp(ref[i] - l, -20, 20);
      return clamp(Math.exp(d) - d - 1, -10, 10);
    });
    expectClose(out.k3, want, 'k3');
    expect(out.k3[0]).toBe(0);
    expect(out.k3[3]).toBe(10);
    // exp(-20) + 20 - 1 ≈ 19 before the clamp.
    expect(out.k3[4]).toBe(10);
  });

  it('its gradient with respect to the log-probs matches finite differences', async () => {
    // Away from the clip boundaries, where the objective is smooth.
    const g = (s: Sym, values: number[], dims: number[]) => s.graph.constant(values, dims, s.dtype);
    const lp = [-1.0, -2.0, -0.5, -0.9, -1.2, -0.7, -3.0, -2.2];
    for (const klCoef of [0, 0.3]) {
      await gradcheck(
        (x) =>
          policyLoss(
            { logprobs: x, oldLogprobs: g(x, c.old, [2, T]), advantages: g(x, c.adv, [2]), mask: g(x, c.mask, [2, T]), refLogprobs: g(x, c.ref.map((r) => Math.max(r, -5)), [2, T]) },
            { clipLow: 0.2, clipHigh: 0.2, klCoef },
          ).loss,
        [{ name: 'lp', shape: [2, T], values: lp }],
      );
    }
  });

  it('a clipped token passes no gradient; an unclipped one passes −A·ratio', async () => {
    // Token 0: ratio e^0.5 > 1.2 with A > 0 → clipped. Token 1: ratio 1 → gradient −A·1 / count.
    const out = await (async () => {
      const gr = new Graph('pg-grad');
      const lp = gr.input('lp', [1, 2], dtype);
      const r = policyLoss(
        { logprobs: lp, oldLogprobs: gr.constant([-1.5, -1], [1, 2], dtype), advantages: gr.constant([2], [1], dtype), mask: gr.constant([1, 1], [1, 2], dtype) },
        { clipLow: 0.2, clipHigh: 0.2, klCoef: 0 },
      );
      gr.output('d', grad(r.loss, [lp])[0]);
      const compiled = await CompiledGraph.create(gr, await testDevice());
      const res = await compiled.run({ lp: tensor([-1, -1], [1, 2]) });
      await compiled.release();
      return Array.from(res.d.data as Float64Array, Number);
    })();
    expectClose(out, [0, -2 / 2], 'd loss / d logp');
  });
});

describe('entropy term of the policy loss', () => {
  const [B, T, V] = [2, 3, 5];
  const random = rng(11);
  const logits = Array.from({ length: B * T * V }, () => 3 * random() - 1.5);
  const targets = [4, 0, 2, 1, 3, 3];
  const mask = [1, 1, 0, 1, 0, 1];
  const old = [-1.2, -1.9, -0.4, -2.0, -1.1, -1.6];
  const adv = [0.8, -1.1];
  const hostEntropy = (temperature: number) =>
    Array.from({ length: B * T }, (_, r) => {
      const z = logits.slice(r * V, (r + 1) * V).map((l) => l / temperature);
      const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
      return -z.reduce((s, v) => s + Math.exp(v - lse) * (v - lse), 0);
    });

  it('tokenEntropy is −Σ p log p of softmax(logits / T) at each position', async () => {
    for (const temperature of [1, 0.7]) {
      const out = await evaluate({ logits: { values: logits, dims: [B, T, V] } }, (x) => ({ h: tokenEntropy(x.logits, temperature) }));
      expectClose(out.h, hostEntropy(temperature), `entropy at T=${temperature}`);
    }
  });

  it('loss = pg_loss − c · masked mean entropy, for a bonus (c > 0) and for minimisation (c < 0)', async () => {
    const h = hostEntropy(1);
    const meanH = h.reduce((s, v, i) => s + v * mask[i], 0) / mask.reduce((a, b) => a + b, 0);
    for (const entropyCoef of [0.05, -0.3, 0]) {
      const out = await evaluate(
        {
          logits: { values: logits, dims: [B, T, V] },
          targets: { values: targets, dims: [B, T], int: true },
          old: { values: old, dims: [B, T] },
          adv: { values: adv, dims: [B] },
          mask: { values: mask, dims: [B, T] },
        },
        (x) => {
          const r = policyLoss(
            { logprobs: tokenLogprobs(x.logits, x.targets), oldLogprobs: x.old, advantages: x.adv, mask: x.mask, entropy: tokenEntropy(x.logits) },
            { clipLow: 0.2, clipHigh: 0.2, klCoef: 0, entropyCoef },
          );
          return { loss: r.loss, pgLoss: r.pgLoss, entropy: r.entropy };
        },
      );
      expectClose(out.entropy, [meanH], `mean entropy (c ${entropyCoef})`);
      expectClose(out.loss, [out.pgLoss[0] - entropyCoef * meanH], `loss (c ${entropyCoef})`);
    }
  });

  it('needs the entropies when the coefficient is not 0', () => {
    const gr = new Graph('no-entropy');
    const lp = gr.input('lp', [1, 2], dtype);
    const c = (v: number[], d: number[]) => gr.constant(v, d, dtype);
    expect(() => policyLoss({ logprobs: lp, oldLogprobs: c([0, 0], [1, 2]), advantages: c([1], [1]), mask: c([1, 1], [1, 2]) }, { clipLow: 0.2, clipHigh: 0.2, klCoef: 0, entropyCoef: -0.1 })).toThrow(/entropy/);
  });

  it('its gradient with respect to the logits matches finite differences (entropy through the softmax)', async () => {
    const hostLogprobs = targets.map((y, r) => {
      const z = logits.slice(r * V, (r + 1) * V);
      return z[y] - Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    });
    for (const entropyCoef of [-0.5, 0.2]) {
      await gradcheck(
        (x, y) => {
          const k = (v: number[], d: number[]) => x.graph.constant(v, d, x.dtype);
          // Old = the log-probs at the checked point (ratio 1, as on-policy): inside the clip range.
          return policyLoss(
            { logprobs: tokenLogprobs(x, y), oldLogprobs: k(hostLogprobs, [B, T]), advantages: k(adv, [B]), mask: k(mask, [B, T]), entropy: tokenEntropy(x) },
            { clipLow: 0.2, clipHigh: 0.2, klCoef: 0, entropyCoef },
          ).loss;
        },
        [
          { name: 'logits', shape: [B, T, V], values: logits },
          { name: 'targets', shape: [B, T], values: targets, int: true },
        ],
      );
    }
  });

  it('minimising entropy alone (zero advantages, c < 0) moves the logits towards the most likely token', async () => {
    const gr = new Graph('entropy-grad');
    const x = gr.input('logits', [1, 1, 3], dtype);
    const k = (v: number[], d: number[]) => gr.constant(v, d, dtype);
    const r = policyLoss(
      { logprobs: tokenLogprobs(x, gr.constant([0], [1, 1], 'int32')), oldLogprobs: k([0], [1, 1]), advantages: k([0], [1]), mask: k([1], [1, 1]), entropy: tokenEntropy(x) },
      { clipLow: 0.2, clipHigh: 0.2, klCoef: 0, entropyCoef: -1 },
    );
    gr.output('d', grad(r.loss, [x])[0]);
    const compiled = await CompiledGraph.create(gr, await testDevice());
    const res = await compiled.run({ logits: tensor([2, 0, -1], [1, 1, 3]) });
    await compiled.release();
    const d = Array.from(res.d.data as Float64Array, Number);
    // Gradient descent raises the top logit and lowers the others.
    expect(d[0]).toBeLessThan(0);
    expect(d[2]).toBeGreaterThan(0);
  });
});

describe('the critic: value head and clipped value loss', () => {
  // Clip range 0.5. Token 0 moves inside the range (no clip), token 1 past V + c towards its
  // return (the clipped term is the larger: clipped), token 2 past V + c away from it (the
  // unclipped term is larger), token 3 is masked with wild values, token 4 past V − c (clipped),
  // token 5 inside the range.
  const v = [0.5, 0.9, 0.9, 100, 0.3, 0.2];
  const V = [0.2, 0, 0, -50, 1, 0.5];
  const R = [1, 1, -1, 77, 0, 0.5];
  const mask = [1, 1, 1, 0, 1, 1];
  const io = { v: { values: v, dims: [2, 3] }, V: { values: V, dims: [2, 3] }, R: { values: R, dims: [2, 3] }, mask: { values: mask, dims: [2, 3] } };

  /** verl's compute_value_loss (token-mean), written out. */
  function hostValueLoss(c: number) {
    let sum = 0;
    let clipped = 0;
    let vsum = 0;
    let n = 0;
    v.forEach((p, i) => {
      if (!mask[i]) return;
      const pc = Math.max(Math.min(p, V[i] + c), V[i] - c);
      const l1 = (p - R[i]) ** 2;
      const l2 = (pc - R[i]) ** 2;
      sum += Math.max(l1, l2);
      clipped += l2 > l1 ? 1 : 0;
      vsum += p;
      n++;
    });
    return { loss: (0.5 * sum) / n, clipfrac: clipped / n, vpredMean: vsum / n };
  }

  it('is ½ · token mean of max((v − R)², (clip(v, V ± c) − R)²), with vf_clipfrac and vpred_mean as verl logs them', async () => {
    // By hand: maxima 0.25, 0.25, 3.61, 0.25, 0.09 over 5 tokens → ½ · 4.45 / 5 = 0.445; 2 of 5 clipped; mean v = 2.8 / 5.
    const want = hostValueLoss(0.5);
    expect(want.loss).toBeCloseTo(0.445, 12);
    expect(want.clipfrac).toBeCloseTo(0.4, 12);
    expect(want.vpredMean).toBeCloseTo(0.56, 12);
    for (const c of [0.5, 0.05, 10]) {
      const out = await evaluate(io, (x) => {
        const r = valueLoss({ vpreds: x.v, returns: x.R, values: x.V, mask: x.mask }, c);
        return { loss: r.loss, clipfrac: r.clipfrac, vpredMean: r.vpredMean };
      });
      const h = hostValueLoss(c);
      expectClose(out.loss, [h.loss], `vf_loss (c ${c})`);
      expectClose(out.clipfrac, [h.clipfrac], `vf_clipfrac (c ${c})`);
      expectClose(out.vpredMean, [h.vpredMean], `vpred_mean (c ${c})`);
    }
    expect(() => valueLoss({ vpreds: new Graph('x').input('v', [1], dtype), returns: new Graph('x').input('v', [1], dtype), values: new Graph('x').input('v', [1], dtype), mask: new Graph('x').input('v', [1], dtype) }, 0)).toThrow(
      /clip range must be > 0/,
    );
  });

  it('a clipped token passes no gradient; an unclipped one passes (v − R) / count', async () => {
    const gr = new Graph('vf-grad');
    const vp = gr.input('v', [2, 3], dtype);
    const k = (values: number[]) => gr.constant(values, [2, 3], dtype);
    const r = valueLoss({ vpreds: vp, returns: k(R), values: k(V), mask: k(mask) }, 0.5);
    gr.output('d', grad(r.loss, [vp])[0]);
    const compiled = await CompiledGraph.create(gr, await testDevice());
    const res = await compiled.run({ v: tensor(v, [2, 3]) });
    await compiled.release();
    expectClose(Array.from(res.d.data as Float64Array, Number), [(0.5 - 1) / 5, 0, (0.9 + 1) / 5, 0, 0, (0.2 - 0.5) / 5], 'd vf_loss / d v');
  });

  it('its gradient through the value head (weight, bias, hidden states) matches finite differences', async () => {
    const [B, T, H] = [2, 3, 4];
    const random = rng(11);
    const hidden = Array.from({ length: B * T * H }, () => 2 * random() - 1);
    const weight = [0.3, -0.6, 0.2, 0.5];
    const bias = [0.1];
    const vpred = Array.from({ length: B * T }, (_, p) => bias[0] + weight.reduce((s, w, j) => s + w * hidden[p * H + j], 0));
    // Old values 0.1 off (inside the clip range 0.3) or 0.8 off (outside), returns on either
    // side, so both terms of the max are active somewhere and no prediction sits on a boundary.
    const offsets = [0.1, -0.8, 0.8, -0.1, -0.8, 0.8];
    const returnOffsets = [0.6, 1, -2, -0.4, -2, -1];
    const values = vpred.map((p, i) => p + offsets[i]);
    const returns = vpred.map((p, i) => p + returnOffsets[i]);
    const m = [1, 1, 1, 1, 1, 0];
    await gradcheck(
      (h, w, b) => {
        const k = (xs: number[]) => h.graph.constant(xs, [B, T], h.dtype);
        return valueLoss({ vpreds: valueHead(h, w, b), returns: k(returns), values: k(values), mask: k(m) }, 0.3).loss;
      },
      [
        { name: 'hidden', shape: [B, T, H], values: hidden },
        { name: 'weight', shape: [1, H], values: weight },
        { name: 'bias', shape: [1], values: bias },
      ],
    );
    // The case has clipped and unclipped tokens.
    const host = vpred.map((p, i) => {
      const pc = Math.max(Math.min(p, values[i] + 0.3), values[i] - 0.3);
      return (pc - returns[i]) ** 2 > (p - returns[i]) ** 2;
    });
    expect(host.filter((c, i) => c && m[i]).length).toBeGreaterThan(0);
    expect(host.filter((c, i) => !c && m[i]).length).toBeGreaterThan(0);
    expect(() => valueHead(new Graph('x').input('h', [B, T, H], dtype), new Graph('x').input('w', [H], dtype), new Graph('x').input('b', [1], dtype))).toThrow(/need a \[1, 4\] weight/);
  });
});
