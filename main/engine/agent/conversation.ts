// A multi-turn conversation as the tokens a training step sees and a loss mask over them: only
// the assistant's tokens (each reply and the end-of-turn text the template puts after it, so the
// model learns to stop) are trained, every user turn and template text is context. The text is
// cut where the chat template's rendering of the conversation so far ends: render(messages before
// a reply, with the generation prompt) must be a prefix of render(messages through the reply),
// which holds for templates that only append; one that rewrites earlier turns is refused. Each
// piece is tokenized on its own, as verl's multi-turn rollouts tokenize turn by turn.
import type { ChatMessage, TextTokenizer } from '../nn/tokenizer.ts';

export type ConversationTokenizer = Pick<TextTokenizer, 'encode' | 'applyChatTemplate'>;

export interface EncodedConversation {
  ids: number[];
  /** 1 where the token is the assistant's (trained), 0 elsewhere. */
  mask: Uint8Array;
  /** Each assistant message's token range [start, end), in order. */
  replies: { start: number; end: number }[];
}

export function encodeConversation(tokenizer: ConversationTokenizer, messages: readonly ChatMessage[]): EncodedConversation {
  const pieces: { text: string; train: boolean }[] = [];
  let done = '';
  const take = (rendered: string, train: boolean, what: string) => {
    if (!rendered.startsWith(done)) {
      throw new Error(`the chat template rewrites earlier turns (${what} does not extend the conversation before it), so the assistant's tokens cannot be found`);
    }
    if (rendered.length > done.length) pieces.push({ text: rendered.slice(done.length), train });
    done = rendered;
  };
  messages.forEach((m, k) => {
    if (m.role !== 'assistant') return;
    take(tokenizer.applyChatTemplate(messages.slice(0, k), { addGenerationPrompt: true }), false, `message ${k + 1}'s prompt`);
    take(tokenizer.applyChatTemplate(messages.slice(0, k + 1)), true, `message ${k + 1}`);
  });
  take(tokenizer.applyChatTemplate(messages), false, 'the whole conversation');
  const ids: number[] = [];
  const flags: number[] = [];
  const replies: { start: number; end: number }[] = [];
  for (const p of pieces) {
    const piece = tokenizer.encode(p.text, { addSpecialTokens: false });
    if (p.train) replies.push({ start: ids.length, end: ids.length + piece.length });
    for (const id of piece) {
      ids.push(id);
      flags.push(p.train ? 1 : 0);
    }
  }
  return { ids, mask: Uint8Array.from(flags), replies };
}
