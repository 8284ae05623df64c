// Checkpoints: Hugging Face / PEFT layouts, round trips, and an exact resume (train 4 steps vs
// train 2, save, load into a fresh trainer, train 2 more).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../main/engine/nn/config.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { readSafetensors } from '../../../main/engine/nn/safetensors.ts';
import { FILES, hfConfigJson, removeInterruptedSaves } from '../../../main/engine/runtime/checkpoints.ts';
import { SeededRng } from '../../../main/engine/runtime/rng.ts';
import { type BatchShape, type TrainMode, Trainer, type TrainerOptions, makeCausalBatch } from '../../../main/engine/runtime/trainer.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { randomWeights, tinyLlama } from '../../helpers/tiny-llama.ts';

const SHAPE: BatchShape = { size: 3, seqLen: 6 };
const TINY_CHARS = path.join(import.meta.dirname, '../../../resources/models/tiny-chars');
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'autodidact-ckpt-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const config = tinyLlama({ vocabSize: 13, hiddenSize: 16, numHeads: 4, numKvHeads: 2, headDim: 4, intermediateSize: 24, bosTokenId: 1, eosTokenIds: [2] });

async function makeTrainer(mode: TrainMode, extra: Partial<TrainerOptions> = {}): Promise<Trainer> {
  return Trainer.create({
    config,
    weights: randomWeights(config),
    device: await testDevice(),
    mode,
    optimizer: { betas: [0.9, 0.99], weightDecay: 0.01, maxGradNorm: 1 },
    loss: { kind: 'sft' },
    batch: SHAPE,
    seed: 11,
    ...extra,
  });
}

/** A run loop's step: the batch is drawn from the trainer's own generator, so resuming must restore it. */
async function trainStep(t: Trainer): Promise<number> {
  const examples = Array.from({ length: SHAPE.size }, () => ({ tokens: Array.from({ length: 7 }, () => t.rng.int(config.vocabSize)), lossStart: 2 }));
  return (await t.step(makeCausalBatch(examples, SHAPE), 1e-2)).loss;
}

describe('seeded generator', () => {
  it('continues exactly from a saved state', () => {
    const a = new SeededRng(42);
    for (let i = 0; i < 5; i++) a.next();
    const b = SeededRng.fromState(a.state());
    expect(Array.from({ length: 20 }, () => b.nextUint32())).toEqual(Array.from({ length: 20 }, () => a.nextUint32()));
    expect(new SeededRng(1).next()).not.toBe(new SeededRng(2).next());
    const xs = Array.from({ length: 10000 }, () => a.next());
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 1);
    expect(() => SeededRng.fromState([0, 0, 0, 0])).toThrow(/zeros/);
  });
});

