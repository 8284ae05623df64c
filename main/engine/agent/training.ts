// From a group's finished episodes to the trainer's sequences. Outcome RL: each episode's
// advantage is GRPO's over the group (episodes of the same task; success or the shop's score as
// the reward), shared by every token of its replies; OPID adds each taught turn's weighted Δ per
// token. An episode whose turns saw the whole conversation is one sequence with every reply
// trained (a loss mask per turn); with a history window each turn is its own sequence, its last
// reply trained, since earlier replies appear in several turns' contexts.
import type { SequenceExample } from '../runtime/trainer.ts';
import { type AdvantageEstimator, groupAdvantages } from '../rl/advantages.ts';
import type { ChatMessage } from '../nn/tokenizer.ts';
import { type ConversationTokenizer, encodeConversation } from './conversation.ts';
import type { Episode } from './episode.ts';
import { type TurnDelta, mixAdvantage } from './opid.ts';

/** Each episode's advantage within its group (GRPO by default), from its final reward. */
export function episodeAdvantages(group: readonly Episode[], estimator: AdvantageEstimator = 'grpo'): number[] {
  return groupAdvantages(
    group.map((e) => e.reward),
    estimator,
  );
}

/** The episode's whole conversation: its last turn's messages and its last reply. */
function fullConversation(episode: Episode): ChatMessage[] | null {
  const last = episode.turns.at(-1);
  if (!last) return null;
  const messages = [...last.messages, { role: 'assistant', content: last.reply }];
  // Complete when it holds every turn's reply (no history window cut it).
  return messages.filter((m) => m.role === 'assistant').length === episode.turns.length ? messages : null;
}

/**
 * The sequences an episode trains on, each with its trained tokens and per-token advantages:
 * `advantage` (the episode's) plus, for a turn in `deltas`, its teacher's weighted Δ.
 */
export function episodeExamples(
  episode: Episode,
  tokenizer: ConversationTokenizer,
  advantage: number,
  deltas: ReadonlyMap<number, Pick<TurnDelta, 'source' | 'delta'>> = new Map(),
  weights?: { episode: number; step: number },
): SequenceExample[] {
  const build = (messages: ChatMessage[], turnOfReply: (k: number) => number | null): SequenceExample => {
    const enc = encodeConversation(tokenizer, messages);
    const tokenAdvantages = new Float32Array(enc.ids.length);
    const trainTokens = new Uint8Array(enc.ids.length);
    enc.replies.forEach((r, k) => {
      const turn = turnOfReply(k);
      if (turn === null) return;
      const mixed = mixAdvantage(advantage, r.end - r.start, deltas.get(turn) ?? null, weights);
      tokenAdvantages.set(mixed, r.start);
      trainTokens.fill(1, r.start, r.end);
    });
    return { tokens: enc.ids, trainTokens, tokenAdvantages };
  };
  const full = fullConversation(episode);
  if (full) return [build(full, (k) => k)];
  return episode.turns.map((t, i) => {
    const messages = [...t.messages, { role: 'assistant', content: t.reply }];
    const replies = messages.filter((m) => m.role === 'assistant').length;
    return build(messages, (k) => (k === replies - 1 ? i : null));
  });
}
