import { describe, expect, it } from 'vitest';
import { parseAgentAction } from '../../../main/engine/agent/prompts.ts';
import { expertConversations } from '../../../main/engine/agent/warm-start.ts';
import { environment, taskSet } from '../../../main/engine/envs/index.ts';

describe('warm-start conversations', () => {
  it('replay the expert: every reply, stepped in order, solves the task; the same options give the same data', async () => {
    for (const env of ['household', 'shop']) {
      const options = { env, difficulty: 'medium' as const, count: 8, seed: 3, split: 'train' as const };
      const convs = await expertConversations(options);
      expect(await expertConversations(options)).toEqual(convs);
      const tasks = taskSet(options);
      convs.forEach((c, i) => {
        expect(c.seed).toBe(tasks[i].seed);
        expect(c.messages.map((m) => m.role)).toEqual(c.messages.map((_, k) => (k % 2 ? 'assistant' : 'user')));
        // Replaying the replies' actions in a fresh environment reaches the goal at the last one.
        const world = environment(env).create();
        world.reset(tasks[i]);
        const replies = c.messages.filter((m) => m.role === 'assistant');
        const results = replies.map((m) => {
          const { action, formatValid } = parseAgentAction(m.content);
          expect(formatValid).toBe(true);
          return world.step(action);
        });
        expect(results.at(-1)).toMatchObject({ done: true, success: true });
        expect(results.slice(0, -1).every((r) => !r.done)).toBe(true);
      });
    }
  });
});