describe('checkpoint layout', () => {
  it('saves full weights as a Hugging Face model folder that loads back', async () => {
    const trainer = await makeTrainer({ kind: 'full' });
    await trainStep(trainer);
    const dir = path.join(tmp, 'full');
    await trainer.save(dir, { note: 'loop state' });
    const files = (await fs.readdir(dir)).sort();
    expect(files).toEqual([FILES.config, FILES.model, FILES.optimizer, FILES.state].sort());
    expect(parseConfig(JSON.parse(await fs.readFile(path.join(dir, FILES.config), 'utf8')))).toEqual(config);
    const saved = await readSafetensors(path.join(dir, FILES.model));
    const current = await trainer.store.readWeights();
    expect([...saved.keys()]).toEqual([...current.keys()]);
    for (const [name, t] of current) expect(saved.get(name)!.data, name).toEqual(t.data);
    // The same folder is an ordinary model folder for the loader.
    const model = await loadModelFolder(dir);
    expect(model.weights.get('lm_head.weight')!.data).toEqual(current.get('lm_head.weight')!.data);
    const state = JSON.parse(await fs.readFile(path.join(dir, FILES.state), 'utf8'));
    expect(state).toMatchObject({ format: 'autodidact-trainer-state', step: 1, extra: { note: 'loop state' } });
    // Saving again replaces the folder whole and leaves no temporary folders behind.
    await trainStep(trainer);
    await trainer.save(dir);
    expect(JSON.parse(await fs.readFile(path.join(dir, FILES.state), 'utf8')).step).toBe(2);
    expect((await fs.readdir(tmp)).filter((f) => f.startsWith('.'))).toEqual([]);
    await trainer.release();
  });

  it('copies config and tokenizer files from the base model folder', async () => {
    const model = await loadModelFolder(TINY_CHARS);
    const trainer = await Trainer.create({
      config: model.config,
      weights: model.weights,
      device: await testDevice(),
      mode: { kind: 'full' },
      loss: { kind: 'sft' },
      batch: { size: 1, seqLen: 4 },
      source: { dir: TINY_CHARS },
    });
    const dir = path.join(tmp, 'tiny-chars-ft');
    await trainer.save(dir);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      expect(await fs.readFile(path.join(dir, f), 'utf8')).toBe(await fs.readFile(path.join(TINY_CHARS, f), 'utf8'));
    }
    const cfg = JSON.parse(await fs.readFile(path.join(dir, FILES.config), 'utf8'));
    const original = JSON.parse(await fs.readFile(path.join(TINY_CHARS, FILES.config), 'utf8'));
    expect(cfg).toEqual({ ...original, torch_dtype: 'float32' });
    const reloaded = await loadModelFolder(dir);
    expect(reloaded.tokenizer?.encode('abc')).toEqual(model.tokenizer?.encode('abc'));
    await trainer.release();
  });

  it('saves LoRA as a PEFT adapter', async () => {
    const trainer = await makeTrainer({ kind: 'lora', rank: 2, alpha: 4, targetModules: ['q_proj', 'o_proj'] }, { source: { nameOrPath: 'org/base-model' } });
    await trainStep(trainer);
    const dir = path.join(tmp, 'adapter');
    await trainer.save(dir);
    expect((await fs.readdir(dir)).sort()).toEqual([FILES.adapterConfig, FILES.adapter, FILES.optimizer, FILES.state].sort());
    const adapterConfig = JSON.parse(await fs.readFile(path.join(dir, FILES.adapterConfig), 'utf8'));
    expect(adapterConfig).toMatchObject({
      peft_type: 'LORA',
      r: 2,
      lora_alpha: 4,
      target_modules: ['q_proj', 'o_proj'],
      lora_dropout: 0,
      bias: 'none',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'org/base-model',
    });
    const tensors = await readSafetensors(path.join(dir, FILES.adapter));
    expect([...tensors.keys()]).toEqual([
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      'base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight',
      'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight',
      'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight',
      'base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight',
      'base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight',
    ]);
    expect(tensors.get('base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight')!.shape).toEqual([16, 2]);
    await trainer.release();
  });

  it('refuses a checkpoint that does not fit the trainer, saying why', async () => {
    const full = await makeTrainer({ kind: 'full' });
    const lora = await makeTrainer({ kind: 'lora', rank: 4, alpha: 4, targetModules: ['q_proj', 'o_proj'] });
    await expect(full.load(path.join(tmp, 'adapter'))).rejects.toThrow(/LoRA adapter/);
    await expect(lora.load(path.join(tmp, 'adapter'))).rejects.toThrow(/r=2/);
    await expect(full.load(path.join(tmp, 'nothing-here'))).rejects.toThrow(/not found/);
    await full.release();
    await lora.release();
  });

  it('loads a bare model folder as weights only', async () => {
    const model = await loadModelFolder(TINY_CHARS);
    const other = new Map([...model.weights].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((x) => x * 0.5) }]));
    const options = { config: model.config, device: await testDevice(), mode: { kind: 'full' as const }, loss: { kind: 'sft' as const }, batch: { size: 1, seqLen: 5 } };
    const fromFolder = await Trainer.create({ ...options, weights: model.weights });
    const loaded = await Trainer.create({ ...options, weights: other });
    expect(await loaded.load(TINY_CHARS)).toEqual({ step: 0, extra: undefined, teacher: null, critic: null });
    const batch = { inputIds: [1, 40, 41, 42, 43], targets: [40, 41, 42, 43, 2] };
    expect(Array.from(await loaded.logprobs(batch))).toEqual(Array.from(await fromFolder.logprobs(batch)));
    await fromFolder.release();
    await loaded.release();
  });

  it('writes a config.json that transformers and this loader read alike', () => {
    const scaled = { ...config, ropeScaling: { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 } };
    expect(parseConfig(hfConfigJson(scaled))).toEqual(scaled);
    const qwen3 = tinyLlama({ architecture: 'qwen3', qkNorm: true, tieWordEmbeddings: true, eosTokenIds: [2, 3] });
    expect(parseConfig(hfConfigJson(qwen3))).toEqual(qwen3);
    const qwen2 = tinyLlama({ architecture: 'qwen2', attentionBias: true });
    expect(parseConfig(hfConfigJson(qwen2))).toEqual(qwen2);
  });
});

