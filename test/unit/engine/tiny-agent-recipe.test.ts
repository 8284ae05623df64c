// The built-in agent model's recipe (resources/models/make-tiny-agent.ts): expert-labelled turns of
// both environments in the compact prompt (DAgger: some off the expert's path, some repeating the
// last move), a share with OPID's teacher view, only each reply trained; its word-level tokenizer
// (resources/models/tiny-agent-tokenizer.ts); and the committed model answers a held-out task's
// first turn of each environment in the agent's format.
import { describe, expect, it } from 'vitest';
import { parseAgentAction, turnMessage } from '../../../main/engine/agent/prompts.ts';
import { environment, taskSet } from '../../../main/engine/envs/index.ts';
import { Generator } from '../../../main/engine/generate/generator.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { resolveModelPath } from '../../../main/engine/model-paths.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { TextTokenizer } from '../../../main/engine/nn/tokenizer.ts';
import { CHAT_TEMPLATE, charTokenizerConfig } from '../../../resources/models/make-builtin-models.ts';
import { TINY_AGENT_DEFAULTS, TINY_AGENT_RUN_SETTINGS, expertTurns, repeatedWordsRow, turnExample } from '../../../resources/models/make-tiny-agent.ts';
import { vocabularyOf, vocabularyTexts, wordPieces, wordTokenizerJson } from '../../../resources/models/tiny-agent-tokenizer.ts';
import { fnv1a32, mulberry32Uniform } from '../../../main/engine/runtime/rng.ts';
import { testDevice } from '../../helpers/device.ts';

