// Generation: the KV-cached decode against a full forward, generation log-probs against the
// training-style computation, the sampler's statistics, stopping, and the shared prefill.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GeneratedSample, Generator } from '../../../main/engine/generate/generator.ts';
import type { LlamaConfig } from '../../../main/engine/nn/config.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import type { Device } from '../../../main/engine/runtime/devices.ts';
import { DeviceTransfer, FrozenWeights, ParameterStore } from '../../../main/engine/runtime/parameter-store.ts';
import { HostWeights, type WeightBinding } from '../../../main/engine/runtime/weights.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { charTokenizer, hostStats, maxAbsDiff, randomWeights, referenceLogprobs, tinyConfig } from './generate-fixtures.ts';

const TOL = 1e-4;

// Prompts of different lengths, so left padding, position ids and the masks are exercised.
const PROMPTS = [
  [3, 17, 5, 9, 22, 1, 30],
  [8],
  [12, 4, 4, 39, 0, 27, 6, 11, 2, 19, 33],
];

async function checkAgainstReference(config: LlamaConfig, weights: WeightBinding, device: Device, samples: GeneratedSample[], temperature: number, prompts = PROMPTS) {
  const seqs = samples.map((s) => ({ prompt: prompts[s.promptIndex], generated: s.tokenIds }));
  const ref = await referenceLogprobs(config, weights, device, seqs, temperature);
  let worstLogprob = 0;
  let worstLogits = 0;
  let worstStats = 0;
  samples.forEach((s, i) => {
    expect(s.logprobs).toHaveLength(s.tokenIds.length);
    worstLogprob = Math.max(worstLogprob, maxAbsDiff(s.logprobs, ref.logprobs[i]));
    s.tokenIds.forEach((_, t) => {
      worstLogits = Math.max(worstLogits, maxAbsDiff(s.logits![t], ref.logits[i][t]));
      const h = hostStats(ref.logits[i][t], temperature);
      worstStats = Math.max(worstStats, Math.abs(s.entropies[t] - h.entropy), Math.abs(s.selfCertainties[t] - h.selfCertainty));
    });
  });
  console.log(
    `generation vs training on ${device.name}, T=${temperature}: max |Δ log-prob| ${worstLogprob.toExponential(2)}, max |Δ logit| ${worstLogits.toExponential(2)}`,
  );
  expect(worstLogits, 'decode logits vs full forward').toBeLessThanOrEqual(TOL);
  expect(worstLogprob, 'generation log-probs vs training-style log-probs').toBeLessThanOrEqual(TOL);
  expect(worstStats, 'entropy and self-certainty').toBeLessThanOrEqual(TOL);
}

