import { describe, expect, it } from 'vitest';
import { encodeConversation } from '../../../main/engine/agent/conversation.ts';
import type { Episode, EpisodeTurn } from '../../../main/engine/agent/episode.ts';
import { episodeAdvantages, episodeExamples } from '../../../main/engine/agent/training.ts';
import type { ChatMessage } from '../../../main/engine/nn/tokenizer.ts';

// A character tokenizer with a plain template: every message "<role>:content;", the generation
// prompt "<assistant>:".
const tokenizer = {
  encode: (t: string) => Array.from(t, (c) => c.charCodeAt(0)),
  applyChatTemplate: (ms: readonly ChatMessage[], o: { addGenerationPrompt?: boolean } = {}) =>
    ms.map((m) => `<${m.role}>:${m.content};`).join('') + (o.addGenerationPrompt ? '<assistant>:' : ''),
};
const text = (ids: ArrayLike<number>) => String.fromCharCode(...Array.from(ids));

function episode(history: number, reward = 1): Episode {
  const replies = ['ab', 'cd', 'ef'];
  const turns: EpisodeTurn[] = [];
  const pairs: ChatMessage[][] = [];
  replies.forEach((reply, i) => {
    const user: ChatMessage = { role: 'user', content: `o${i}` };
    const messages = [...pairs.slice(Math.max(0, pairs.length - history)).flat(), user];
    turns.push({ messages, reply, action: reply, formatValid: true, observation: `o${i + 1}`, reward: 0, done: i === 2 });
    pairs.push([user, { role: 'assistant', content: reply }]);
  });
  return { task: { env: 'household', difficulty: 'easy', seed: 1 }, goal: 'g', firstObservation: 'o0', turns, success: reward === 1, reward };
}

describe('episodes to training sequences', () => {
  it('GRPO over a group of episodes of one task, from their rewards', () => {
    const group = [episode(9, 1), episode(9, 0), episode(9, 0), episode(9, 1)];
    const a = episodeAdvantages(group);
    // mean 0.5, unbiased std 0.577: ±0.866
    expect(a.map((x) => Number(x.toFixed(3)))).toEqual([0.866, -0.866, -0.866, 0.866]);
  });

  it('a whole conversation is one sequence with every reply trained at the episode advantage, Δ added where taught', () => {
    const [ex] = episodeExamples(episode(Infinity), tokenizer, 0.5, new Map([[1, { source: 'step' as const, delta: Float32Array.of(10, 20, 30) }]]), { episode: 0.1, step: 0.01 });
    expect(text(ex.tokens)).toBe('<user>:o0;<assistant>:ab;<user>:o1;<assistant>:cd;<user>:o2;<assistant>:ef;');
    const trained = ex.tokens.filter((_, i) => ex.trainTokens![i]);
    expect(text(trained)).toBe('ab;cd;ef;');
    const adv = Array.from(ex.tokenAdvantages!).filter((_, i) => ex.trainTokens![i]);
    expect(adv).toEqual([0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.5, 0.5, 0.5].map(Math.fround));
    expect(Array.from(ex.tokenAdvantages!).filter((_, i) => !ex.trainTokens![i]).every((x) => x === 0)).toBe(true);
  });

  it('with a history window, one sequence per turn, only its last reply trained', () => {
    const exs = episodeExamples(episode(1), tokenizer, -1);
    expect(exs).toHaveLength(3);
    expect(exs.map((e) => text(e.tokens))).toEqual([
      '<user>:o0;<assistant>:ab;',
      '<user>:o0;<assistant>:ab;<user>:o1;<assistant>:cd;',
      '<user>:o1;<assistant>:cd;<user>:o2;<assistant>:ef;',
    ]);
    expect(exs.map((e) => text(e.tokens.filter((_, i) => e.trainTokens![i])))).toEqual(['ab;', 'cd;', 'ef;']);
    for (const e of exs) expect(Array.from(e.tokenAdvantages!).filter((_, i) => e.trainTokens![i]).every((x) => x === -1)).toBe(true);
    // The trained replies are the same tokens encodeConversation finds.
    const enc = encodeConversation(tokenizer, [{ role: 'user', content: 'o0' }, { role: 'assistant', content: 'ab' }]);
    expect(Array.from(exs[0].trainTokens!)).toEqual(Array.from(enc.mask));
  });
});
