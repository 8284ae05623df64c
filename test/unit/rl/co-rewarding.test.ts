// Co-rewarding II against hand computations: the EMA schedule and update number by number, the
// scorer on a hand-made group with a fake teacher, and the EMA teacher in the real run loop on
// tiny-arith: each saved teacher is α·policy + (1 − α)·the previous teacher, and a run paused
// and resumed ends with the same teacher and rewards as one that was not.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { type RunConfigInput, parseRunConfig } from '../../../main/engine/rl/config.ts';
import { type StepRecord, runLoop, scorerFor } from '../../../main/engine/rl/loop.ts';
import { getMethod } from '../../../main/engine/rl/methods/registry.ts';
import type { ScorerGroup } from '../../../main/engine/rl/rewards.ts';
import { type Teacher, emaAlpha, emaUpdate } from '../../../main/engine/rl/teacher.ts';
import { loadCheckpoint } from '../../../main/engine/runtime/checkpoints.ts';
import { arithmeticItems } from '../../../main/engine/tasks/generators.ts';
import { testDevice } from '../../helpers/device.ts';

const group = (answers: (string | null)[]): ScorerGroup => ({
  prompt: 'Compute 2+3. Answer: ',
  samples: answers.map((answer) => ({ text: answer ?? 'no idea', answer, tokenCount: 1, tokenIds: [1], logprobs: [-1], entropies: [1], selfCertainties: [1] })),
});

function fakeTeacher(answers: (string | null)[]) {
  const asked: { prompt: string; n: number }[] = [];
  const teacher: Teacher = {
    sample: async (prompt, n) => {
      asked.push({ prompt, n });
      return { texts: answers.map((a) => a ?? '?'), answers };
    },
  };
  return { teacher, asked };
}

describe('the EMA schedule and update', () => {
  it('α runs from 0.01 to 1e-5 on a cosine, number by number', () => {
    expect(emaAlpha(1, 5)).toBeCloseTo(0.01, 15);
    expect(emaAlpha(5, 5)).toBeCloseTo(1e-5, 15);
    // Step 2 of 5: t = 1/4, (1 + cos(π/4))/2 = 0.85355339; 1e-5 + 0.00999 · 0.85355339 = 1e-5 + 0.0085269984 = 0.0085369984.
    expect(emaAlpha(2, 5)).toBeCloseTo(0.0085369984, 9);
    // The middle: half way, 1e-5 + 0.00999/2 = 0.005005.
    expect(emaAlpha(3, 5)).toBeCloseTo(0.005005, 12);
    expect(emaAlpha(1, 1)).toBe(0.01);
    expect(emaAlpha(2, 3, 0.5, 0.1)).toBeCloseTo(0.3, 12);
  });

  it('teacher ← α·policy + (1 − α)·teacher', () => {
    const teacher = Float32Array.of(1, -2, 0);
    emaUpdate(teacher, Float32Array.of(3, 2, 10), 0.25);
    // 0.25·3 + 0.75·1 = 1.5; 0.25·2 + 0.75·(−2) = −1; 0.25·10 = 2.5.
    expect(Array.from(teacher)).toEqual([1.5, -1, 2.5]);
    expect(() => emaUpdate(teacher, Float32Array.of(1), 0.5)).toThrow(/the teacher has 3 values, the policy 1/);
  });
});

describe('the co-rewarding scorer', () => {
  it('labels with the teacher’s majority and rewards agreement with it; logs both majorities as named labels', async () => {
    const config = parseRunConfig({ method: 'co-rewarding' });
    expect(config).toMatchObject({ votes: 8, trainSamples: 8, klCoef: 0.001, teacherAlphaStart: 0.01, teacherAlphaEnd: 1e-5 });
    const { teacher, asked } = fakeTeacher(['5', '5', '7', '5']);
    // The policy's own majority is 7 (two of four); the teacher's, 5 (three of four).
    const s = await scorerFor(config)(group(['7', '5.0', null, '7']), { teacher });
    expect(asked).toEqual([{ prompt: 'Compute 2+3. Answer: ', n: 4 }]);
    expect(s.rewards).toEqual([0, 1, 0, 0]);
    expect(s).toMatchObject({ labeled: true, pseudoLabel: '5', agreesWithLabel: [false, true, false, false], majorityRatio: 0.5, labels: { teacher: '5', policy: '7' } });
    expect(s.diagnostics).toEqual({ teacher_majority_ratio: 0.75, policy_teacher_agreement: 0 });
    const metrics = getMethod('co-rewarding').stepMetrics!([{ score: s, chosen: [0, 1, 2, 3] }], config);
    expect(metrics).toEqual({ 'coreward/teacher_majority_ratio': 0.75, 'coreward/policy_teacher_agreement': 0 });
  });

  it('a teacher whose vote ties gives no label; without the teacher the scorer says what is missing', async () => {
    const config = parseRunConfig({ method: 'co-rewarding' });
    const s = await scorerFor(config)(group(['5', '7']), { teacher: fakeTeacher(['5', '7']).teacher });
    expect(s).toMatchObject({ labeled: false, pseudoLabel: null, rewards: [0, 0] });
    await expect(Promise.resolve(scorerFor(config)(group(['5']), {}))).rejects.toThrow(/needs the EMA teacher/);
    expect(() => parseRunConfig({ method: 'co-rewarding', teacherAlphaStart: 0.001, teacherAlphaEnd: 0.01 })).toThrow(/teacherAlphaEnd \(0\.01\) cannot exceed teacherAlphaStart \(0\.001\)/);
  });
});

