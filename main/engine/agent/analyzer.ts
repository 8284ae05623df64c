// OPID's analyzer: after a group's rollouts, every finished episode is turned into skills, as
// JSON: one episode-level skill (a reusable workflow from a success, an avoidance rule from a
// failure) and up to five step-level skills at its critical steps. The analyzer is any chat
// model (`complete`: the policy, a frozen model, or an OpenAI-compatible endpoint); its prompt is
// an editable template. An answer that holds no valid analysis gives the episode no skill, with
// the reason and the raw answer kept for the log.
import { z } from 'zod';
import type { Episode } from './episode.ts';

export const MAX_STEP_SKILLS = 5;

/** The default analysis prompt; {task}, {outcome}, {steps} and {trajectory} are filled in. */
export const DEFAULT_ANALYZER_TEMPLATE = `You are analysing an agent's finished episode to extract reusable skills.
Task: {task}
Outcome: {outcome} after {steps} steps.
Trajectory:
{trajectory}

If the episode succeeded, write the workflow that solved it as a reusable skill; if it failed, write a rule that avoids the mistake. Then pick at most ${MAX_STEP_SKILLS} critical steps and write, for each, what to do at that step.
Answer with JSON only: {"episode_skill": "...", "step_skills": [{"step": 1, "skill": "..."}]}`;

export interface EpisodeSkills {
  episodeSkill: string;
  /** Keyed by step (1-based), at most MAX_STEP_SKILLS. */
  stepSkills: { step: number; skill: string }[];
}

export type Analysis = { ok: true; skills: EpisodeSkills; raw: string } | { ok: false; reason: string; raw: string };

/**
 * The analyzer could not be asked about an episode (its prompt does not fit the model, or the
 * endpoint failed): the episode gets no skill and the run goes on, the reason logged.
 */
export class AnalyzerRefused extends Error {
  override name = 'AnalyzerRefused';
}

/** Asks a chat model; the episode under analysis is passed too, for an analyzer that reads it directly (a scripted one). */
export type ChatComplete = (messages: { role: 'user'; content: string }[], episode?: Episode) => Promise<string>;

/** The trajectory as the analyzer reads it: the first observation, then each action and its answer. */
export function renderTrajectory(episode: Episode, firstObservation: string): string {
  const lines = [`Observation 0: ${firstObservation}`];
  episode.turns.forEach((t, i) => lines.push(`Step ${i + 1} action: ${t.action}`, `Observation ${i + 1}: ${t.observation}`));
  return lines.join('\n');
}

export function analysisPrompt(template: string, episode: Episode, firstObservation: string): string {
  const values: Record<string, string> = {
    task: episode.goal,
    outcome: episode.success ? 'success' : 'failure',
    steps: String(episode.turns.length),
    trajectory: renderTrajectory(episode, firstObservation),
  };
  return template.replace(/\{(task|outcome|steps|trajectory)\}/g, (_, k: string) => values[k]);
}

const analysisSchema = z.object({
  episode_skill: z.string().trim().min(1),
  step_skills: z.array(z.object({ step: z.number().int(), skill: z.string().trim().min(1) })).default([]),
});

/** The analysis in an answer: the outermost JSON object in it (a code fence or prose around it is fine). */
export function parseAnalysis(raw: string, steps: number): Analysis {
  const start = raw.indexOf('{');
  const end = raw.lastIndexOf('}');
  if (start < 0 || end <= start) return { ok: false, reason: 'the answer holds no JSON object', raw };
  let value: unknown;
  try {
    value = JSON.parse(raw.slice(start, end + 1));
  } catch (e) {
    return { ok: false, reason: `the answer's JSON does not parse: ${(e as Error).message}`, raw };
  }
  const parsed = analysisSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `the analysis has no valid ${issue.path.join('.') || 'object'} (${issue.message})`, raw };
  }
  // Steps outside the episode are dropped, as are repeats and any past the fifth.
  const seen = new Set<number>();
  const stepSkills = parsed.data.step_skills
    .filter((s) => s.step >= 1 && s.step <= steps && !seen.has(s.step) && seen.add(s.step))
    .slice(0, MAX_STEP_SKILLS);
  return { ok: true, skills: { episodeSkill: parsed.data.episode_skill, stepSkills }, raw };
}

export async function analyzeEpisode(episode: Episode, firstObservation: string, complete: ChatComplete, template = DEFAULT_ANALYZER_TEMPLATE): Promise<Analysis> {
  const raw = await complete([{ role: 'user', content: analysisPrompt(template, episode, firstObservation) }], episode);
  return parseAnalysis(raw, episode.turns.length);
}
