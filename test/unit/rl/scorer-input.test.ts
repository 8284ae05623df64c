// What the loop gives a scorer and keeps of its answer: per sample the text, answer, token ids
// and the generator's per-token log-probs, entropies and self-certainties (the same numbers the
// step records), an asynchronous scorer's score, per-sample reward details, and for a method
// that does not vote, the loop's own vote for the record with no label-based metrics.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { type StepRecord, runLoop } from '../../../main/engine/rl/loop.ts';
import { TRAIN_METRICS } from '../../../main/engine/rl/metrics.ts';
import type { GroupScore, ScorerContext, ScorerGroup } from '../../../main/engine/rl/rewards.ts';
import { arithmeticItems } from '../../../main/engine/tasks/generators.ts';
import { toDbStep } from '../../../main/runs/sink.ts';
import { testDevice } from '../../helpers/device.ts';

let model: HfModel;
const items = arithmeticItems({ difficulty: 1, count: 4, seed: 2 });

beforeAll(async () => {
  model = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-chars'));
});

describe('the scorer’s input and output', () => {
  it('sees every per-token array of each sample, may answer later, and its details are recorded', async () => {
    const seen: { group: ScorerGroup; context: ScorerContext }[] = [];
    // Reward = mean self-certainty of the sample, answered after a pause: no vote at all.
    const scorer = async (group: ScorerGroup, context: ScorerContext): Promise<GroupScore> => {
      seen.push({ group, context });
      await new Promise((r) => setTimeout(r, 5));
      const certainty = group.samples.map((s) => s.selfCertainties.reduce((a, b) => a + b, 0) / Math.max(1, s.selfCertainties.length));
      return { rewards: certainty, labeled: true, details: certainty.map((c) => ({ certainty: c })) };
    };
    const records: StepRecord[] = [];
    const stop = new AbortController();
    await runLoop(
      {
        config: parseRunConfig({ method: 'ttrl', seed: 4, steps: 1, promptsPerStep: 2, votes: 3, trainSamples: 2, maxNewTokens: 6, lr: 1e-3, valEvery: 0, checkpointEvery: 0 }),
        model: { ...model, tokenizer: model.tokenizer! },
        device: await testDevice(),
        items,
        scorer,
      },
      { onStep: (r) => void records.push(r), signal: stop.signal },
    );
    expect(seen).toHaveLength(2);
    const [record] = records;
    record.groups.forEach((g, p) => {
      const { group, context } = seen[p];
      // The run's cancellation reaches the scorer (a judge can stop mid-group).
      expect(context.signal).toBe(stop.signal);
      expect(group.prompt).toBe(g.prompt);
      g.samples.forEach((s, i) => {
        const input = group.samples[i];
        expect(input.text).toBe(s.text);
        expect(input.answer).toBe(s.extractedAnswer);
        expect(input.tokenCount).toBe(s.tokenIds.length);
        expect(Int32Array.from(input.tokenIds)).toEqual(s.tokenIds);
        expect(Float32Array.from(input.logprobs)).toEqual(s.logprobs);
        expect(Float32Array.from(input.entropies)).toEqual(s.entropies);
        // Self-certainty is kept: KL(U ‖ p) ≥ 0 for every generated token.
        expect(s.selfCertainties).toBeInstanceOf(Float32Array);
        expect(s.selfCertainties.length).toBe(s.tokenIds.length);
        expect(Float32Array.from(input.selfCertainties)).toEqual(s.selfCertainties);
        for (const c of s.selfCertainties) expect(c).toBeGreaterThanOrEqual(-1e-5);
        expect(s.details).toEqual({ certainty: s.reward });
      });
      // No vote from the method: the record carries the loop's vote, and no label.
      expect(g.pseudoLabel).toBeNull();
      expect(g.labelCorrect).toBe(false);
      expect(g.voteCounts.reduce((a, c) => a + c.count, 0)).toBeLessThanOrEqual(3);
      expect(g.samples.filter((s) => s.usedForTraining)).toHaveLength(2);
    });
    // Label-based diagnostics need a label; the others are there.
    expect(record.metrics).not.toHaveProperty(TRAIN_METRICS.labelAccuracy);
    expect(record.metrics).not.toHaveProperty(TRAIN_METRICS.rewardAccuracy);
    expect(Number.isFinite(record.metrics[TRAIN_METRICS.groundTruthReward])).toBe(true);
    expect(Number.isFinite(record.metrics[TRAIN_METRICS.majorityRatio])).toBe(true);
    // The database form keeps both.
    const stored = toDbStep(record).rollouts![0].samples![0];
    expect(stored.selfCertainties).toBe(record.groups[0].samples[0].selfCertainties);
    expect(stored.details).toEqual(record.groups[0].samples[0].details);
  });

  it('a scorer that returns the wrong number of details is refused with the counts', async () => {
    const run = runLoop({
      config: parseRunConfig({ method: 'ttrl', seed: 4, steps: 1, promptsPerStep: 1, votes: 3, trainSamples: 2, maxNewTokens: 4, valEvery: 0, checkpointEvery: 0 }),
      model: { ...model, tokenizer: model.tokenizer! },
      device: await testDevice(),
      items,
      scorer: (g) => ({ rewards: g.samples.map(() => 0), labeled: true, details: [{}] }),
    });
    await expect(run).rejects.toThrow('the scorer returned reward details for 1 of 3 samples');
  });
});
