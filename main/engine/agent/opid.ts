// OPID's dense signal for one agent turn: the sampled reply is re-scored, not resampled, by the
// same policy as a teacher that also reads a skill in the turn's observation (the step skill
// where the turn has one, else the episode skill), and the per-token difference
//   Δ = log π(y | skill + o, y<) − log π(y | o, y<)
// shapes the turn's advantage: A_episode + w_step·Δ at a turn taught by a step skill, or
// A_episode + w_ep·Δ at one taught by the episode skill (OPID's defaults: 1e-3 each).
import type { ChatMessage } from '../nn/tokenizer.ts';
import { type ConversationTokenizer, encodeConversation } from './conversation.ts';
import { type TurnSkills, withSkill } from './prompts.ts';

/** What re-scores token ids: out[i] = log p(seq[i + 1] | seq[..i]) (the engine's TokenScorer). */
export interface SequenceScorer {
  score(sequences: readonly (readonly number[])[]): Promise<Float32Array[]>;
}

export type TeacherSource = 'step' | 'episode';

export const OPID_DEFAULT_WEIGHTS = { episode: 1e-3, step: 1e-3 } as const;

/** Which skill teaches a turn: the step skill where there is one, else the episode skill, else none. */
export function teacherSource(skills: TurnSkills): TeacherSource | null {
  if (skills.stepSkill?.trim()) return 'step';
  if (skills.episodeSkill?.trim()) return 'episode';
  return null;
}

/** The teacher's conversation: the turn's, with the skill in its last user message only. */
export function teacherMessages(messages: readonly ChatMessage[], skills: TurnSkills): ChatMessage[] {
  const last = messages.findLastIndex((m) => m.role === 'user');
  if (last < 0) throw new Error('a turn needs a user message to add the skill to');
  return messages.map((m, i) => (i === last ? { ...m, content: withSkill(m.content, skills) } : m));
}

/** The reply's token ids (its end-of-turn text included) and the log-prob of each after `messages`. */
export async function replyLogprobs(
  scorer: SequenceScorer,
  tokenizer: ConversationTokenizer,
  messages: readonly ChatMessage[],
  reply: string,
): Promise<{ ids: number[]; logprobs: Float32Array }> {
  const enc = encodeConversation(tokenizer, [...messages, { role: 'assistant', content: reply }]);
  const r = enc.replies.at(-1)!;
  if (r.start < 1) throw new Error('the reply has no context before it to be scored after');
  const [lp] = await scorer.score([enc.ids.slice(0, r.end)]);
  return { ids: enc.ids.slice(r.start, r.end), logprobs: lp.slice(r.start - 1, r.end - 1) };
}

export interface TurnDelta {
  source: TeacherSource;
  ids: number[];
  student: Float32Array;
  teacher: Float32Array;
  /** teacher − student, per reply token. */
  delta: Float32Array;
}

/** Δ of one turn's reply, or null when no skill teaches it. */
export async function turnDelta(
  scorer: SequenceScorer,
  tokenizer: ConversationTokenizer,
  messages: readonly ChatMessage[],
  reply: string,
  skills: TurnSkills,
): Promise<TurnDelta | null> {
  const [d] = await turnDeltas(scorer, tokenizer, [{ messages, reply, skills }]);
  return d;
}

/**
 * Δ of many turns' replies (null for those no skill teaches), their student and teacher
 * sequences scored `chunk` at a time: a step's re-scoring is a few batched forward passes rather
 * than two per turn.
 */
export async function turnDeltas(
  scorer: SequenceScorer,
  tokenizer: ConversationTokenizer,
  turns: readonly { messages: readonly ChatMessage[]; reply: string; skills: TurnSkills }[],
  chunk = 16,
): Promise<(TurnDelta | null)[]> {
  const sequences: number[][] = [];
  const plan = turns.map((t) => {
    const source = teacherSource(t.skills);
    if (!source) return null;
    const cut = (messages: readonly ChatMessage[]) => {
      const enc = encodeConversation(tokenizer, [...messages, { role: 'assistant', content: t.reply }]);
      const r = enc.replies.at(-1)!;
      if (r.start < 1) throw new Error('the reply has no context before it to be scored after');
      sequences.push(enc.ids.slice(0, r.end));
      return { index: sequences.length - 1, start: r.start, end: r.end, ids: enc.ids.slice(r.start, r.end) };
    };
    return { source, student: cut(t.messages), teacher: cut(teacherMessages(t.messages, t.skills)) };
  });
  const scored: Float32Array[] = [];
  for (let i = 0; i < sequences.length; i += chunk) scored.push(...(await scorer.score(sequences.slice(i, i + chunk))));
  return plan.map((p) => {
    if (!p) return null;
    const { student: s, teacher: t } = p;
    if (t.ids.length !== s.ids.length || t.ids.some((id, i) => id !== s.ids[i])) {
      throw new Error('the reply tokenizes differently after the skill, so its tokens cannot be compared');
    }
    const student = scored[s.index].slice(s.start - 1, s.end - 1);
    const teacher = scored[t.index].slice(t.start - 1, t.end - 1);
    const delta = student.map((x, i) => teacher[i] - x);
    return { source: p.source, ids: s.ids, student, teacher, delta };
  });
}

/** The per-token advantage of a turn's reply: the episode's advantage plus its teacher's weighted Δ. */
export function mixAdvantage(
  episodeAdvantage: number,
  tokens: number,
  delta: Pick<TurnDelta, 'source' | 'delta'> | null,
  weights: { episode: number; step: number } = OPID_DEFAULT_WEIGHTS,
): Float32Array {
  const out = new Float32Array(tokens).fill(episodeAdvantage);
  if (!delta) return out;
  if (delta.delta.length !== tokens) throw new Error(`Δ has ${delta.delta.length} tokens, the reply ${tokens}`);
  const w = delta.source === 'step' ? weights.step : weights.episode;
  for (let i = 0; i < tokens; i++) out[i] = episodeAdvantage + w * delta.delta[i];
  return out;
}