describe('exact resume', () => {
  // The first trainer's optimizer updates the flat buffer in one piece, then in pieces of 37
  // values (the others always in one): the checkpoint does not depend on it, and the result only
  // through the order the gradient norm's squares are summed in (its last bits), so bit for bit
  // on the CPU with one piece, within 1e-6 with the other.
  const cases = [{ kind: 'full' }, { kind: 'lora', rank: 3, alpha: 6, targetModules: ['q_proj', 'v_proj', 'gate_proj'] }].flatMap((mode) =>
    [Number.POSITIVE_INFINITY, 37].map((firstRanges) => ({ mode: mode as TrainMode, firstRanges })),
  );
  for (const { mode, firstRanges } of cases) {
    it(`train 4 steps = train 2, save, load into a fresh trainer, train 2 (${mode.kind}, first trainer's optimizer in pieces of ${firstRanges})`, async () => {
      const straight = await makeTrainer(mode, { optimizerRangeSize: Number.POSITIVE_INFINITY });
      const lossesStraight: number[] = [];
      for (let s = 0; s < 4; s++) lossesStraight.push(await trainStep(straight));

      const first = await makeTrainer(mode, { optimizerRangeSize: firstRanges });
      const lossesResumed: number[] = [];
      for (let s = 0; s < 2; s++) lossesResumed.push(await trainStep(first));
      const dir = path.join(tmp, `resume-${mode.kind}`);
      // An EMA teacher's values are saved beside the weights (teacher.safetensors) and come back as they were.
      const teacher = Float32Array.from(await first.store.readFlat(), (x, i) => x + i / 1000);
      await first.save(dir, { epoch: 0, cursor: 6 }, { teacher });
      await first.release();

      // A different seed: everything that matters must come from the checkpoint.
      const second = await makeTrainer(mode, { seed: 999, optimizerRangeSize: Number.POSITIVE_INFINITY });
      expect(await second.load(dir)).toEqual({ step: 2, extra: { epoch: 0, cursor: 6 }, teacher, critic: null });
      expect(second.stepCount).toBe(2);
      for (let s = 0; s < 2; s++) lossesResumed.push(await trainStep(second));

      const a = await straight.store.readFlat();
      const b = await second.store.readFlat();
      if (TEST_DEVICE_NAME === 'cpu' && firstRanges === Number.POSITIVE_INFINITY) {
        expect(lossesResumed).toEqual(lossesStraight);
        expect(b).toEqual(a);
        expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength))).toBe(true);
      } else if (TEST_DEVICE_NAME === 'cpu') {
        lossesResumed.forEach((l, i) => expect(Math.abs(l - lossesStraight[i])).toBeLessThan(1e-6 * Math.abs(lossesStraight[i])));
        a.forEach((x, i) => expect(Math.abs(b[i] - x)).toBeLessThan(1e-6));
      } else {
        lossesResumed.forEach((l, i) => expect(l).toBeCloseTo(lossesStraight[i], 5));
        a.forEach((x, i) => expect(Math.abs(b[i] - x)).toBeLessThan(1e-5));
      }
      // The optimizer moments were restored too: one more step still agrees.
      const la = await trainStep(straight);
      const lb = await trainStep(second);
      if (TEST_DEVICE_NAME === 'cpu' && firstRanges === Number.POSITIVE_INFINITY) expect(lb).toBe(la);
      else expect(lb).toBeCloseTo(la, 5);
      await straight.release();
      await second.release();
    });
  }
});

describe('work folders of interrupted saves', () => {
  it('removes a dead process\'s, puts back a replaced checkpoint that lost its replacement, and leaves a live process\'s alone', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'autodidact-interrupted-'));
    try {
      const dead = 2 ** 22 + 7; // above Linux's pid_max: no process has it
      const made = async (name: string, file = 'model.safetensors') => {
        await fs.mkdir(path.join(dir, name), { recursive: true });
        await fs.writeFile(path.join(dir, name, file), name);
      };
      await made('last-4');
      await made(`.last-6.tmp-${dead}-0123abcd`); // killed while writing a new folder
      await made(`.last-4.old-${dead}-0123abcd`); // killed after the replacement was in place
      await made(`.best-2.tmp-${dead}-89abcdef`); // killed between the two renames: best-2 is in .old-
      await made(`.best-2.old-${dead}-89abcdef`);
      await made(`.last-8.tmp-${process.ppid}-00000000`); // a live process is writing it
      await made(`.last-9.tmp-${process.pid}-00000000`); // so is this one
      await made('.notes'); // not a save's
      const { removed, restored } = removeInterruptedSaves(dir);
      expect(removed.sort()).toEqual([`.best-2.tmp-${dead}-89abcdef`, `.last-4.old-${dead}-0123abcd`, `.last-6.tmp-${dead}-0123abcd`]);
      expect(restored).toEqual(['best-2']);
      expect((await fs.readdir(dir)).sort()).toEqual([`.last-8.tmp-${process.ppid}-00000000`, `.last-9.tmp-${process.pid}-00000000`, '.notes', 'best-2', 'last-4'].sort());
      expect(await fs.readFile(path.join(dir, 'best-2', 'model.safetensors'), 'utf8')).toBe(`.best-2.old-${dead}-89abcdef`);
      expect(await fs.readFile(path.join(dir, 'last-4', 'model.safetensors'), 'utf8')).toBe('last-4');
      expect(removeInterruptedSaves(path.join(dir, 'missing'))).toEqual({ removed: [], restored: [] });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
