import { describe, expect, it } from 'vitest';
import { encodeConversation } from '../../../main/engine/agent/conversation.ts';
import { expertPolicy, runEpisode } from '../../../main/engine/agent/episode.ts';
import { expertReply, parseAgentAction, turnMessage, withSkill } from '../../../main/engine/agent/prompts.ts';
import { DIFFICULTIES, NOTHING_HAPPENS, environment, taskSet } from '../../../main/engine/envs/index.ts';
import { resolveModelPath } from '../../../main/engine/model-paths.ts';
import { TextTokenizer, type ChatMessage } from '../../../main/engine/nn/tokenizer.ts';

describe('agent turns', () => {
  it('read the action between the tags, lower case, and judge the format as verl-agent does', () => {
    expect(parseAgentAction('<think>the mug is in the cabinet</think><action>Go to Cabinet 1</action>')).toEqual({ action: 'go to cabinet 1', formatValid: true });
    expect(parseAgentAction('<action> look </action>')).toEqual({ action: 'look', formatValid: false });
    expect(parseAgentAction('<think>x</think><action></action>')).toEqual({ action: '', formatValid: false });
    expect(parseAgentAction('I would go to the fridge 1 now, thanks')).toEqual({ action: 'go to the fridge 1 now, thanks', formatValid: false });
    expect(parseAgentAction('</action> then <action>open fridge 1</action> and <action>x</action>').action).toBe('open fridge 1');
    expect(parseAgentAction(expertReply('click[buy now]'))).toEqual({ action: 'click[buy now]', formatValid: true });
  });

  it('word the first and later turns as OPID\'s prompts', () => {
    const first = turnMessage('household', { task: 'put a mug in cabinet.', observation: 'You are in the middle of a room.', admissibleActions: ['look', 'inventory'], step: 1 });
    expect(first).toBe(
      "You are an expert agent operating in the ALFRED Embodied Environment. Your task is to: put a mug in cabinet.\nYour current observation is: You are in the middle of a room.\nYour admissible actions of the current situation are: ['look', 'inventory'].\n\n" +
        "Now it's your turn to take an action.\nYou should first reason step-by-step about the current situation. This reasoning process MUST be enclosed within <think> </think> tags.\nOnce you've finished your reasoning, you should choose an admissible action for current step and present it within <action> </action> tags.",
    );
    const later = turnMessage('shop', { task: 't', observation: 'o', admissibleActions: ['click[buy now]'], step: 4 });
    expect(later.startsWith("You are now at step 4. Your current observation is: o\nYour admissible actions of the current situation are: ['click[buy now]'].")).toBe(true);
    expect(() => turnMessage('sokoban', { task: 't', observation: 'o', admissibleActions: [], step: 1 })).toThrow('no agent prompt for environment "sokoban"');
  });

  it("word compact turns with the task every time, the admissible actions the observation does not show, and no copy of the task in the observation; the teacher's skill still finds its place", () => {
    const view = { task: 'put a mug in cabinet.', observation: 'You arrive at cabinet 1.', admissibleActions: ['look', 'open cabinet 1'], step: 3 };
    const compact = turnMessage('household', view, 'compact');
    expect(compact).toBe("Your task is to: put a mug in cabinet.\nStep 3: You arrive at cabinet 1.\nActions: 'look', 'open cabinet 1'\nNow it's your turn.");
    expect(withSkill(compact, { stepSkill: 'open cabinet 1' })).toBe(
      "Your task is to: put a mug in cabinet.\nStep 3: You arrive at cabinet 1.\nActions: 'look', 'open cabinet 1'\n\n**Critical-Step Guidance**\nUse this current-step guidance for this decision only:\n[open cabinet 1]\n\nNow it's your turn.",
    );
    expect(withSkill(compact, { episodeSkill: 'Find the mug first.' }).startsWith('Your task is to: put a mug in cabinet.\n\n**Episode-Level Guidance**')).toBe(true);
    // The household's first observation ends with the task, the shop's pages start with it.
    const first = turnMessage('household', { ...view, observation: 'You are in the middle of a room.\n\nYour task is to: put a mug in cabinet. ', step: 1 }, 'compact');
    expect(first).toBe("Your task is to: put a mug in cabinet.\nStep 1: You are in the middle of a room.\nActions: 'look', 'open cabinet 1'\nNow it's your turn.");
    // A shop page lists its own clicks; the search box's action is not on the page.
    const task = 'i need a mug (blue), and price lower than 10.00 dollars';
    const results = turnMessage('shop', { task, observation: `Instruction: [SEP] ${task} [SEP] Back to Search [SEP] B0AB12CD34 [SEP] Mug [SEP] $5.00`, admissibleActions: ['click[back to search]', 'click[b0ab12cd34]'], step: 2 }, 'compact');
    expect(results).toBe(`Your task is to: ${task}\nStep 2: Back to Search [SEP] B0AB12CD34 [SEP] Mug [SEP] $5.00\nNow it's your turn.`);
    const search = turnMessage('shop', { task, observation: `WebShop [SEP] Instruction: [SEP] ${task} [SEP] Search`, admissibleActions: ['search[<your query>]'], step: 1 }, 'compact');
    expect(search).toBe(`Your task is to: ${task}\nStep 1: WebShop [SEP] Search\nActions: 'search[<your query>]'\nNow it's your turn.`);
  });
});