describe.each([
  ['llama with grouped KV heads', tinyConfig()],
  ['qwen-style: q/k/v biases, q/k norm, tied embeddings', tinyConfig({ architecture: 'qwen3', attentionBias: true, qkNorm: true, tieWordEmbeddings: true, numKvHeads: 4 })],
  // GroupQueryAttention takes head sizes that are multiples of 8: this one stays the composite on WebGPU.
  ['head size 4', tinyConfig({ hiddenSize: 16, headDim: 4 })],
  // From 16 on, GroupQueryAttention also rotates q and k itself (at the slot positions a device cache uses).
  ['head size 16', tinyConfig({ hiddenSize: 64, headDim: 16 })],
  // q/k norms sit between the products and the rotation the node does (q, k, v are then not packed).
  ['qwen3-style at head size 16', tinyConfig({ architecture: 'qwen3', hiddenSize: 64, headDim: 16, qkNorm: true, tieWordEmbeddings: true })],
])('generation on %s', (_name, config) => {
  let device: Device;
  let weights: WeightBinding;
  let gen: Generator;
  beforeAll(async () => {
    device = await testDevice();
    weights = randomWeights(config);
    gen = await Generator.create({ config, weights, device, maxLength: 64 });
  });
  afterAll(async () => gen.release());

  it('cached decode and generation log-probs match a full training-style forward', async () => {
    const { samples, stats } = await gen.generate({ promptIds: PROMPTS, samplesPerPrompt: 3, maxNewTokens: 9, temperature: 0.7, seed: 1, eosTokenIds: [], returnLogits: true });
    expect(samples).toHaveLength(9);
    expect(stats.prefillRows).toBe(3);
    for (const s of samples) expect(s.tokenIds).toHaveLength(9);
    await checkAgainstReference(config, weights, device, samples, 0.7);
  });

  it('a long generation stays exact while its cache window widens', async () => {
    const { samples, stats } = await gen.generate({ promptIds: PROMPTS, samplesPerPrompt: 2, maxNewTokens: 45, temperature: 1.1, seed: 3, eosTokenIds: [], returnLogits: true });
    expect(stats.decodeSteps).toBe(44);
    expect(stats.cacheLength).toBe(64);
    await checkAgainstReference(config, weights, device, samples, 1.1);
  });

  it('log-probs stay those of the untruncated distribution under top-k and top-p', async () => {
    const { samples } = await gen.generate({ promptIds: PROMPTS, samplesPerPrompt: 2, maxNewTokens: 6, temperature: 1.3, topK: 5, topP: 0.8, seed: 2, eosTokenIds: [], returnLogits: true });
    await checkAgainstReference(config, weights, device, samples, 1.3);
  });

  it('greedy decoding follows the argmax and reports statistics at temperature 1', async () => {
    const { samples } = await gen.generate({ promptIds: PROMPTS, samplesPerPrompt: 2, maxNewTokens: 7, temperature: 0, eosTokenIds: [], returnLogits: true });
    await checkAgainstReference(config, weights, device, samples, 1);
    for (const s of samples) {
      s.logits!.forEach((z, t) => expect(s.tokenIds[t]).toBe(z.indexOf(Math.max(...z))));
      expect(s.tokenIds).toEqual(samples[s.promptIndex * 2].tokenIds);
    }
  });
});

describe('long prompts and caches', () => {
  // Windows of 32 positions and more take other kernel paths than the short ones above (onnxruntime
  // 1.30's WebGPU GroupQueryAttention in prompt mode was wrong from 32 on: the prefill does not use it).
  const config = tinyConfig({ hiddenSize: 64, headDim: 16, maxPositionEmbeddings: 1024 });
  const weights = randomWeights(config, 23);

  it.each([30, 65, 100, 600])('prompts of %i tokens: generation log-probs match a full training-style forward', async (length) => {
    const device = await testDevice();
    const gen = await Generator.create({ config, weights, device, maxLength: length + 40 });
    // Two prompts of different lengths, so the shorter one is left-padded.
    const prompts = [Array.from({ length }, (_, i) => (i * 7 + 3) % 40), Array.from({ length: length - 5 }, (_, i) => (i * 5 + 1) % 40)];
    const { samples } = await gen.generate({ promptIds: prompts, samplesPerPrompt: 2, maxNewTokens: 24, temperature: 1, seed: 4, eosTokenIds: [], returnLogits: true });
    await gen.release();
    await checkAgainstReference(config, weights, device, samples, 1, prompts);
  });
});

describe('weights from the parameter store', () => {
  const config = tinyConfig();
  const host = randomWeights(config, 13);
  const request = { promptIds: PROMPTS, samplesPerPrompt: 2, maxNewTokens: 7, temperature: 0.9, seed: 8, eosTokenIds: [], returnLogits: true };

  it.each(TEST_DEVICE_NAME === 'cpu' ? (['float32', 'float64'] as const) : (['float32'] as const))('%s store: same samples as host weights, log-probs match training', async (dtype) => {
    const device = await testDevice();
    const store = await ParameterStore.create({ config, weights: host.weights, device, dtype });
    try {
      const gen = await Generator.create({ config, weights: store, device, maxLength: 32 });
      const { samples } = await gen.generate(request);
      await checkAgainstReference(config, store, device, samples, 0.9);
      if (dtype === 'float32') {
        const viaHost = await Generator.create({ config, weights: host, device, maxLength: 32 });
        const reference = await viaHost.generate(request);
        expect(samples.map((s) => s.tokenIds)).toEqual(reference.samples.map((s) => s.tokenIds));
        await viaHost.release();
      }
      await gen.release();
    } finally {
      await store.release();
    }
  });
});

