// tiny-agent's word-level tokenizer (issue 18): a Hugging Face tokenizer.json with a WordLevel
// model over the words the built-in environments and the agent's prompts use, so the model emits
// whole names ("coffeetable", "b0utf0j8wz") and cannot misspell them, which a character model of
// its size did on almost every turn (make-tiny-agent.ts's header).
//
//   normalizer     Lowercase (the shop shows "B0UTF0J8WZ", its clicks read "b0utf0j8wz"; an action
//                  is read in lower case anyway, prompts.ts parseAgentAction)
//   pre_tokenizer  Split, isolated: a word (a run of letters and digits) or a run of other marks,
//                  each with the one space before it if there is one; WebShop's "[sep]" with the
//                  spaces around it; any other whitespace (newlines, runs of spaces) alone: "go",
//                  " to", " cabinet", " 1", "</", "action", ">". A word carries its space so that
//                  copying a name is a one-back match (the token after the earlier occurrence of
//                  the current one): with spaces as tokens of their own every other token was a
//                  space, copying became a two-back match, and the model never learned it
//                  (make-tiny-agent.ts). "[sep] " takes the space after it so that a product id
//                  on a results page ("[sep] b015saky53") is the same token as in its click
//                  ("click[b015saky53]"); every character is in some piece, so decoding is
//                  concatenation
//   model          WordLevel: every piece seen in the vocabulary text below, the chat roles first;
//                  anything else is <|unk|>
//   decoder        Fuse (the pieces joined as they are)
//
// The Rust tokenizers read it as any WordLevel tokenizer; @huggingface/tokenizers has no WordLevel
// class and reads it as its plain vocabulary model (a piece to its id, else tokenizer_config.json's
// unk_token), which is the same mapping.
import { analysisPrompt, DEFAULT_ANALYZER_TEMPLATE } from '../../main/engine/agent/analyzer.ts';
import { type Episode, runEpisode } from '../../main/engine/agent/episode.ts';
import { PROMPT_STYLES, expertReply, withSkill } from '../../main/engine/agent/prompts.ts';
import { DIFFICULTIES, type TaskRef, environment, taskSet } from '../../main/engine/envs/index.ts';
import { shopCatalog } from '../../main/engine/envs/shop/catalog.ts';
import { fnv1a32, mulberry32Uniform } from '../../main/engine/runtime/rng.ts';
import { SPECIAL_TOKENS, bosPostProcessor, specialAddedTokens } from './make-builtin-models.ts';

/** The pre-tokenizer's pattern (Split, isolated, on lower-cased text). */
export const WORD_PATTERN = ' ?\\[sep\\] ?| ?[a-z0-9]+| ?[^\\sa-z0-9]+|\\s+';

/** The pieces of `text` as the tokenizer splits it (special tokens aside). */
export function wordPieces(text: string): string[] {
  return text.toLowerCase().match(new RegExp(WORD_PATTERN, 'g')) ?? [];
}

/** Tasks per (environment, difficulty, split) played for the vocabulary. */
const VOCAB_TASKS = 48;
/** Turns of a random walk. */
const WALK_TURNS = 12;

/**
 * The text the vocabulary is made of: for tasks of every difficulty and both splits of each
 * built-in environment, the expert's episode and a random walk over the admissible actions
 * (which reaches the pages and places the expert never visits), each turn in both prompt
 * styles, with and without a skill; the expert's replies; the analyzer's prompt of each episode
 * and an answer in its JSON; and every catalogue product's texts.
 */
export async function vocabularyTexts(): Promise<string[]> {
  const texts: string[] = [];
  const rand = mulberry32Uniform(fnv1a32('tiny-agent/vocabulary'));
  const addEpisode = (e: Episode, plan: string) => {
    for (const t of e.turns) {
      const user = t.messages.at(-1)!.content;
      texts.push(user, withSkill(user, { stepSkill: t.action }), withSkill(user, { episodeSkill: plan }), t.reply, t.observation);
    }
    texts.push(analysisPrompt(DEFAULT_ANALYZER_TEMPLATE, e, e.firstObservation));
    texts.push(JSON.stringify({ episode_skill: plan, step_skills: e.turns.slice(0, 2).map((t, i) => ({ step: i + 1, skill: t.action })) }));
  };
  for (const envId of ['household', 'shop']) {
    const def = environment(envId);
    for (const difficulty of DIFFICULTIES) {
      for (const split of ['train', 'test'] as const) {
        for (const task of taskSet({ env: envId, difficulty, count: VOCAB_TASKS, seed: 1, split })) {
          for (const style of PROMPT_STYLES) {
            const expertEnv = def.create();
            const expert = await runEpisode(expertEnv, task, () => expertReply(expertEnv.expertAction()!), { maxSteps: 40, historyTurns: 0, promptStyle: style });
            const plan = expert.turns.map((t) => t.action).join(', then ');
            addEpisode(expert, plan);
            const walk = def.create();
            const walked = await runEpisode(walk, task, () => expertReply(randomMove(walk, task, rand)), { maxSteps: WALK_TURNS, historyTurns: 0, promptStyle: style });
            addEpisode(walked, plan);
          }
        }
      }
    }
  }
  for (const p of shopCatalog()) {
    texts.push(p.asin, p.title, p.query, p.category, p.description, ...p.bulletPoints, ...Object.entries(p.options).flat(2), `$${p.price.toFixed(2)}`);
  }
  return texts;
}

/** A random admissible action; the shop's search box gets the words of the expert's first query. */
function randomMove(env: ReturnType<ReturnType<typeof environment>['create']>, task: TaskRef, rand: () => number): string {
  const moves = env.admissibleActions();
  const move = moves[Math.floor(rand() * moves.length)];
  if (move !== 'search[<your query>]') return move;
  const probe = environment(task.env).create();
  probe.reset(task);
  return probe.expertAction()!;
}

/** Pieces by count (then by text), each once. */
export function vocabularyOf(texts: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const t of texts) for (const p of wordPieces(t)) counts.set(p, (counts.get(p) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([p]) => p);
}

/** The tokenizer.json: special tokens at the ids the character tokenizer gives them, then the pieces. */
export function wordTokenizerJson(pieces: readonly string[]): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  [...SPECIAL_TOKENS, ...pieces].forEach((t, i) => {
    if (t in vocab) throw new Error(`the word vocabulary holds "${t}" twice`);
    vocab[t] = i;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialAddedTokens(),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Split', pattern: { Regex: WORD_PATTERN }, behavior: 'Isolated', invert: false },
    post_processor: bosPostProcessor(vocab),
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab, unk_token: '<|unk|>' },
  };
}