describe("the teacher's view (OPID's skill in the observation)", () => {
  const first = turnMessage('household', { task: 'put a mug in cabinet.', observation: 'o', admissibleActions: ['look'], step: 1 });
  const later = turnMessage('household', { task: 'put a mug in cabinet.', observation: 'o', admissibleActions: ['look'], step: 3 });
  const now = "Now it's your turn to take an action.";

  it('puts the episode skill after the task line, or before the request in later turns', () => {
    const block = '**Episode-Level Guidance**\nRefer to this episode-level guidance when deciding what action to take in the current episode:\n[Find the mug first, then the cabinet.]';
    expect(withSkill(first, { episodeSkill: ' Find the mug first, then the cabinet. ' })).toBe(
      `You are an expert agent operating in the ALFRED Embodied Environment. Your task is to: put a mug in cabinet.\n\n${block}\n\nYour current observation is: o\nYour admissible actions of the current situation are: ['look'].\n\n${first.slice(first.indexOf(now))}`,
    );
    const l = withSkill(later, { episodeSkill: 'Find the mug first, then the cabinet.' });
    expect(l).toBe(`${later.slice(0, later.indexOf(now)).trimEnd()}\n\n${block}\n\n${later.slice(later.indexOf(now))}`);
  });

  it('prefers the step skill, placed before the request; without skills the message is unchanged', () => {
    const s = withSkill(first, { episodeSkill: 'E', stepSkill: 'Open the cabinet before taking.' });
    expect(s).toBe(`${first.slice(0, first.indexOf(now)).trimEnd()}\n\n**Critical-Step Guidance**\nUse this current-step guidance for this decision only:\n[Open the cabinet before taking.]\n\n${first.slice(first.indexOf(now))}`);
    expect(s).not.toContain('[E]');
    expect(withSkill(first, {})).toBe(first);
    expect(withSkill(first, { stepSkill: '  ', episodeSkill: '' })).toBe(first);
  });
});

