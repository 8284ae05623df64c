// The RL loop's update on the test device (on WebGPU in `npm run test:webgpu`): its sampled
// log-probs and the trainer's must score the same policy. With one update per rollout verl's
// ppo_kl (the mean of sampled minus trained log-probs over the response tokens) is then their
// numeric gap, and no token's ratio is clipped. It would not be if the update's batch layout
// (prompts left-padded to end together, the output layer on the response window alone) put a
// response token where its sampled log-prob is not, or if generation's merged adapters (a GPU
// LoRA run's default) were not the trained ones.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { type StepRecord, runLoop } from '../../../main/engine/rl/loop.ts';
import { DEVICE_BUFFERS_METRIC, TRAIN_METRICS } from '../../../main/engine/rl/metrics.ts';
import type { Precision } from '../../../main/engine/runtime/precision.ts';
import { TEST_DEVICE_NAME, testDevice } from '../../helpers/device.ts';
import { rewardsBy } from '../../helpers/scorers.ts';

const onGpu = TEST_DEVICE_NAME !== 'cpu';
let model: HfModel;
// Prompts of different lengths, so the update's batch pads them to end together.
const items = ['1+1=', 'What is 12 + 30?', 'Add 7 and 5.', 'Compute 100 - 1 and say it'].map((prompt) => ({ prompt }));

beforeAll(async () => {
  model = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-chars'));
});

/** Every group labeled, rewards alternating, so every step updates. */
const alternating = rewardsBy((i) => i % 2);

async function steps(mode: 'lora' | 'full', precision: Precision): Promise<StepRecord[]> {
  const config = parseRunConfig({ method: 'ttrl', seed: 5, steps: 2, promptsPerStep: 2, votes: 4, trainSamples: 4, maxNewTokens: 8, lr: 1e-3, mode, precision, valEvery: 0, valBeforeTrain: false });
  const records: StepRecord[] = [];
  await runLoop({ config, model: { ...model, tokenizer: model.tokenizer! }, device: await testDevice(), items, scorer: alternating }, { onStep: (r) => void records.push(r) });
  return records;
}

describe(`the RL update scores what the rollout sampled (${TEST_DEVICE_NAME})`, () => {
  it.each([
    ['LoRA', 'lora'],
    ['full fine-tuning', 'full'],
  ] as const)('%s, fp32: ppo_kl within 1e-5 and nothing clipped, step after step', async (_name, mode) => {
    const records = await steps(mode, 'fp32');
    expect(records.map((r) => r.step)).toEqual([1, 2]);
    for (const r of records) {
      const gap = r.metrics[TRAIN_METRICS.ppoKl];
      console.log(`${TEST_DEVICE_NAME} ${mode} fp32, step ${r.step}: ppo_kl ${gap.toExponential(2)}, clip ratio ${r.metrics[TRAIN_METRICS.clipRatio]}`);
      expect(r.metrics[TRAIN_METRICS.gradNorm]).toBeGreaterThan(0);
      expect(Math.abs(gap)).toBeLessThan(1e-5);
      expect(r.metrics[TRAIN_METRICS.clipRatio]).toBe(0);
    }
  });

  it.runIf(onGpu)('LoRA, mixed precision: ppo_kl within mixed precision\'s gap, the GPU buffers reported', async () => {
    for (const r of await steps('lora', 'mixed')) {
      const gap = r.metrics[TRAIN_METRICS.ppoKl];
      console.log(`${TEST_DEVICE_NAME} lora mixed, step ${r.step}: ppo_kl ${gap.toExponential(2)}, clip ratio ${r.metrics[TRAIN_METRICS.clipRatio]}`);
      expect(Math.abs(gap)).toBeLessThan(5e-3);
      expect(r.metrics[TRAIN_METRICS.clipRatio]).toBe(0);
      expect(r.metrics[DEVICE_BUFFERS_METRIC]).toBeGreaterThan(0);
    }
  });
});
