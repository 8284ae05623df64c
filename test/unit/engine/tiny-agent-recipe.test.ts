// The built-in agent model's recipe (resources/models/make-tiny-agent.ts): the expert's household
// turns in the compact prompt, a share with OPID's teacher view, only each reply trained; and the
// committed model answers a held-out task's first turn in the agent's format.
import { describe, expect, it } from 'vitest';
import { parseAgentAction, turnMessage } from '../../../main/engine/agent/prompts.ts';
import { environment, taskSet } from '../../../main/engine/envs/index.ts';
import { Generator } from '../../../main/engine/generate/generator.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { resolveModelPath } from '../../../main/engine/model-paths.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { TINY_AGENT_DEFAULTS, TINY_AGENT_RUN_SETTINGS, expertTurns, turnExample } from '../../../resources/models/make-tiny-agent.ts';
import { testDevice } from '../../helpers/device.ts';

describe('tiny-agent', () => {
  it("is taught the expert's turns, some with a skill, the reply alone trained; the same options give the same data", async () => {
    const o = { ...TINY_AGENT_DEFAULTS, episodes: 12, guidanceShare: 0.5 };
    const turns = await expertTurns(o);
    expect(await expertTurns(o)).toEqual(turns);
    for (const c of turns) {
      expect(c.map((m) => m.role)).toEqual(['user', 'assistant']);
      expect(c[0].content.startsWith('Your task is to: ')).toBe(true);
      expect(parseAgentAction(c[1].content).formatValid).toBe(true);
    }
    const guided = turns.filter((c) => /Guidance\*\*/.test(c[0].content)).length;
    expect(guided).toBeGreaterThan(0.3 * turns.length);
    expect(guided).toBeLessThan(0.7 * turns.length);
    expect(turns.filter((c) => /Guidance\*\*/.test(c[0].content))).not.toEqual([]);

    const model = await loadModelFolder(resolveModelPath('tiny-agent'));
    const tok = model.tokenizer!;
    const ex = turnExample(tok, turns[0]);
    const trained = ex.tokens.filter((_, i) => ex.trainTokens![i]);
    expect(tok.decode(trained, { skipSpecialTokens: false })).toBe(`${turns[0][1].content}${tok.decode([tok.eosTokenIds[0]], { skipSpecialTokens: false })}`);
  });

  it('answers a held-out task in the agent format', async () => {
    const model = await loadModelFolder(resolveModelPath('tiny-agent'));
    const tok = model.tokenizer!;
    const task = taskSet({ env: 'household', difficulty: 'easy', count: 1, seed: 3, split: 'test' })[0];
    const start = environment('household').create().reset(task);
    const user = turnMessage('household', { task: start.task, observation: start.observation, admissibleActions: start.admissibleActions, step: 1 }, TINY_AGENT_RUN_SETTINGS.agentPromptStyle);
    const prompt = tok.encode(tok.applyChatTemplate([{ role: 'user', content: user }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    const gen = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device: await testDevice(), maxLength: prompt.length + TINY_AGENT_RUN_SETTINGS.maxNewTokens });
    const out = await gen.generate({ promptIds: [prompt], maxNewTokens: TINY_AGENT_RUN_SETTINGS.maxNewTokens, temperature: 0, tokenizer: tok });
    await gen.release();
    const reply = out.samples[0].text!;
    expect(parseAgentAction(reply).formatValid, reply).toBe(true);
    expect(parseAgentAction(reply).action).toMatch(/^go to [a-z]+ \d+$/);
  }, 60_000);
});