describe('the EMA teacher in the run loop', () => {
  const CONFIG: RunConfigInput = { method: 'co-rewarding', mode: 'lora', loraRank: 4, seed: 3, steps: 2, promptsPerStep: 2, votes: 4, trainSamples: 4, maxNewTokens: 6, lr: 0.05, valEvery: 0, checkpointEvery: 1 };
  const items = arithmeticItems({ difficulty: 1, count: 16, seed: 1 });
  let model: HfModel;
  let tmp: string;
  beforeAll(async () => {
    model = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-arith'));
    tmp = await mkdtemp(path.join(os.tmpdir(), 'co-rewarding-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  /** Runs the loop, keeping a copy of every checkpoint saved (the loop prunes older ones). */
  async function run(dir: string, extra: { resumeFrom?: string; pauseAfter?: number } = {}) {
    const records: StepRecord[] = [];
    const kept: string[] = [];
    const result = await runLoop(
      { config: parseRunConfig(CONFIG), model: { ...model, tokenizer: model.tokenizer! }, device: await testDevice(), items, checkpointDir: dir, resumeFrom: extra.resumeFrom },
      {
        onStep: async (r) => {
          records.push(r);
          for (const c of r.checkpoints) {
            const copy = path.join(dir, `kept-${path.basename(c.path)}`);
            await cp(c.path, copy, { recursive: true });
            kept.push(copy);
          }
        },
        pauseRequested: () => extra.pauseAfter !== undefined && records.length === extra.pauseAfter,
      },
    );
    return { records, kept, result };
  }

  /** A checkpoint's policy values in its layout order, and its teacher. */
  async function values(dir: string) {
    const c = await loadCheckpoint(dir);
    const policy = c.state!.layout.flatMap(([name]) => Array.from(c.weights.get(name)!.data));
    return { policy, teacher: Array.from(c.teacher!) };
  }

  it('saves with each checkpoint the teacher, one EMA step behind the policy it follows', async () => {
    const { kept, records } = await run(path.join(tmp, 'straight'));
    expect(records.map((r) => r.step)).toEqual([1, 2]);
    const [one, two] = await Promise.all(kept.map(values));
    // After step 2: teacher₂ = α₂·policy₂ + (1 − α₂)·teacher₁ with α₂ = 1e-5 (the last step), in float32.
    const alpha = emaAlpha(2, 2);
    expect(alpha).toBe(1e-5);
    two.teacher.forEach((t, i) => expect(t).toBe(Math.fround(alpha * two.policy[i] + (1 - alpha) * one.teacher[i])));
    // The policy moved, the teacher only a little: it is not the policy.
    const moved = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    expect(moved(two.policy, one.policy)).toBeGreaterThan(1e-4);
    expect(moved(two.teacher, two.policy)).toBeGreaterThan(1e-4);
    // The teacher's label is the group's pseudo-label.
    expect(records[0].groups.every((g) => g.labelSource === 'vote')).toBe(true);
  });

  it('a run paused after step 1 and resumed ends with the same teacher and rewards as one that was not', async () => {
    const straight = await run(path.join(tmp, 'again'));
    const first = await run(path.join(tmp, 'paused'), { pauseAfter: 1 });
    expect(first.result.paused).toBe(true);
    const resumed = await run(path.join(tmp, 'paused'), { resumeFrom: first.kept.at(-1)! });
    expect(resumed.records.map((r) => r.step)).toEqual([2]);
    expect((await values(resumed.kept.at(-1)!)).teacher).toEqual((await values(straight.kept.at(-1)!)).teacher);
    const rewards = (r: StepRecord) => r.groups.map((g) => [g.pseudoLabel, ...g.samples.map((s) => s.reward)]);
    expect(rewards(resumed.records[0])).toEqual(rewards(straight.records[1]));
  });
});
