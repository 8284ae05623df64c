// The agent run loop on tiny-chars (an untrained character model: its replies are noise, which
// the environments answer with "Nothing happens."): the step record's groups of episodes, the
// OPID path from an analyzer's skills to each taught reply's Δ, the metrics, checkpoints and a
// resume that continues with the same task order.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentLoopInput, checkAgentMemory, opidMetrics, runAgentLoop, updateShape } from '../../../main/engine/agent/loop.ts';
import type { TurnDelta } from '../../../main/engine/agent/opid.ts';
import type { Episode } from '../../../main/engine/agent/episode.ts';
import { taskSet } from '../../../main/engine/envs/index.ts';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { resolveModelPath } from '../../../main/engine/model-paths.ts';
import { type RunConfigInput, parseRunConfig } from '../../../main/engine/rl/config.ts';
import type { StepRecord } from '../../../main/engine/rl/loop.ts';
import { estimateRunBytes, weightCount } from '../../../main/engine/rl/memory.ts';
import { AGENT_METRICS, type AgentSettings, agent } from '../../../main/engine/rl/methods/agent.ts';
import { testDevice } from '../../helpers/device.ts';

let model: HfModel;
let tmp: string;
const tasks = taskSet({ env: 'household', difficulty: 'easy', count: 3, seed: 2, split: 'train' });
const heldOut = taskSet({ env: 'household', difficulty: 'easy', count: 1, seed: 2, split: 'test' });

const CONFIG: RunConfigInput = {
  method: 'agent',
  seed: 4,
  steps: 2,
  promptsPerStep: 2,
  votes: 2,
  trainSamples: 2,
  maxNewTokens: 12,
  lr: 1e-3,
  agentMaxSteps: 2,
  agentHistory: 1,
  agentPromptStyle: 'compact',
  agentMiniBatch: 4,
  valEvery: 2,
  checkpointEvery: 1,
  // Large weights, so the test sees Δ move the advantages.
  opidEpisodeWeight: 0.5,
  opidStepWeight: 0.25,
};

