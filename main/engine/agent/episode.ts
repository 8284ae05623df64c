// One episode of an agent in an environment: reset to the task, then turn by turn the policy
// reads the conversation (each observation a user message, each earlier reply an assistant
// message) and answers; the action parsed from its reply steps the environment. The episode ends
// when the environment is done or after `maxSteps` turns (OPID: 30). A conversation longer than
// `historyTurns` earlier turns keeps only the latest ones (OPID's history length), so a turn's
// context stays bounded; each turn records the exact messages its policy saw.
import type { ChatMessage } from '../nn/tokenizer.ts';
import type { Environment, TaskRef } from '../envs/types.ts';
import { expertReply, parseAgentAction, turnMessage } from './prompts.ts';

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
  turns: EpisodeTurn[];
  success: boolean;
  /** The environment's reward at the end (the shop's partial credit; 1 or 0 in the household). */
  reward: number;
}

export type Policy = (messages: ChatMessage[], turn: number) => Promise<string> | string;

export interface EpisodeOptions {
  maxSteps?: number;
  /** Earlier turns (user + assistant pairs) kept in each turn's messages; default all. */
  historyTurns?: number;
}

export const DEFAULT_MAX_STEPS = 30;

export async function runEpisode(env: Environment, task: TaskRef, policy: Policy, options: EpisodeOptions = {}): Promise<Episode> {
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  const history = options.historyTurns ?? Infinity;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new Error(`maxSteps must be a whole number of at least 1, got ${maxSteps}`);
  const start = env.reset(task);
  const turns: EpisodeTurn[] = [];
  const pairs: ChatMessage[][] = [];
  let observation = start.observation;
  let admissible = start.admissibleActions;
  let success = false;
  let reward = 0;
  for (let step = 1; step <= maxSteps; step++) {
    const user: ChatMessage = { role: 'user', content: turnMessage(task.env, { task: start.task, observation, admissibleActions: admissible, step }) };
    const kept = history === Infinity ? pairs : pairs.slice(Math.max(0, pairs.length - history));
    const messages = [...kept.flat(), user];
    const reply = await policy(messages, step);
    const { action, formatValid } = parseAgentAction(reply);
    const r = env.step(action);
    turns.push({ messages, reply, action, formatValid, observation: r.observation, reward: r.reward, done: r.done });
    pairs.push([user, { role: 'assistant', content: reply }]);
    observation = r.observation;
    admissible = r.admissibleActions;
    if (r.done) {
      success = r.success;
      reward = r.reward;
      break;
    }
  }
  return { task, goal: start.task, turns, success, reward };
}

/** The scripted expert as a policy (it reads the environment's hidden state), for warm-start episodes. */
export function expertPolicy(env: Environment): Policy {
  return () => {
    const action = env.expertAction();
    if (action === undefined) throw new Error('the expert was asked to act in a finished episode');
    return expertReply(action);
  };
}