describe('weights held for generation only, q, k and v packed on a GPU', () => {
  // Head size 16 and q/k/v biases: GroupQueryAttention reads the packed product and rotates it.
  const config = tinyConfig({ hiddenSize: 64, headDim: 16, attentionBias: true });
  const host = randomWeights(config, 17);
  const request = { promptIds: PROMPTS, samplesPerPrompt: 2, maxNewTokens: 7, temperature: 0.9, seed: 5, eosTokenIds: [], returnLogits: true };

  it('sample as the host weights do, and as the training graph scores them', async () => {
    const device = await testDevice();
    const transfer = new DeviceTransfer(device, 'float32');
    const frozen = await FrozenWeights.create(host.weights, [...host.weights.keys()], transfer, false, true);
    try {
      // On the CPU nothing is packed (its host-cache decode reads the three weights as they are).
      const packed = frozen.names.filter((n) => n.includes('qkv_proj'));
      expect(packed).toHaveLength(device.keepsStateOnDevice ? 2 * config.numLayers : 0);
      if (device.keepsStateOnDevice) expect(frozen.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
      const gen = await Generator.create({ config, weights: frozen, device, maxLength: 32 });
      const viaHost = await Generator.create({ config, weights: host, device, maxLength: 32 });
      const [a, b] = [await gen.generate(request), await viaHost.generate(request)];
      await Promise.all([gen.release(), viaHost.release()]);
      expect(a.samples.map((s) => s.tokenIds)).toEqual(b.samples.map((s) => s.tokenIds));
      await checkAgainstReference(config, host, device, a.samples, 0.9);
    } finally {
      frozen.release();
      await transfer.release();
    }
  });
});

describe('the built-in tiny-chars model', () => {
  it('samples text from a chat prompt, stops on its EOS or a stop string, and matches training log-probs', async () => {
    const model = await loadModelFolder(fileURLToPath(new URL('../../../resources/models/tiny-chars', import.meta.url)));
    const tokenizer = model.tokenizer!;
    const weights = new HostWeights(model.weights);
    const device = await testDevice();
    const gen = await Generator.create({ config: model.config, weights, device, maxLength: 96 });
    const prompts = ['What is 6 * 7?', 'Name a colour.'].map((q) => tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true })));
    const { samples } = await gen.generate({ promptIds: prompts, samplesPerPrompt: 3, maxNewTokens: 24, temperature: 1, seed: 4, stopStrings: ['e'], tokenizer, returnLogits: true });
    await gen.release();
    for (const s of samples) {
      expect(s.text).toBe(tokenizer.decode(s.tokenIds, { skipSpecialTokens: true }));
      if (s.finishReason === 'stop') expect(s.text).toContain('e');
      if (s.finishReason === 'eos') expect(tokenizer.eosTokenIds).toContain(s.tokenIds[s.tokenIds.length - 1]);
      if (s.finishReason === 'length') expect(s.tokenIds).toHaveLength(24);
    }
    expect(samples.some((s) => s.finishReason !== 'length'), 'an untrained model still hits "e" or EOS within 24 characters').toBe(true);
    await checkAgainstReference(model.config, weights, device, samples, 1, prompts);
  });
});

