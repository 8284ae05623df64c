// One outcome-only update as the agent loop makes it (GRPO over a task's group of episodes, each
// turn a sequence at its episode's advantage, PPO's clipped loss with per-token advantages) on the
// built-in tiny-agent: the rewarded episode's replies become more likely and the failed one's less.
// A sign or masking slip anywhere from the advantages to the loss would move them the other way.
import { describe, expect, it } from 'vitest';
import { type Episode, runEpisode } from '../../../main/engine/agent/episode.ts';
import { expertReply } from '../../../main/engine/agent/prompts.ts';
import { episodeAdvantages, episodeExamples } from '../../../main/engine/agent/training.ts';
import { environment, taskSet } from '../../../main/engine/envs/index.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { resolveModelPath } from '../../../main/engine/model-paths.ts';
import { Trainer, makeCausalBatch } from '../../../main/engine/runtime/trainer.ts';
import { TINY_AGENT_RUN_SETTINGS } from '../../../resources/models/make-tiny-agent.ts';
import { testDevice } from '../../helpers/device.ts';

describe('an outcome-only agent update', () => {
  it("raises the log-prob of the rewarded episode's replies and lowers the failed one's", async () => {
    const model = await loadModelFolder(resolveModelPath('tiny-agent'));
    const tok = model.tokenizer!;
    const task = taskSet({ env: 'household', difficulty: 'easy', count: 1, seed: 5, split: 'train' })[0];
    const play = async (move: (env: ReturnType<ReturnType<typeof environment>['create']>) => string): Promise<Episode> => {
      const env = environment('household').create();
      return runEpisode(env, task, () => expertReply(move(env)), { maxSteps: 6, historyTurns: TINY_AGENT_RUN_SETTINGS.agentHistory, promptStyle: TINY_AGENT_RUN_SETTINGS.agentPromptStyle });
    };
    const solved = await play((env) => env.expertAction()!);
    const failed = await play(() => 'look');
    expect([solved.success, failed.success]).toEqual([true, false]);
    const advantages = episodeAdvantages([solved, failed]);
    expect(advantages[0]).toBeGreaterThan(0);
    expect(advantages[1]).toBeLessThan(0);
    const examples = [solved, failed].flatMap((e, i) => episodeExamples(e, tok, advantages[i]).map((ex) => ({ ex, rewarded: i === 0 })));
    const seqLen = Math.max(...examples.map(({ ex }) => ex.tokens.length)) - 1;
    const shape = { size: examples.length, seqLen };
    const batch = makeCausalBatch(
      examples.map(({ ex }) => ex),
      shape,
      tok.padTokenId ?? 0,
    );
    const trainer = await Trainer.create({
      config: model.config,
      weights: model.weights,
      device: await testDevice(),
      mode: { kind: 'full' },
      loss: { kind: 'policy', temperature: 1, clipLow: 0.2, clipHigh: 0.28, klCoef: 0, entropyCoef: 0, tokenAdvantages: true },
      optimizer: { weightDecay: 0, maxGradNorm: 1 },
      batch: shape,
      seed: 0,
    });
    try {
      // The summed log-prob of each sequence's trained (reply) tokens.
      const replyLogprobs = async () => {
        const lp = await trainer.logprobs(batch, { shape });
        return examples.map((_, r) => {
          let sum = 0;
          for (let t = 0; t < seqLen; t++) if (batch.lossMask[r * seqLen + t]) sum += lp[r * seqLen + t];
          return sum;
        });
      };
      const before = await replyLogprobs();
      await trainer.step({ ...batch, advantages: batch.tokenAdvantages!, oldLogprobs: await trainer.logprobs(batch, { shape }) }, 1e-4, { shape });
      const after = await replyLogprobs();
      examples.forEach(({ rewarded }, r) => {
        if (rewarded) expect(after[r], `rewarded turn ${r}`).toBeGreaterThan(before[r]);
        else expect(after[r], `failed turn ${r}`).toBeLessThan(before[r]);
      });
    } finally {
      await trainer.release();
    }
  }, 60_000);
});
