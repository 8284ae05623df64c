// The on-device sampler draws from the distribution it claims: empirical token frequencies over
// many rows against softmax(logits / T), plain and truncated by top-k / top-p.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GeneratedSample, Generator } from '../../../main/engine/generate/generator.ts';
import { type SamplingSettings, blockSize, sampleFromLogits, samplingMode } from '../../../main/engine/generate/sampler.ts';
import { Graph } from '../../../main/engine/graph/graph.ts';
import { CompiledGraph, cpuTensor } from '../../../main/engine/runtime/session.ts';
import { rng } from '../../helpers/gradcheck.ts';
import { testDevice } from '../../helpers/device.ts';
import { randomWeights, tinyConfig } from './generate-fixtures.ts';

/** The distribution the sampler should draw from, computed on the host in float64. */
function target(logits: Float32Array, temperature: number, topK: number, topP: number): Float64Array {
  const V = logits.length;
  const z = Array.from(logits, (x) => x / temperature);
  const order = z.map((_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
  const k = topK > 0 ? Math.min(topK, V) : V;
  const top = order.slice(0, k);
  const m = z[top[0]];
  const w = top.map((i) => Math.exp(z[i] - m));
  const total = w.reduce((a, b) => a + b, 0);
  const q = new Float64Array(V);
  let before = 0;
  for (let r = 0; r < k; r++) {
    const p = w[r] / total;
    if (!(before < topP)) break;
    q[top[r]] = p;
    before += p;
  }
  const kept = q.reduce((a, b) => a + b, 0);
  return q.map((x) => x / kept);
}

/**
 * Pearson's statistic of observed against expected counts summed over independent draws from
 * varying distributions; cells with expected count < 5 are pooled. Returns it with its
 * degrees of freedom.
 */
function chiSquare(observed: Float64Array, expected: Float64Array): { stat: number; df: number } {
  let stat = 0;
  let cells = 0;
  let poolO = 0;
  let poolE = 0;
  for (let i = 0; i < observed.length; i++) {
    if (expected[i] < 5) {
      poolO += observed[i];
      poolE += expected[i];
      continue;
    }
    stat += (observed[i] - expected[i]) ** 2 / expected[i];
    cells++;
  }
  if (poolE > 0) {
    stat += (poolO - poolE) ** 2 / Math.max(poolE, 1);
    cells++;
  }
  return { stat, df: cells - 1 };
}

/** A bound the statistic exceeds with negligible probability (about 6 sigma of chi-square(df)). */
const bound = (df: number) => df + 6 * Math.sqrt(2 * df);

describe('empirical sampling frequencies', () => {
  // a prime vocabulary, so the sampler's blocked search pads its last block
  const config = tinyConfig({ vocabSize: 29 });
  const V = config.vocabSize;
  let gen: Generator;
  beforeAll(async () => {
    gen = await Generator.create({ config, weights: randomWeights(config, 5), device: await testDevice(), maxLength: 16 });
  });
  afterAll(async () => gen.release());

  async function draws(temperature: number, topK: number, topP: number, seed: number): Promise<GeneratedSample[]> {
    const { samples } = await gen.generate({
      promptIds: [[1, 2, 3], [7], [20, 4, 9, 9, 13]],
      samplesPerPrompt: 600,
      maxNewTokens: 3,
      temperature,
      topK,
      topP,
      seed,
      eosTokenIds: [],
      returnLogits: true,
    });
    return samples;
  }

  function tally(samples: GeneratedSample[], temperature: number, topK: number, topP: number) {
    const observed = new Float64Array(V);
    const expected = new Float64Array(V);
    let outside = 0;
    for (const s of samples) {
      s.tokenIds.forEach((tok, t) => {
        const q = target(s.logits![t], temperature, topK, topP);
        observed[tok]++;
        q.forEach((x, i) => (expected[i] += x));
        if (q[tok] === 0) outside++;
      });
    }
    return { observed, expected, outside };
  }

  it.each([
    ['plain, T = 0.7', 0.7, 0, 1],
    ['plain, T = 1.5', 1.5, 0, 1],
    ['top-k 4', 1, 4, 1],
    ['top-p 0.6', 1, 0, 0.6],
    ['top-k 6 then top-p 0.9, T = 0.8', 0.8, 6, 0.9],
  ])('%s', async (_name, temperature, topK, topP) => {
    const samples = await draws(temperature, topK, topP, 100 + topK);
    const { observed, expected, outside } = tally(samples, temperature, topK, topP);
    expect(outside, 'tokens drawn outside the top-k / top-p set').toBe(0);
    const { stat, df } = chiSquare(observed, expected);
    expect(df).toBeGreaterThan(2);
    expect(stat, `chi-square ${stat.toFixed(1)} with ${df} degrees of freedom`).toBeLessThan(bound(df));
    // the check has power: the same draws against the untempered / untruncated distribution fail
    const wrong = tally(samples, temperature === 1 ? 1.6 : 1, 0, 1);
    const w = chiSquare(observed, wrong.expected);
    expect(w.stat, 'chi-square against a wrong distribution').toBeGreaterThan(bound(w.df));
  });
});

it('searches in blocks of about √n that divide n where one is near enough, so nothing is padded', () => {
  expect([151936, 128256, 32000, 1000].map(blockSize)).toEqual([128, 256, 256, 8]);
  // A prime: padded to whole blocks of a power of two near its root.
  expect(blockSize(1009)).toBe(32);
});

// 1,000 = 8 · 125 is searched in blocks that divide it; 1,009 (prime) in padded ones.
describe.each([1000, 1009])('the sampler graph on a large vocabulary (%i tokens)', (V) => {
  const B = 300;

  /** Run the sampler on random logits with the given uniforms. */
  async function sample(settings: SamplingSettings, logits: Float32Array, uniforms: Float32Array) {
    const g = new Graph('sampler');
    const z = g.input('logits', [B, V]);
    const inputs = { uniforms: g.input('u', [B]), inverseTemperature: g.input('inv_t', [1]), topP: g.input('top_p', [1]) };
    const out = sampleFromLogits(z, samplingMode(settings, V), inputs);
    g.output('token', out.token);
    g.output('logprob', out.logprob);
    const compiled = await CompiledGraph.create(g, await testDevice());
    const r = await compiled.run({
      logits: cpuTensor(logits, [B, V]),
      u: cpuTensor(uniforms, [B]),
      inv_t: cpuTensor(Float32Array.of(1 / (settings.temperature || 1)), [1]),
      top_p: cpuTensor(Float32Array.of(settings.topP >= 1 ? 2 : settings.topP), [1]),
    });
    await compiled.release();
    return { token: r.token.data as Int32Array, logprob: r.logprob.data as Float32Array };
  }

  it.each([
    ['plain', { temperature: 0.8, topK: 0, topP: 1 }],
    ['top-k 50', { temperature: 1, topK: 50, topP: 1 }],
    ['top-p 0.7', { temperature: 1.2, topK: 0, topP: 0.7 }],
  ] as [string, SamplingSettings][])('%s: the token is the inverse CDF of the uniform', async (_name, settings) => {
    const random = rng(31);
    const logits = Float32Array.from({ length: B * V }, () => 4 * (random() - 0.5) + (random() < 0.01 ? 6 : 0));
    const uniforms = Float32Array.from({ length: B }, () => Math.floor(random() * 2 ** 24) / 2 ** 24);
    const { token } = await sample(settings, logits, uniforms);
    let checked = 0;
    for (let b = 0; b < B; b++) {
      const q = target(logits.subarray(b * V, (b + 1) * V), settings.temperature, settings.topK, settings.topP);
      // host inverse CDF in float64, vocabulary order; skip draws within rounding of a boundary
      const x = uniforms[b];
      let c = 0;
      let expected = -1;
      let nearBoundary = false;
      for (let i = 0; i < V; i++) {
        if (q[i] === 0) continue;
        if (Math.abs(c + q[i] - x) < 1e-5) nearBoundary = true;
        c += q[i];
        if (expected < 0 && c > x) expected = i;
      }
      if (nearBoundary) continue;
      expect(token[b], `row ${b}`).toBe(expected);
      checked++;
    }
    expect(checked).toBeGreaterThan(B * 0.9);
  });
});
