import { describe, expect, it } from 'vitest';
import { DEFAULT_ANALYZER_TEMPLATE, analysisPrompt, analyzeEpisode, parseAnalysis } from '../../../main/engine/agent/analyzer.ts';
import { expertPolicy, runEpisode } from '../../../main/engine/agent/episode.ts';
import { environment, taskSet } from '../../../main/engine/envs/index.ts';

async function expertEpisode() {
  const env = environment('household').create();
  const task = taskSet({ env: 'household', difficulty: 'easy', count: 1, seed: 2, split: 'train' })[0];
  const first = env.reset(task).observation;
  return { episode: await runEpisode(env, task, expertPolicy(env)), first };
}

describe("OPID's analyzer", () => {
  it('reads skills from JSON, keeping at most five step skills inside the episode', () => {
    const a = parseAnalysis(
      'Here: ```json\n{"episode_skill": " Go to the object, take it, go to the target, put it. ", "step_skills": [{"step": 2, "skill": "take it"}, {"step": 9, "skill": "outside"}, {"step": 2, "skill": "again"}, {"step": 1, "skill": "a"}, {"step": 3, "skill": "b"}, {"step": 4, "skill": "c"}, {"step": 5, "skill": "d"}, {"step": 6, "skill": "e"}]}\n```',
      6,
    );
    expect(a).toMatchObject({
      ok: true,
      skills: { episodeSkill: 'Go to the object, take it, go to the target, put it.', stepSkills: [{ step: 2, skill: 'take it' }, { step: 1, skill: 'a' }, { step: 3, skill: 'b' }, { step: 4, skill: 'c' }, { step: 5, skill: 'd' }] },
    });
    expect(parseAnalysis('{"episode_skill": "x"}', 3)).toMatchObject({ ok: true, skills: { episodeSkill: 'x', stepSkills: [] } });
  });

  it('gives no skill, with the reason, for an answer without a valid analysis', () => {
    expect(parseAnalysis('no idea', 3)).toEqual({ ok: false, reason: 'the answer holds no JSON object', raw: 'no idea' });
    expect(parseAnalysis('{"episode_skill": "x",}', 3)).toMatchObject({ ok: false, reason: expect.stringMatching(/^the answer's JSON does not parse/) });
    expect(parseAnalysis('{"episode_skill": "  "}', 3)).toMatchObject({ ok: false, reason: expect.stringContaining('no valid episode_skill') });
    expect(parseAnalysis('{"episode_skill": "x", "step_skills": [{"step": "two", "skill": "y"}]}', 3)).toMatchObject({ ok: false, reason: expect.stringContaining('step_skills.0.step') });
  });

  it('asks about the task, outcome and trajectory, through any chat model', async () => {
    const { episode, first } = await expertEpisode();
    const prompt = analysisPrompt(DEFAULT_ANALYZER_TEMPLATE, episode, first);
    expect(prompt).toContain(`Task: ${episode.goal}\nOutcome: success after ${episode.turns.length} steps.\nTrajectory:\nObservation 0: ${first}\nStep 1 action: ${episode.turns[0].action}\nObservation 1: ${episode.turns[0].observation}`);
    expect(prompt).not.toMatch(/\{(task|outcome|steps|trajectory)\}/);
    const asked: string[] = [];
    const a = await analyzeEpisode(episode, first, async (messages) => {
      asked.push(messages[0].content);
      return '{"episode_skill": "Fetch, then place.", "step_skills": [{"step": 1, "skill": "Go where the object is."}]}';
    });
    expect(asked).toEqual([prompt]);
    expect(a).toMatchObject({ ok: true, skills: { episodeSkill: 'Fetch, then place.', stepSkills: [{ step: 1, skill: 'Go where the object is.' }] } });
  });
});
