// A deterministic training step of a given shape, shared by the step tests and the crash
// writer so both sides agree on what a complete step contains.
import type { StepRecord } from '../../../main/db/steps.ts';

/** The step shape the crash writer uses (crash.test.ts checks every step has all of it). */
export const CRASH_SHAPE = { GROUPS: 8, SAMPLES: 16, TOKENS: 64 } as const;

export const METRIC_KEYS = ['train/label_accuracy', 'train/majority_ratio', 'train/entropy', 'actor/lr', 'timing/step'];

export function makeStep(step: number, groups = 4, samplesPerGroup = 8, tokens = 32): StepRecord {
  const metrics: Record<string, number> = {};
  METRIC_KEYS.forEach((k, i) => (metrics[k] = step + i / 10));
  return {
    metrics,
    rollouts: Array.from({ length: groups }, (_, g) => ({
      itemIdx: step * groups + g,
      prompt: `step ${step} prompt ${g}: what is ${g} + ${step}?`,
      pseudoLabel: String(g + step),
      voteCounts: { [String(g + step)]: samplesPerGroup - 1, '0': 1 },
      majorityRatio: (samplesPerGroup - 1) / samplesPerGroup,
      labelCorrect: g % 2 === 0,
      samples: Array.from({ length: samplesPerGroup }, (_, i) => ({
        text: `reasoning ${i} ... the answer is \\boxed{${i === 0 ? 0 : g + step}}`,
        extractedAnswer: String(i === 0 ? 0 : g + step),
        reward: i === 0 ? 0 : 1,
        advantage: i === 0 ? -1.5 : 0.2,
        usedForTraining: i % 2 === 0,
        logprobs: Float32Array.from({ length: tokens }, (_, t) => -t / 7 - step),
        entropies: Float32Array.from({ length: tokens }, (_, t) => t / 3),
      })),
    })),
  };
}