beforeAll(async () => {
  model = await loadModelFolder(resolveModelPath('tiny-chars'));
  tmp = await mkdtemp(path.join(os.tmpdir(), 'agent-loop-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The loop's input; `config` as a run gives it (partial), checked here as a run's creation checks it. */
async function input({ config = CONFIG, ...extra }: Partial<Omit<AgentLoopInput, 'config'>> & { config?: RunConfigInput } = {}): Promise<AgentLoopInput> {
  return { config: parseRunConfig(config), model: { config: model.config, weights: model.weights, tokenizer: model.tokenizer!, dir: model.dir }, device: await testDevice(), tasks, validation: heldOut, ...extra };
}

// The analyzer's answer: an episode skill, and a step skill for the first turn.
const analyses: string[] = [];
const analyzer = async (messages: { content: string }[]) => {
  analyses.push(messages[0].content);
  return 'Sure. {"episode_skill": "Go to the receptacle first.", "step_skills": [{"step": 1, "skill": "Look around."}, {"step": 9, "skill": "out of range"}]}';
};

describe('the agent loop', () => {
  it("trains each mini-batch at its longest sequence's bucket length, never past the model's context", () => {
    const seq = (n: number) => ({ tokens: Array.from({ length: n }, (_, i) => i % 7) });
    const full = { size: 16, seqLen: 1023 };
    // A sequence of n tokens fills n − 1 positions; lengths round up to 8, 16, ..., 256, then to 128s.
    expect(updateShape([seq(3), seq(9)], full)).toEqual({ size: 16, seqLen: 8 });
    expect(updateShape([seq(70), seq(12)], full)).toEqual({ size: 16, seqLen: 128 });
    expect(updateShape([seq(300)], full)).toEqual({ size: 16, seqLen: 384 });
    expect(updateShape([seq(1024)], full)).toEqual({ size: 16, seqLen: 1023 });
  });

  it('plays a group of episodes per task, and with OPID trains each taught reply at A + w·Δ', async () => {
    const records: StepRecord[] = [];
    const dir = path.join(tmp, 'opid');
    const result = await runAgentLoop(await input({ analyzer, checkpointDir: dir }), { onStep: (r) => void records.push(r) });
    expect(result).toMatchObject({ lastStep: 2, aborted: false, paused: false });
    // Step 0 validates the base model; steps 1 and 2 train.
    expect(records.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(records[0].metrics[AGENT_METRICS.valSuccess]).toBeGreaterThanOrEqual(0);
    const step1 = records[1];
    expect(step1.groups).toHaveLength(2);
    for (const g of step1.groups) {
      expect(g.samples).toHaveLength(2);
      for (const s of g.samples) {
        const e = s.episode!;
        expect(e.goal).toBe(g.prompt);
        expect(e.turns.length).toBeGreaterThan(0);
        expect(e.turns.length).toBeLessThanOrEqual(2);
        // Noise gets "Nothing happens." and never ends the run.
        expect(e.turns[0].prompt.startsWith('Your task is to: ')).toBe(true);
        // The analyzer's skills: the episode skill (a failure: an avoidance rule) and the first turn's step skill; step 9 is dropped.
        expect(e.skills.map((k) => [k.kind, k.text, k.turn])).toEqual([
          [e.success ? 'workflow' : 'avoidance', 'Go to the receptacle first.', null],
          ['step', 'Look around.', 1],
        ]);
        // Turn 1 is taught by its step skill, turn 2 by the episode skill; Δ per reply token.
        expect(e.turns[0].skill).toBe(1);
        if (e.turns[1]) expect(e.turns[1].skill).toBe(0);
        for (const t of e.turns) {
          expect(t.delta!.length).toBe(t.tokenIds!.length);
          expect(t.delta!.every(Number.isFinite)).toBe(true);
        }
        expect(e.skills.reduce((a, k) => a + k.uses, 0)).toBe(e.turns.length);
      }
    }
    const m = step1.metrics;
    const turns = step1.groups.flatMap((g) => g.samples).reduce((a, s) => a + s.episode!.turns.length, 0);
    expect(m[AGENT_METRICS.teacherAvailable]).toBe(1);
    expect(m[AGENT_METRICS.criticalStepRatio]).toBeCloseTo(4 / turns, 6);
    expect(m[AGENT_METRICS.analyzerFailed]).toBe(0);
    for (const key of [AGENT_METRICS.success, AGENT_METRICS.length, AGENT_METRICS.advMean, AGENT_METRICS.advStd, AGENT_METRICS.advDeltaStep, AGENT_METRICS.advDeltaEpisode, 'actor/grad_norm']) {
      expect(Number.isFinite(m[key]), key).toBe(true);
    }
    // Δ moves the mixed advantage away from the episode's alone.
    expect(m[AGENT_METRICS.advStd]).toBeGreaterThan(0);
    expect(analyses[0]).toContain('Trajectory:');
    expect(records[2].metrics[AGENT_METRICS.valSuccess]).toBeGreaterThanOrEqual(0);
    expect((await readdir(dir)).sort()).toContain('last-2');
  }, 180_000);

  it('logs the mixed advantage over taught tokens only: none where no skill taught any', () => {
    const episodes = [{ turns: [{}, {}] }, { turns: [{}] }] as unknown as Episode[];
    const weights = { episode: 1, step: 0.5 };
    const none = opidMetrics(episodes, [null, null], [new Map(), new Map()], [1.5, -0.5], weights);
    expect(none[AGENT_METRICS.advEpisode]).toBe(0.5);
    for (const key of [AGENT_METRICS.advMean, AGENT_METRICS.advStd, AGENT_METRICS.advMax, AGENT_METRICS.advMin]) expect(none, key).not.toHaveProperty(key);
    // One step-taught turn of two tokens, Δ = [0.2, -0.4], in the episode of advantage 1.5: 1.6 and 1.3.
    const delta = { source: 'step', ids: [1, 2], student: new Float32Array(2), teacher: new Float32Array(2), delta: Float32Array.of(0.2, -0.4) } as unknown as TurnDelta;
    const taught = opidMetrics(episodes, [null, null], [new Map([[0, delta]]), new Map()], [1.5, -0.5], weights);
    expect(taught[AGENT_METRICS.advMean]).toBeCloseTo(1.45, 6);
    expect(taught[AGENT_METRICS.advStd]).toBeCloseTo(0.15, 6);
    expect(taught[AGENT_METRICS.advMax]).toBeCloseTo(1.6, 6);
    expect(taught[AGENT_METRICS.advMin]).toBeCloseTo(1.3, 6);
  });

  it('outcome-only asks no analyzer and records no skills; a resume continues the task order', async () => {
    const calls: number[] = [];
    const full: StepRecord[] = [];
    const cfg: RunConfigInput = { ...CONFIG, agentSignal: 'outcome', valEvery: 0 };
    await runAgentLoop(await input({ config: cfg, analyzer: async () => (calls.push(1), '{}') }), { onStep: (r) => void full.push(r) });
    expect(calls).toHaveLength(0);
    expect(full[0].groups.flatMap((g) => g.samples).every((s) => s.episode!.skills.length === 0 && s.episode!.turns.every((t) => t.delta === null))).toBe(true);
    expect(full[0].metrics[AGENT_METRICS.teacherAvailable]).toBeUndefined();

    const dir = path.join(tmp, 'resume');
    const first: StepRecord[] = [];
    await runAgentLoop(await input({ config: { ...cfg, steps: 2 }, checkpointDir: dir }), { onStep: (r) => void first.push(r), pauseRequested: () => first.length === 1 });
    expect(first.map((r) => r.step)).toEqual([1]);
    const rest: StepRecord[] = [];
    await runAgentLoop(await input({ config: cfg, checkpointDir: dir, resumeFrom: path.join(dir, 'last-1') }), { onStep: (r) => void rest.push(r) });
    expect(rest.map((r) => r.step)).toEqual([2]);
    // The same tasks and the same episodes as the uninterrupted run.
    expect(rest[0].groups.map((g) => g.itemIdx)).toEqual(full[1].groups.map((g) => g.itemIdx));
    expect(rest[0].groups.map((g) => g.samples.map((s) => s.text))).toEqual(full[1].groups.map((g) => g.samples.map((s) => s.text)));
  }, 180_000);

  it('refuses a run whose graphs could outgrow the memory it may use before building any, counting a validation’s episodes', async () => {
    // The estimate is the CPU provider's (as the RL loop's); other devices are not checked.
    const device = await testDevice();
    if (device.name !== 'cpu') return;
    const before = process.env.AUTODIDACT_MEMORY_LIMIT;
    const asked: number[] = [];
    try {
      process.env.AUTODIDACT_MEMORY_LIMIT = '1M';
      await expect(runAgentLoop(await input({ analyzer: async () => (asked.push(1), '{}') }))).rejects.toThrow(
        /more than the 0\.0 GB it may use \(AUTODIDACT_MEMORY_LIMIT\)\. Its update trains up to 4 sequences \(agentMiniBatch\) of up to the model's 1024 positions.*plays 4 episodes in lockstep.*Lower agentMiniBatch, promptsPerStep or votes/,
      );
      expect(asked).toEqual([]);
      // The bound: the model's context for every sequence and prompt; the rollout's episodes or a validation's, whichever are more.
      const config = parseRunConfig(CONFIG);
      const s = agent.settings.parse(config) as AgentSettings;
      const c = model.config;
      const need = (rows: number) => estimateRunBytes(c, { update: { size: 4, seqLen: 1023 }, reference: true, generate: { rows, prompts: rows, maxLength: 1024 }, trainable: weightCount(c) });
      process.env.AUTODIDACT_MEMORY_LIMIT = String(Math.ceil((need(4) + need(32)) / 2));
      await expect(checkAgentMemory(c, config, s, device, 1024, 4)).resolves.toEqual({ mergeAdapters: false });
      await expect(checkAgentMemory(c, config, s, device, 1024, 32)).rejects.toThrow(/plays 32 episodes in lockstep/);
      // On a GPU the GPU's budget (AUTODIDACT_GPU_MEMORY, or nvidia-smi's free memory) is the bound, counted as the device holds it.
      const gpu = (bytes: number) => async () => ({ bytes, source: 'AUTODIDACT_GPU_MEMORY', onDevice: true });
      const onGpu = (rows: number) => estimateRunBytes(c, { update: { size: 4, seqLen: 1023 }, reference: true, generate: { rows, prompts: rows, maxLength: 1024 }, trainable: weightCount(c), precision: 'fp32' }, true);
      expect(onGpu(32)).toBeLessThan(need(32));
      await expect(checkAgentMemory(c, config, s, device, 1024, 32, gpu(onGpu(32)))).resolves.toEqual({ mergeAdapters: false });
      await expect(checkAgentMemory(c, config, s, device, 1024, 32, gpu(onGpu(32) - 1))).rejects.toThrow(
        /of the GPU's memory, more than the .* GB it may use \(AUTODIDACT_GPU_MEMORY\)\. Its update trains up to 4 sequences/,
      );
      // WebGPU off NVIDIA reports no memory: nothing to check against.
      await expect(checkAgentMemory(c, config, s, device, 1024, 32, async () => null)).resolves.toEqual({ mergeAdapters: false });
    } finally {
      if (before === undefined) delete process.env.AUTODIDACT_MEMORY_LIMIT;
      else process.env.AUTODIDACT_MEMORY_LIMIT = before;
    }
  });
});
