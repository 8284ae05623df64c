// Loading Hugging Face model folders: the committed fixtures (plain, sharded, f32/bf16/f16,
// tied and untied, both config layouts) and the errors a broken folder gets.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Graph } from '../../../main/engine/graph/graph.ts';
import { parseConfig, weightShapes } from '../../../main/engine/nn/config.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { causalBias, forward } from '../../../main/engine/nn/llama.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { readSafetensors, writeSafetensors } from '../../../main/engine/nn/safetensors.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');
const TINY = path.resolve(import.meta.dirname, '../../../resources/models/tiny-chars');

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'autodidact-hf-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A writable copy of a fixture folder. */
async function copyFolder(src: string, name: string): Promise<string> {
  const dst = path.join(tmp, name);
  await fs.cp(src, dst, { recursive: true });
  return dst;
}

async function editJson(file: string, edit: (j: Record<string, unknown>) => void): Promise<void> {
  const j = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  edit(j);
  await fs.writeFile(file, JSON.stringify(j));
}

describe('loadModelFolder', () => {
  it('loads Llama 3 (float32, untied, rope_scaling in the transformers 4 layout)', async () => {
    const m = await loadModelFolder(path.join(FIXTURES, 'llama3'));
    expect(m.config.architecture).toBe('llama');
    expect(m.config.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 256 });
    expect(m.config.tieWordEmbeddings).toBe(false);
    expect([m.config.numHeads, m.config.numKvHeads, m.config.headDim]).toEqual([4, 2, 16]);
    expect(m.sourceDtype).toBe('float32');
    const shapes = weightShapes(m.config);
    expect([...m.weights.keys()]).toEqual(shapes.map(([n]) => n));
    for (const [name, shape] of shapes) expect(m.weights.get(name)!.shape, name).toEqual(shape);
    expect(m.weights.has('lm_head.weight')).toBe(true);
    expect(m.parameterCount).toBe(shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0));
    expect(m.tokenizer?.vocabSize).toBe(103);
    expect(m.tokenizer?.eosTokenIds).toEqual([2]);
    expect(m.chatTemplate).toContain('add_generation_prompt');
  });

  it('loads sharded bfloat16 Qwen2 with biases and tied embeddings (transformers 5 layout)', async () => {
    const dir = path.join(FIXTURES, 'qwen2');
    const m = await loadModelFolder(dir);
    expect(m.config.architecture).toBe('qwen2');
    expect(m.config.attentionBias).toBe(true);
    expect(m.config.ropeTheta).toBe(1e6);
    expect(m.config.tieWordEmbeddings).toBe(true);
    expect(m.sourceDtype).toBe('bfloat16');
    expect(m.weights.has('lm_head.weight')).toBe(false);
    expect(m.weights.get('model.layers.0.self_attn.k_proj.bias')!.shape).toEqual([32]);
    // Tensors come from both shards, unchanged: bf16 widened exactly (low 16 bits zero).
    const index = JSON.parse(await fs.readFile(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const shardFiles = new Set(Object.values(index.weight_map));
    expect(shardFiles.size).toBe(2);
    for (const shard of shardFiles) {
      const direct = await readSafetensors(path.join(dir, shard));
      for (const [name, t] of direct) {
        if (!m.weights.has(name)) continue;
        expect(m.weights.get(name)!.data).toEqual(t.data);
        const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
        expect(bits.every((b) => (b & 0xffff) === 0), name).toBe(true);
      }
    }
    expect(m.parameterCount).toBe(81472); // transformers' index: total_parameters
  });

  it('loads float16 Qwen3 with q/k norms and an explicit head_dim', async () => {
    const m = await loadModelFolder(path.join(FIXTURES, 'qwen3'));
    expect(m.config.architecture).toBe('qwen3');
    expect(m.config.qkNorm).toBe(true);
    expect(m.config.headDim).toBe(32);
    expect(m.sourceDtype).toBe('float16');
    expect(m.weights.get('model.layers.1.self_attn.q_proj.weight')!.shape).toEqual([128, 64]);
    expect(m.weights.get('model.layers.1.self_attn.k_norm.weight')!.shape).toEqual([32]);
  });

  it('ignores a stored lm_head copy and extra tensors when embeddings are tied', async () => {
    const dir = await copyFolder(TINY, 'tied-extra');
    const file = path.join(dir, 'model.safetensors');
    const tensors = await readSafetensors(file);
    tensors.set('lm_head.weight', tensors.get('model.embed_tokens.weight')!);
    tensors.set('model.rotary_emb.inv_freq', { shape: [16], data: new Float32Array(16) });
    await writeSafetensors(file, tensors);
    const m = await loadModelFolder(dir);
    expect(m.weights.has('lm_head.weight')).toBe(false);
    expect(m.weights.has('model.rotary_emb.inv_freq')).toBe(false);
    expect(m.weights.size).toBe(weightShapes(m.config).length);
  });

  it('names the path when the folder or config.json is missing', async () => {
    await expect(loadModelFolder(path.join(tmp, 'absent'))).rejects.toThrow(`model folder not found: ${path.join(tmp, 'absent')}`);
    const empty = path.join(tmp, 'empty');
    await fs.mkdir(empty);
    await expect(loadModelFolder(empty)).rejects.toThrow(`config.json not found: ${path.join(empty, 'config.json')}`);
  });

  it('reads Mistral sliding windows (Qwen ones only when enabled) and refuses longer sequences', async () => {
    const base = { model_type: 'mistral', vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, sliding_window: 4 };
    const mistral = parseConfig(base);
    expect(mistral.slidingWindow).toBe(4);
    expect(parseConfig({ ...base, model_type: 'qwen2' }).slidingWindow).toBeNull();
    expect(parseConfig({ ...base, model_type: 'qwen2', use_sliding_window: true }).slidingWindow).toBe(4);
    const g = new Graph('window');
    const w = new HostWeights(new Map(weightShapes(mistral).map(([n, shape]) => [n, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }])));
    const build = (T: number) =>
      forward(mistral, w.bind(g), { inputIds: g.input(`ids${T}`, [1, T], 'int32'), positionIds: g.input(`pos${T}`, [1, T], 'int32'), attentionBias: causalBias(g, T) });
    expect(() => build(4)).not.toThrow();
    expect(() => build(5)).toThrow(/5 positions exceeds this model's sliding attention window of 4/);
  });

  it('names the file when model_type is unsupported', async () => {
    const dir = await copyFolder(path.join(FIXTURES, 'llama3'), 'gpt2');
    await editJson(path.join(dir, 'config.json'), (j) => (j.model_type = 'gpt2'));
    await expect(loadModelFolder(dir)).rejects.toThrow(new RegExp(`${path.join(dir, 'config.json')}: model_type "gpt2" is not supported`));
  });

  it('names a missing tensor and a mis-shaped one', async () => {
    const dir = await copyFolder(path.join(FIXTURES, 'llama3'), 'missing');
    const file = path.join(dir, 'model.safetensors');
    const tensors = await readSafetensors(file);
    tensors.delete('model.layers.1.mlp.up_proj.weight');
    await writeSafetensors(file, tensors);
    await expect(loadModelFolder(dir)).rejects.toThrow(/the checkpoint has no tensor "model\.layers\.1\.mlp\.up_proj\.weight" \(shape \[128, 64\]\)/);

    tensors.set('model.layers.1.mlp.up_proj.weight', { shape: [64, 128], data: new Float32Array(64 * 128) });
    await writeSafetensors(file, tensors);
    await expect(loadModelFolder(dir)).rejects.toThrow(
      `${file}: tensor "model.layers.1.mlp.up_proj.weight" has shape [64, 128] but config.json implies [128, 64]`,
    );
  });

  it('names the index and shard when the index points at the wrong file', async () => {
    const dir = await copyFolder(path.join(FIXTURES, 'qwen2'), 'bad-index');
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    await editJson(indexFile, (j) => {
      const map = j.weight_map as Record<string, string>;
      map['model.norm.weight'] = map['model.norm.weight'].endsWith('1-of-00002.safetensors') ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors';
    });
    await expect(loadModelFolder(dir)).rejects.toThrow(/model\.safetensors\.index\.json puts tensor "model\.norm\.weight" in model-0000[12]-of-00002\.safetensors, but that file does not hold it/);
    await fs.rm(path.join(dir, 'model-00002-of-00002.safetensors'));
    await expect(loadModelFolder(dir)).rejects.toThrow(/safetensors file not found: .*model-00002-of-00002\.safetensors/);
  });

  it('says when there are no safetensors weights, or the tokenizer outgrows the embeddings', async () => {
    const dir = await copyFolder(path.join(FIXTURES, 'llama3'), 'no-weights');
    await fs.rename(path.join(dir, 'model.safetensors'), path.join(dir, 'pytorch_model.bin'));
    await expect(loadModelFolder(dir)).rejects.toThrow(/no model\.safetensors or model\.safetensors\.index\.json \(found pytorch_model\.bin: convert to safetensors/);

    const small = await copyFolder(TINY, 'small-vocab');
    const file = path.join(small, 'model.safetensors');
    const tensors = await readSafetensors(file);
    const embed = tensors.get('model.embed_tokens.weight')!;
    tensors.set('model.embed_tokens.weight', { shape: [100, embed.shape[1]], data: embed.data.slice(0, 100 * embed.shape[1]) });
    await writeSafetensors(file, tensors);
    await editJson(path.join(small, 'config.json'), (j) => (j.vocab_size = 100));
    await expect(loadModelFolder(small)).rejects.toThrow(/tokenizer\.json has 103 token ids but config\.json vocab_size is 100/);
  });
});