describe('sampling controls', () => {
  const config = tinyConfig();
  let gen: Generator;
  beforeAll(async () => {
    gen = await Generator.create({ config, weights: randomWeights(config), device: await testDevice(), maxLength: 32 });
  });
  afterAll(async () => gen.release());
  const base = { promptIds: PROMPTS, samplesPerPrompt: 4, maxNewTokens: 8, temperature: 1, eosTokenIds: [] };
  const tokens = (r: { samples: GeneratedSample[] }) => r.samples.map((s) => s.tokenIds);

  it('the same seed reproduces the samples; another seed changes them', async () => {
    const a = await gen.generate({ ...base, seed: 11 });
    const b = await gen.generate({ ...base, seed: 11 });
    const c = await gen.generate({ ...base, seed: 12 });
    expect(tokens(b)).toEqual(tokens(a));
    expect(b.samples.map((s) => s.logprobs)).toEqual(a.samples.map((s) => s.logprobs));
    expect(tokens(c)).not.toEqual(tokens(a));
    // the samples of one prompt differ from each other (each row has its own uniforms)
    const firstPrompt = a.samples.filter((s) => s.promptIndex === 0).map((s) => s.tokenIds.join(','));
    expect(new Set(firstPrompt).size).toBeGreaterThan(1);
  });

  it('top-k 1 and a tiny top-p both equal greedy', async () => {
    const greedy = tokens(await gen.generate({ ...base, temperature: 0 }));
    expect(tokens(await gen.generate({ ...base, topK: 1, seed: 3 }))).toEqual(greedy);
    expect(tokens(await gen.generate({ ...base, topP: 1e-6, seed: 4 }))).toEqual(greedy);
    expect(tokens(await gen.generate({ ...base, temperature: 2, topK: 1, topP: 0.5, seed: 5 }))).toEqual(greedy);
  });

  it('the samples of one prompt share its single prefill', async () => {
    const { samples, stats } = await gen.generate({ ...base, samplesPerPrompt: 5, maxNewTokens: 3, seed: 6 });
    expect(stats.prefillRows).toBe(PROMPTS.length);
    expect(stats.rows).toBe(PROMPTS.length * 5);
    for (let p = 0; p < PROMPTS.length; p++) {
      const group = samples.filter((s) => s.promptIndex === p);
      expect(group.map((s) => s.sampleIndex)).toEqual([0, 1, 2, 3, 4]);
      // the first token comes from the one prompt distribution
      for (const s of group) {
        expect(s.entropies[0]).toBe(group[0].entropies[0]);
        expect(s.selfCertainties[0]).toBe(group[0].selfCertainties[0]);
      }
    }
  });

  it('maxRows: a few whole prompts at a time, the same samples as one pass', async () => {
    // Prompts that pad to one length in every pass, so each pass computes exactly what one pass does.
    const promptIds = [[3, 17, 5, 9, 22, 1, 30], [8], [12, 4, 4, 39, 0], [7, 7]];
    const request = { ...base, promptIds, samplesPerPrompt: 3, seed: 21 };
    const whole = await gen.generate(request);
    const inTurns = await Generator.create({ config, weights: randomWeights(config), device: await testDevice(), maxLength: 32, maxRows: 7 });
    try {
      // 7 rows hold two prompts' 3 samples: passes of prompts 0–1 and 2–3.
      const split = await inTurns.generate(request);
      expect(split.stats.passes).toBe(2);
      expect(whole.stats.passes).toBe(1);
      expect(split.stats.prefillRows).toBe(4);
      expect(split.stats.rows).toBe(6);
      expect(split.samples.map((s) => [s.promptIndex, s.sampleIndex])).toEqual(whole.samples.map((s) => [s.promptIndex, s.sampleIndex]));
      expect(tokens(split)).toEqual(tokens(whole));
      split.samples.forEach((s, i) => expect(maxAbsDiff(s.logprobs, whole.samples[i].logprobs)).toBeLessThan(1e-5));
      // more samples per prompt than maxRows: one prompt a pass
      expect((await inTurns.generate({ ...request, samplesPerPrompt: 8 })).stats.passes).toBe(4);
      // The caller's own chunks, numbered by firstPromptIndex, sample as the one request does
      // (a validation in chunks sized from the training batch).
      const chunks = [await gen.generate({ ...request, promptIds: promptIds.slice(0, 1) }), await gen.generate({ ...request, promptIds: promptIds.slice(1), firstPromptIndex: 1 })];
      const joined = chunks.flatMap((c) => c.samples);
      expect(joined.map((s) => [s.promptIndex, s.sampleIndex])).toEqual(whole.samples.map((s) => [s.promptIndex, s.sampleIndex]));
      expect(joined.map((s) => s.tokenIds)).toEqual(tokens(whole));
      // Without it the second chunk's prompts draw the first prompts' streams.
      expect((await gen.generate({ ...request, promptIds: promptIds.slice(1) })).samples.map((s) => s.tokenIds)).not.toEqual(tokens(whole).slice(3));
    } finally {
      await inTurns.release();
    }
    await expect(Generator.create({ config, weights: randomWeights(config), device: await testDevice(), maxLength: 32, maxRows: 0 })).rejects.toThrow(/maxRows must be an integer >= 1/);
  });

  it('rejects requests it cannot serve, with the reason', async () => {
    await expect(gen.generate({ ...base, maxNewTokens: 30 })).rejects.toThrow(/exceeds the generator's maxLength 32/);
    await expect(gen.generate({ ...base, promptIds: [[1], []] })).rejects.toThrow(/prompt 1 is empty/);
    await expect(gen.generate({ ...base, promptIds: [[1, 99]] })).rejects.toThrow(/token id 99/);
    await expect(gen.generate({ ...base, topP: 0 })).rejects.toThrow(/topP/);
    await expect(gen.generate({ ...base, temperature: -1 })).rejects.toThrow(/temperature/);
    await expect(gen.generate({ ...base, stopStrings: ['x'] })).rejects.toThrow(/tokenizer/);
  });
});

describe('stopping', () => {
  const config = tinyConfig();
  let gen: Generator;
  beforeAll(async () => {
    gen = await Generator.create({ config, weights: randomWeights(config, 21), device: await testDevice(), maxLength: 32 });
  });
  afterAll(async () => gen.release());
  const base = { promptIds: PROMPTS, maxNewTokens: 10, temperature: 0, eosTokenIds: [] as number[], tokenizer: charTokenizer };

  it('an EOS token ends its row (and is kept), other rows go on', async () => {
    const free = await gen.generate(base);
    const row = free.samples[0].tokenIds;
    // an EOS id that greedy row 0 first produces at its 4th token
    const eos = row.find((t, i) => i >= 3 && row.indexOf(t) === i);
    expect(eos, 'a token first seen at position >= 3 of the greedy row').toBeDefined();
    const cut = row.indexOf(eos!);
    const { samples } = await gen.generate({ ...base, eosTokenIds: [eos!] });
    expect(samples[0].tokenIds).toEqual(row.slice(0, cut + 1));
    expect(samples[0].finishReason).toBe('eos');
    expect(samples[0].logprobs).toHaveLength(cut + 1);
    samples.forEach((s, i) => {
      const ref = free.samples[i].tokenIds;
      const at = ref.indexOf(eos!);
      expect(s.tokenIds).toEqual(at >= 0 ? ref.slice(0, at + 1) : ref);
      expect(s.finishReason).toBe(at >= 0 ? 'eos' : 'length');
      expect(s.text).toBe(charTokenizer.decode(s.tokenIds));
    });
  });

  it('a stop string ends its row; all rows done ends the call early', async () => {
    const free = await gen.generate(base);
    const texts = free.samples.map((s) => s.text!);
    // stop strings made of each row's characters 2..3: every row stops by its 4th token
    const stopStrings = texts.map((t) => t.slice(2, 4));
    const { samples, stats } = await gen.generate({ ...base, stopStrings });
    samples.forEach((s, i) => {
      expect(s.finishReason).toBe('stop');
      const end = Math.min(...stopStrings.map((x) => (texts[i].indexOf(x) >= 0 ? texts[i].indexOf(x) + x.length : Infinity)));
      expect(s.tokenIds).toEqual(free.samples[i].tokenIds.slice(0, end));
      expect(s.text!.endsWith(s.stopString!)).toBe(true);
    });
    expect(stats.decodeSteps).toBeLessThan(base.maxNewTokens - 1);
  });

  it('the config EOS ids are the default, and a progress callback sees every step', async () => {
    const free = await gen.generate({ ...base, promptIds: [PROMPTS[0]] });
    const eos = free.samples[0].tokenIds[2];
    const withEos = await Generator.create({ config: { ...config, eosTokenIds: [eos] }, weights: randomWeights(config, 21), device: await testDevice(), maxLength: 32 });
    const steps: number[] = [];
    const { samples } = await withEos.generate({ promptIds: [PROMPTS[0]], maxNewTokens: 10, temperature: 0, onProgress: (p) => steps.push(p.step) });
    await withEos.release();
    expect(samples[0].finishReason).toBe('eos');
    expect(samples[0].tokenIds).toHaveLength(free.samples[0].tokenIds.indexOf(eos) + 1);
    expect(steps).toEqual(Array.from({ length: samples[0].tokenIds.length }, (_, i) => i + 1));
  });

  it('an abort signal stops the call, and the generator still works afterwards', async () => {
    const controller = new AbortController();
    const run = gen.generate({ ...base, onProgress: (p) => p.step === 3 && controller.abort(new Error('stopped by the test')), signal: controller.signal });
    await expect(run).rejects.toThrow('stopped by the test');
    const again = await gen.generate(base);
    expect(again.samples[0].tokenIds).toHaveLength(10);
  });
});
