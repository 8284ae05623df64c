// The built-in model script: deterministic output, the committed tiny-chars folder is exactly
// what the script writes, and the command line's presets and checks.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { optionsFromArgs, PRESETS, writeBuiltinModel } from '../../../resources/models/make-builtin-models.ts';

const COMMITTED = path.resolve(import.meta.dirname, '../../../resources/models/tiny-chars');
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'autodidact-builtin-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('make-builtin-models', () => {
  it('regenerates the committed tiny-chars folder byte for byte', async () => {
    const dir = path.join(tmp, 'tiny-chars');
    await writeBuiltinModel(dir, { name: 'tiny-chars', ...PRESETS['tiny-chars'] });
    for (const f of FILES) {
      expect(Buffer.compare(await fs.readFile(path.join(dir, f)), await fs.readFile(path.join(COMMITTED, f))), f).toBe(0);
    }
  });

  it('writes a loadable model whose weights follow the seed', async () => {
    const small = { name: 'small', hidden: 32, layers: 1, heads: 4, kvHeads: 1, intermediate: 64, seed: 5, maxPositions: 64, vocab: 0, tied: true };
    await writeBuiltinModel(path.join(tmp, 'a'), small);
    await writeBuiltinModel(path.join(tmp, 'b'), { ...small, seed: 6 });
    const a = await loadModelFolder(path.join(tmp, 'a'));
    const b = await loadModelFolder(path.join(tmp, 'b'));
    expect([a.config.hiddenSize, a.config.numLayers, a.config.numKvHeads, a.config.headDim, a.config.vocabSize]).toEqual([32, 1, 1, 8, 103]);
    expect(a.config.tieWordEmbeddings).toBe(true);
    const embed = a.weights.get('model.embed_tokens.weight')!.data;
    expect(embed).not.toEqual(b.weights.get('model.embed_tokens.weight')!.data);
    const std = Math.sqrt(embed.reduce((s, v) => s + v * v, 0) / embed.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    expect([...a.weights.get('model.norm.weight')!.data].every((v) => v === 1)).toBe(true);
    expect(a.tokenizer!.decode(a.tokenizer!.encode('ok?', { addSpecialTokens: false }))).toBe('ok?');
  });

  it('widens the vocabulary and unties the output layer on request', async () => {
    const o = { name: 'wide', hidden: 16, layers: 1, heads: 2, kvHeads: 2, intermediate: 32, seed: 1, maxPositions: 32, vocab: 500, tied: false };
    await writeBuiltinModel(path.join(tmp, 'wide'), o);
    const m = await loadModelFolder(path.join(tmp, 'wide'));
    expect([m.config.vocabSize, m.config.tieWordEmbeddings]).toEqual([500, false]);
    expect(m.weights.get('lm_head.weight')!.shape).toEqual([500, 16]);
    await expect(writeBuiltinModel(path.join(tmp, 'narrow'), { ...o, vocab: 50 })).rejects.toThrow(/--vocab must be at least/);
  });

  it('reads presets and flags from the command line, and rejects bad sizes', () => {
    expect(optionsFromArgs(['--name', 'bench-256', '--out', 'x'])).toEqual({
      dir: path.resolve('x'),
      options: { name: 'bench-256', hidden: 256, layers: 4, heads: 4, kvHeads: 4, intermediate: 1024, seed: 1, maxPositions: 1024, vocab: 0, tied: true },
    });
    expect(optionsFromArgs(['--name', 'bench-256', '--vocab', '32000', '--untied'])!.options).toMatchObject({ vocab: 32000, tied: false });
    expect(optionsFromArgs(['--hidden', '64', '--seed', '9'])!.options).toMatchObject({ name: 'tiny-chars', hidden: 64, heads: 4, kvHeads: 2, seed: 9 });
    expect(optionsFromArgs(['--help'])).toBeNull();
    expect(() => optionsFromArgs(['--hidden', '100', '--heads', '8'])).toThrow('--hidden 100 must be a multiple of --heads 8');
    expect(() => optionsFromArgs(['--kv-heads', '3'])).toThrow('--heads 4 must be a multiple of --kv-heads 3');
    expect(() => optionsFromArgs(['--layers', 'two'])).toThrow('--layers must be a number, got "two"');
  });
});