describe('tiny-agent', () => {
  it("is taught expert-labelled turns of both environments, some off the expert's path, some with a skill, the reply alone trained; the same options give the same data", async () => {
    const o = { ...TINY_AGENT_DEFAULTS, episodes: 12, guidanceShare: 0.5, explore: 0.3 };
    const turns = await expertTurns(o);
    expect(await expertTurns(o)).toEqual(turns);
    expect(new Set(turns.map((t) => t.env))).toEqual(new Set(['household', 'shop']));
    for (const { env, conversation: c } of turns) {
      expect(c.map((m) => m.role)).toEqual(['user', 'assistant']);
      expect(c[0].content.startsWith('Your task is to: ')).toBe(true);
      // The household's actions are listed to copy from; a shop page shows its own clicks.
      if (env === 'household') expect(c[0].content).toMatch(/\nActions: '/);
      expect(parseAgentAction(c[1].content).formatValid).toBe(true);
    }
    const guided = turns.filter((t) => /Guidance\*\*/.test(t.conversation[0].content)).length;
    expect(guided).toBeGreaterThan(0.3 * turns.length);
    expect(guided).toBeLessThan(0.7 * turns.length);
    // Exploration: more turns than the expert alone takes, and states it never meets (a receptacle
    // without the goal's object, a product page it does not buy), each labelled with the expert's move.
    const expertOnly = await expertTurns({ ...o, explore: 0, repeat: 0 });
    expect(turns.length).toBeGreaterThan(expertOnly.length);
    const replies = (ts: typeof turns) => ts.map((t) => parseAgentAction(t.conversation[1].content).action);
    expect(replies(turns).filter((a) => a === 'click[< prev]' || a === 'click[back to search]').length).toBeGreaterThan(0);
    expect(replies(expertOnly).filter((a) => a === 'click[< prev]' || a === 'click[back to search]').length).toBe(0);

    const model = await loadModelFolder(resolveModelPath('tiny-agent'));
    const tok = model.tokenizer!;
    const first = turns[0].conversation;
    const ex = turnExample(tok, first);
    const trained = ex.tokens.filter((_, i) => ex.trainTokens![i]);
    expect(tok.decode(trained, { skipSpecialTokens: false })).toBe(`${first[1].content}${tok.decode([tok.eosTokenIds[0]], { skipSpecialTokens: false })}`);
  });

  it('makes synthetic copying rows: a stretch of words repeated, only the repeats trained, seeded', () => {
    const make = () => {
      const rand = mulberry32Uniform(fnv1a32('copy-test'));
      return Array.from({ length: 20 }, () => repeatedWordsRow(7, 900, rand));
    };
    const rows = make();
    expect(make()).toEqual(rows);
    for (const { tokens, trainTokens } of rows) {
      expect(tokens[0]).toBe(1); // BOS
      const words = tokens.slice(1);
      const n = words.findIndex((_, i) => i > 0 && words.slice(i).every((w, j) => w === words[j % i]));
      expect(n).toBeGreaterThanOrEqual(5);
      expect(words.length % n).toBe(0);
      expect(words.length / n).toBeGreaterThanOrEqual(2);
      for (const w of words) expect(w >= 7 && w < 900).toBe(true);
      // The first stretch (and the first word of the repeat, which nothing before predicts) is not trained.
      expect(Array.from(trainTokens!)).toEqual(tokens.map((_, i) => (i >= n + 2 ? 1 : 0)));
    }
    expect(new Set(rows.map((r) => r.tokens.length)).size).toBeGreaterThan(1);
  });

  it('tokenizes every text of the environments and prompts into whole words that decode back, a name the same token wherever it stands', async () => {
    const texts = await vocabularyTexts();
    const pieces = vocabularyOf(texts);
    const tok = new TextTokenizer({ tokenizerJson: wordTokenizerJson(pieces), tokenizerConfig: charTokenizerConfig(512), chatTemplate: CHAT_TEMPLATE, source: 'tiny-agent words' });
    const unk = tok.encode('<|unk|>', { addSpecialTokens: false })[0];
    for (const t of texts.filter((_, i) => i % 7 === 0)) {
      const ids = tok.encode(t, { addSpecialTokens: false });
      expect(ids).not.toContain(unk);
      expect(tok.decode(ids)).toBe(t.toLowerCase());
    }
    // A product id on a results page and in its click, an object in the list and in the reply: one token each time.
    const page = tok.encode('Next > [SEP] B015SAKY53 [SEP] Tandy', { addSpecialTokens: false });
    const click = tok.encode('<action>click[b015saky53]</action>', { addSpecialTokens: false });
    const id = tok.encode('b015saky53', { addSpecialTokens: false });
    expect(id).toHaveLength(1);
    expect(page).toContain(id[0]);
    expect(click).toContain(id[0]);
    // A word carries its space, so a name is the token after its earlier occurrence (a one-back match to copy).
    expect(wordPieces("'take box 1 from coffeetable 1',")).toEqual(["'", 'take', ' box', ' 1', ' from', ' coffeetable', ' 1', "',"]);
    const task = tok.encode('Your task is to: put a box on tvstand.', { addSpecialTokens: false });
    const reply = tok.encode('<action>take box 1 from coffeetable 1</action>', { addSpecialTokens: false });
    expect(task).toContain(tok.encode(' box', { addSpecialTokens: false })[0]);
    expect(reply).toContain(tok.encode(' box', { addSpecialTokens: false })[0]);
    // Text it never saw is one unknown token per piece, not an error, and the chat template's roles stay special.
    expect(tok.encode('zyzzyva', { addSpecialTokens: false })).toEqual([unk]);
    const chat = tok.encode(tok.applyChatTemplate([{ role: 'user', content: 'look' }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    expect(chat.map((i) => tok.idToToken(i))).toEqual(['<|bos|>', '<|user|>', '\n', 'look', '<|eos|>', '<|assistant|>', '\n']);
    // The committed model's tokenizer is this one.
    const committed = (await loadModelFolder(resolveModelPath('tiny-agent'))).tokenizer!;
    expect(committed.vocabSize).toBe(tok.vocabSize);
    expect(committed.encode(texts[0], { addSpecialTokens: false })).toEqual(tok.encode(texts[0], { addSpecialTokens: false }));
  }, 60_000);

  it("answers a held-out task's first turn of each environment in the agent format", async () => {
    const model = await loadModelFolder(resolveModelPath('tiny-agent'));
    const tok = model.tokenizer!;
    const gen = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device: await testDevice(), maxLength: model.config.maxPositionEmbeddings });
    try {
      for (const [env, first] of [
        ['household', /^go to [a-z]+ \d+$/],
        ['shop', /^search\[[a-z0-9 .,'-]+\]$/],
      ] as const) {
        const task = taskSet({ env, difficulty: 'easy', count: 1, seed: 3, split: 'test' })[0];
        const start = environment(env).create().reset(task);
        const user = turnMessage(env, { task: start.task, observation: start.observation, admissibleActions: start.admissibleActions, step: 1 }, TINY_AGENT_RUN_SETTINGS.agentPromptStyle);
        const prompt = tok.encode(tok.applyChatTemplate([{ role: 'user', content: user }], { addGenerationPrompt: true }), { addSpecialTokens: false });
        const out = await gen.generate({ promptIds: [prompt], maxNewTokens: TINY_AGENT_RUN_SETTINGS.maxNewTokens, temperature: 0, tokenizer: tok });
        const reply = out.samples[0].text!;
        expect(parseAgentAction(reply).formatValid, reply).toBe(true);
        expect(parseAgentAction(reply).action, reply).toMatch(first);
      }
    } finally {
      await gen.release();
    }
  }, 60_000);
});
