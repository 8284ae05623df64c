import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mixAdvantage, teacherMessages, teacherSource, turnDelta, turnDeltas } from '../../../main/engine/agent/opid.ts';
import { withSkill } from '../../../main/engine/agent/prompts.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import type { ChatMessage } from '../../../main/engine/nn/tokenizer.ts';
import { TokenScorer } from '../../../main/engine/runtime/token-logprobs.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { testDevice } from '../../helpers/device.ts';

// Short turns in the prompts' shape (tiny-chars has 1,024 positions; OPID's full wording is longer).
const user1 = "Your task is to: put a mug in cabinet.\nYou see a cabinet 1.\n\nNow it's your turn.";
const user2 = "You are now at step 2. You arrive at cabinet 1. The cabinet 1 is closed.\n\nNow it's your turn.";
const turn: ChatMessage[] = [
  { role: 'user', content: user1 },
  { role: 'assistant', content: '<think></think><action>go to cabinet 1</action>' },
  { role: 'user', content: user2 },
];
const reply = '<think>closed</think><action>open cabinet 1</action>';

describe("OPID's teacher", () => {
  it('is taught by the step skill where there is one, else the episode skill, in the last observation only', () => {
    expect(teacherSource({ stepSkill: 'a', episodeSkill: 'b' })).toBe('step');
    expect(teacherSource({ stepSkill: ' ', episodeSkill: 'b' })).toBe('episode');
    expect(teacherSource({})).toBeNull();
    const t = teacherMessages(turn, { episodeSkill: 'Open closed receptacles first.' });
    expect(t.slice(0, 2)).toEqual(turn.slice(0, 2));
    expect(t[2].content).toBe(withSkill(user2, { episodeSkill: 'Open closed receptacles first.' }));
  });

  it('re-scores the same reply tokens: Δ equals a direct log-prob computation of teacher and student', async () => {
    const model = await loadModelFolder(fileURLToPath(new URL('../../../resources/models/tiny-chars', import.meta.url)));
    const tokenizer = model.tokenizer!;
    const scorer = new TokenScorer({ config: model.config, weights: new HostWeights(model.weights), device: await testDevice() });
    const skills = { stepSkill: 'The cabinet is closed: open it.' };
    const d = (await turnDelta(scorer, tokenizer, turn, reply, skills))!;
    expect(d.source).toBe('step');
    // Directly: the whole conversation as one text, scored at once; the reply starts where the
    // prompt with the generation prompt ends, and ends with the template's EOS.
    const direct = async (messages: ChatMessage[]) => {
      const prompt = tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
      const full = tokenizer.encode(tokenizer.applyChatTemplate([...messages, { role: 'assistant', content: reply }]), { addSpecialTokens: false });
      const [lp] = await scorer.score([full]);
      return { ids: full.slice(prompt.length), logprobs: Array.from(lp.slice(prompt.length - 1)) };
    };
    const student = await direct(turn);
    const teacher = await direct(teacherMessages(turn, skills));
    expect(d.ids).toEqual(student.ids);
    expect(tokenizer.decode(d.ids, { skipSpecialTokens: true })).toBe(reply);
    expect(d.ids.at(-1)).toBe(tokenizer.eosTokenIds[0]);
    for (let i = 0; i < d.ids.length; i++) {
      expect(d.student[i]).toBeCloseTo(student.logprobs[i], 5);
      expect(d.teacher[i]).toBeCloseTo(teacher.logprobs[i], 5);
      expect(d.delta[i]).toBeCloseTo(teacher.logprobs[i] - student.logprobs[i], 5);
    }
    // The skill changes the context, so the teacher disagrees somewhere.
    expect(d.delta.some((x) => Math.abs(x) > 1e-4)).toBe(true);
    expect(await turnDelta(scorer, tokenizer, turn, reply, {})).toBeNull();

    // A step's replies re-scored in batches (padded to the longest) give each turn's own Δ.
    const many = [
      { messages: turn, reply, skills },
      { messages: turn.slice(0, 1), reply: '<think></think><action>go to cabinet 1</action>', skills: { episodeSkill: 'Find the mug.' } },
      { messages: turn, reply, skills: {} },
    ];
    const batched = await turnDeltas(scorer, tokenizer, many, 2);
    expect(batched[2]).toBeNull();
    for (const [k, t] of many.slice(0, 2).entries()) {
      const one = (await turnDelta(scorer, tokenizer, t.messages, t.reply, t.skills))!;
      expect(batched[k]!.source).toBe(one.source);
      expect(batched[k]!.ids).toEqual(one.ids);
      one.delta.forEach((x, i) => expect(batched[k]!.delta[i]).toBeCloseTo(x, 4));
    }
    await scorer.release();
  }, 60_000);
});

describe("OPID's advantage mix", () => {
  it('adds the weighted Δ of the turn\'s teacher to the episode advantage, number by number', () => {
    const delta = Float32Array.of(1, -2, 0.5);
    expect(Array.from(mixAdvantage(0.5, 3, { source: 'step', delta }, { episode: 0.1, step: 0.01 }))).toEqual(
      [0.5 + 0.01, 0.5 - 0.02, 0.5 + 0.005].map(Math.fround),
    );
    expect(Array.from(mixAdvantage(-1, 3, { source: 'episode', delta }, { episode: 0.1, step: 0.01 }))).toEqual([-0.9, -1.2, -0.95].map(Math.fround));
    // OPID's defaults: 1e-3 each.
    expect(Array.from(mixAdvantage(0, 3, { source: 'episode', delta }))).toEqual([1e-3, -2e-3, 5e-4].map(Math.fround));
    expect(Array.from(mixAdvantage(0.25, 2, null))).toEqual([0.25, 0.25]);
    expect(() => mixAdvantage(0, 2, { source: 'step', delta })).toThrow('Δ has 3 tokens, the reply 2');
  });
});