describe('episodes', () => {
  it('the expert as a policy succeeds on every task, each turn a conversation of the turns before', async () => {
    for (const id of ['household', 'shop']) {
      for (const difficulty of DIFFICULTIES) {
        for (const task of taskSet({ env: id, difficulty, count: 10, seed: 5, split: 'train' })) {
          const env = environment(id).create();
          const ep = await runEpisode(env, task, expertPolicy(env));
          expect(ep.success, JSON.stringify(task)).toBe(true);
          expect(ep.reward).toBe(1);
          ep.turns.forEach((t, i) => {
            expect(t.formatValid).toBe(true);
            expect(t.messages).toHaveLength(2 * i + 1);
            expect(t.messages.map((m) => m.role)).toEqual([...Array.from({ length: i }, () => ['user', 'assistant']).flat(), 'user']);
            if (i > 0) expect(t.messages[2 * i - 1].content).toBe(ep.turns[i - 1].reply);
          });
          expect(ep.turns.at(-1)!.done).toBe(true);
        }
      }
    }
  });

  it('a policy that never acts runs out of steps; history keeps only the latest turns', async () => {
    const env = environment('household').create();
    const task = taskSet({ env: 'household', difficulty: 'easy', count: 1, seed: 1, split: 'test' })[0];
    const ep = await runEpisode(env, task, () => 'I am not sure what to do.', { maxSteps: 6, historyTurns: 2 });
    expect(ep.turns).toHaveLength(6);
    expect(ep).toMatchObject({ success: false, reward: 0 });
    for (const t of ep.turns) expect(t).toMatchObject({ observation: NOTHING_HAPPENS, formatValid: false, done: false });
    expect(ep.turns.map((t) => t.messages.length)).toEqual([1, 3, 5, 5, 5, 5]);
    expect(ep.turns[5].messages[0].content.startsWith('You are now at step 4.')).toBe(true);
    await expect(runEpisode(env, task, () => '', { maxSteps: 0 })).rejects.toThrow('maxSteps must be a whole number of at least 1');
  });
});

describe('conversation loss masks', () => {
  it("train exactly the assistant's tokens of every turn, and the tokens are the whole conversation's", async () => {
    const tokenizer = (await TextTokenizer.fromFolder(resolveModelPath('tiny-chars')))!;
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Where is the mug?' },
      { role: 'assistant', content: '<action>go to cabinet 1</action>' },
      { role: 'user', content: 'You arrive at cabinet 1.' },
      { role: 'assistant', content: '<action>open cabinet 1</action>' },
    ];
    const enc = encodeConversation(tokenizer, messages);
    // The same tokens as the whole rendered conversation (a character-level tokenizer splits the same way).
    expect(enc.ids).toEqual(tokenizer.encode(tokenizer.applyChatTemplate(messages), { addSpecialTokens: false }));
    expect(enc.replies).toHaveLength(2);
    const eos = tokenizer.eosTokenIds[0];
    const trained = enc.replies.map((r) => enc.ids.slice(r.start, r.end));
    expect(trained.map((ids) => tokenizer.decode(ids.slice(0, -1)))).toEqual(['<action>go to cabinet 1</action>', '<action>open cabinet 1</action>']);
    expect(trained.map((ids) => ids.at(-1))).toEqual([eos, eos]);
    // The mask is 1 exactly inside the replies.
    const inReply = (i: number) => enc.replies.some((r) => i >= r.start && i < r.end);
    expect(Array.from(enc.mask)).toEqual(enc.ids.map((_, i) => (inReply(i) ? 1 : 0)));
    // The first reply starts right after the generation prompt of the turn before.
    const prompt = tokenizer.encode(tokenizer.applyChatTemplate(messages.slice(0, 2), { addGenerationPrompt: true }), { addSpecialTokens: false });
    expect(enc.replies[0].start).toBe(prompt.length);
    // A conversation ending on a user turn keeps it as context.
    const open = encodeConversation(tokenizer, messages.slice(0, 4));
    expect(open.mask.reduce((s, x) => s + x, 0)).toBe(trained[0].length);
  });

  it('refuses a template that rewrites earlier turns', () => {
    const rewriting = {
      encode: (t: string) => Array.from(t, (c) => c.charCodeAt(0)),
      applyChatTemplate: (ms: readonly ChatMessage[], o: { addGenerationPrompt?: boolean } = {}) =>
        // Like templates that drop earlier replies' reasoning: the last reply is written differently.
        ms.map((m, i) => (m.role === 'assistant' && i < ms.length - 1 ? '[old]' : `${m.role}:${m.content}`)).join('|') + (o.addGenerationPrompt ? '|assistant:' : ''),
    };
    expect(() =>
      encodeConversation(rewriting, [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'user', content: 'c' },
        { role: 'assistant', content: 'd' },
      ]),
    ).toThrow('the chat template rewrites earlier turns');
  });
});
