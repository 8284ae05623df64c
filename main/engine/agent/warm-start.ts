// The supervised warm start's data: the scripted expert played through the agent's own prompts
// on a seeded task set, each episode one conversation (user turns = observations, assistant
// turns = the expert's replies), as the built-in agent model's recipe will train on them with
// encodeConversation's mask. Deterministic for the same options.
import { environment, type TaskSetOptions, taskSet } from '../envs/index.ts';
import type { ChatMessage } from '../nn/tokenizer.ts';
import { type EpisodeOptions, expertPolicy, runEpisode } from './episode.ts';

export interface ExpertConversation {
  task: TaskSetOptions['env'];
  seed: number;
  difficulty: TaskSetOptions['difficulty'];
  /** The whole conversation, ending with the expert's last reply. */
  messages: ChatMessage[];
}

export async function expertConversations(tasks: TaskSetOptions, options: Pick<EpisodeOptions, 'maxSteps'> = {}): Promise<ExpertConversation[]> {
  const def = environment(tasks.env);
  const out: ExpertConversation[] = [];
  for (const task of taskSet(tasks)) {
    const env = def.create();
    // No history window: the last turn's messages hold every earlier turn.
    const episode = await runEpisode(env, task, expertPolicy(env), { maxSteps: options.maxSteps });
    if (!episode.success) throw new Error(`the ${tasks.env} expert failed task ${JSON.stringify(task)}; its episodes cannot teach`);
    const last = episode.turns.at(-1)!;
    out.push({ task: task.env, seed: task.seed, difficulty: task.difficulty, messages: [...last.messages, { role: 'assistant', content: last.reply }] });
  }
  return out;
}
