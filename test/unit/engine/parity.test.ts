// Logits of the engine's Llama-family forward graph against Hugging Face transformers (float32,
// eager attention) on tiny random checkpoints; fixtures from bench/reference/make_parity_fixtures.py.
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../../main/engine/graph/graph.ts';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { causalBias, forward, lmHead } from '../../../main/engine/nn/llama.ts';
import { CompiledGraph, cpuTensor } from '../../../main/engine/runtime/session.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');
const BUILTIN = path.resolve(import.meta.dirname, '../../../resources/models');
const TOLERANCE = 1e-4;

interface Reference {
  input_ids: number[][];
  position_ids: number[][];
  logits_shape: number[];
  logits: number[][][];
}

/** Max |engine - transformers| over all logits of the reference batch. */
async function maxLogitDiff(model: HfModel, ref: Reference): Promise<number> {
  const [B, T] = [ref.input_ids.length, ref.input_ids[0].length];
  const g = new Graph('parity');
  const weights = new HostWeights(model.weights);
  const ids = g.input('input_ids', [B, T], 'int32');
  const positions = g.input('position_ids', [B, T], 'int32');
  const w = weights.bind(g);
  const { hidden } = g.untaped(() => forward(model.config, w, { inputIds: ids, positionIds: positions, attentionBias: causalBias(g, T) }));
  g.output('logits', g.untaped(() => lmHead(model.config, w, hidden)));
  const compiled = await CompiledGraph.create(g, await testDevice());
  try {
    const out = await compiled.run({
      ...weights.feeds(compiled.inputNames),
      input_ids: cpuTensor(Int32Array.from(ref.input_ids.flat()), [B, T]),
      position_ids: cpuTensor(Int32Array.from(ref.position_ids.flat()), [B, T]),
    });
    const logits = out.logits;
    expect(logits.dims).toEqual(ref.logits_shape);
    const got = logits.data as Float32Array;
    const want = ref.logits.flat(2);
    expect(got.length).toBe(want.length);
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[i] - want[i]));
    return max;
  } finally {
    await compiled.release();
  }
}

const readJson = async <T>(file: string) => JSON.parse(await fs.readFile(file, 'utf8')) as T;

describe(`logits match transformers within ${TOLERANCE} (${TEST_DEVICE_NAME})`, () => {
  for (const name of ['llama3', 'qwen2', 'qwen3']) {
    it(name, async () => {
      const dir = path.join(FIXTURES, name);
      const diff = await maxLogitDiff(await loadModelFolder(dir), await readJson<Reference>(path.join(dir, 'reference.json')));
      console.log(`parity ${name} on ${TEST_DEVICE_NAME}: max |logit diff| = ${diff.toExponential(3)}`);
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
    });
  }

  it('built-in tiny-chars', async () => {
    const ref = await readJson<Reference>(path.join(FIXTURES, 'tiny-chars.reference.json'));
    const diff = await maxLogitDiff(await loadModelFolder(path.join(BUILTIN, 'tiny-chars')), ref);
    console.log(`parity tiny-chars on ${TEST_DEVICE_NAME}: max |logit diff| = ${diff.toExponential(3)}`);
    expect(diff).toBeLessThanOrEqual(TOLERANCE);
  });
});
