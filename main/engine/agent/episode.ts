// One episode of an agent in an environment: reset to the task, then turn by turn the policy
// reads the conversation (each observation a user message, each earlier reply an assistant
// message) and answers; the action parsed from its reply steps the environment. The episode ends
// when the environment is done or after `maxSteps` turns (OPID: 30). A conversation longer than
// `historyTurns` earlier turns keeps only the latest ones (OPID's history length), so a turn's
// context stays bounded; each turn records the exact messages its policy saw. `runEpisodes` runs
// many episodes in lockstep, one batched policy call per turn (the run loop's rollout).
import type { ChatMessage } from '../nn/tokenizer.ts';
import type { Environment, TaskRef } from '../envs/types.ts';
import { type PromptStyle, expertReply, parseAgentAction, turnMessage } from './prompts.ts';

export interface EpisodeTurn {
  /** The messages the policy answered: earlier turns (at most historyTurns) and this user message. */
  messages: ChatMessage[];
  reply: string;
  action: string;
  formatValid: boolean;
  /** The environment's answer to the action. */
  observation: string;
  reward: number;
  done: boolean;
}

export interface Episode {
  task: TaskRef;
  goal: string;
  /** The environment's first observation (what the analyzer's trajectory starts from). */
  firstObservation: string;
  turns: EpisodeTurn[];
  success: boolean;
  /** The environment's reward at the end (the shop's partial credit; 1 or 0 in the household). */
  reward: number;
  /** Set when the episode ended because the next turn no longer fitted the model's context. */
  contextFull?: boolean;
}

export type Policy = (messages: ChatMessage[], turn: number) => Promise<string> | string;

/**
 * Answers the current turn of several episodes at once (one batched generation): a reply per
 * conversation, or null where the conversation does not fit the model (that episode then ends).
 */
export type BatchPolicy = (conversations: ChatMessage[][], turn: number) => Promise<(string | null)[]>;

export interface EpisodeOptions {
  maxSteps?: number;
  /** Earlier turns (user + assistant pairs) kept in each turn's messages; default all. */
  historyTurns?: number;
  /** How each turn's user message is worded (default OPID's). */
  promptStyle?: PromptStyle;
}

export const DEFAULT_MAX_STEPS = 30;

export async function runEpisode(env: Environment, task: TaskRef, policy: Policy, options: EpisodeOptions = {}): Promise<Episode> {
  const [episode] = await runEpisodes([{ env, task }], async ([messages], turn) => [await policy(messages, turn)], options);
  return episode;
}

/**
 * Episodes of several (environment, task) pairs in lockstep: each turn, every episode still
 * running is answered by one call of `policy`, so a run's rollout is one batched generation per
 * turn rather than one per episode and turn.
 */
export async function runEpisodes(jobs: readonly { env: Environment; task: TaskRef }[], policy: BatchPolicy, options: EpisodeOptions = {}): Promise<Episode[]> {
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  const history = options.historyTurns ?? Infinity;
  const style = options.promptStyle ?? 'opid';
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new Error(`maxSteps must be a whole number of at least 1, got ${maxSteps}`);
  const states = jobs.map(({ env, task }) => {
    const start = env.reset(task);
    return {
      env,
      episode: { task, goal: start.task, firstObservation: start.observation, turns: [], success: false, reward: 0 } as Episode,
      pairs: [] as ChatMessage[][],
      observation: start.observation,
      admissible: start.admissibleActions,
      running: true,
    };
  });
  for (let step = 1; step <= maxSteps; step++) {
    const active = states.filter((s) => s.running);
    if (active.length === 0) break;
    const asked = active.map((s) => {
      const user: ChatMessage = { role: 'user', content: turnMessage(s.episode.task.env, { task: s.episode.goal, observation: s.observation, admissibleActions: s.admissible, step }, style) };
      const kept = history === Infinity ? s.pairs : s.pairs.slice(Math.max(0, s.pairs.length - history));
      return { user, messages: [...kept.flat(), user] };
    });
    const replies = await policy(
      asked.map((a) => a.messages),
      step,
    );
    if (replies.length !== active.length) throw new Error(`the policy answered ${replies.length} of ${active.length} conversations`);
    active.forEach((s, k) => {
      const reply = replies[k];
      if (reply === null) {
        s.running = false;
        s.episode.contextFull = true;
        return;
      }
      const { action, formatValid } = parseAgentAction(reply);
      const r = s.env.step(action);
      s.episode.turns.push({ messages: asked[k].messages, reply, action, formatValid, observation: r.observation, reward: r.reward, done: r.done });
      s.pairs.push([asked[k].user, { role: 'assistant', content: reply }]);
      s.observation = r.observation;
      s.admissible = r.admissibleActions;
      if (r.done) {
        s.running = false;
        s.episode.success = r.success;
        s.episode.reward = r.reward;
      }
    });
  }
  return states.map((s) => s.episode);
}

/** The scripted expert as a policy (it reads the environment's hidden state), for warm-start episodes. */
export function expertPolicy(env: Environment): Policy {
  return () => {
    const action = env.expertAction();
    if (action === undefined) throw new Error('the expert was asked to act in a finished episode');
    return expertReply(action);
  };
}
