// An agent episode as a run records it (the step record's sample, stored turn by turn with its
// skills by the database sink), so a person can open it later: each turn's observation and
// action, the skill that taught the reply and the reply's Δ per token.
import type { TaskRef } from '../envs/types.ts';

/** A skill as the loop records it: from which episode and turn, and how many turns it taught. */
export interface SkillRecord {
  kind: 'workflow' | 'avoidance' | 'step';
  text: string;
  /** The turn (1-based) a step skill is for; null for the episode skill. */
  turn: number | null;
  uses: number;
}

export interface TurnRecord {
  /** This turn's user message (the observation as the policy read it). */
  prompt: string;
  reply: string;
  action: string;
  formatValid: boolean;
  /** The environment's answer. */
  observation: string;
  reward: number;
  done: boolean;
  /** The skill (index into the episode's skills) that taught this reply, if one did. */
  skill: number | null;
  /** The reply's tokens and Δ per token, where a skill taught it. */
  tokenIds: Int32Array | null;
  delta: Float32Array | null;
}

export interface EpisodeRecord {
  task: TaskRef;
  goal: string;
  success: boolean;
  reward: number;
  contextFull: boolean;
  turns: TurnRecord[];
  skills: SkillRecord[];
  /** Why the analysis gave no skills (and what the analyzer answered), when it failed. */
  analysisError: { reason: string; raw: string } | null;
}

/** Longest part of an analyzer's answer quoted in the log. */
const QUOTED_ANSWER_CHARS = 120;

/**
 * The log line for a step whose analyzer gave episodes no skill (an answer without a valid
 * analysis, or a refused request): how many, and the first one's reason and answer; null when
 * every analysed episode got its skills.
 */
export function analysisFailureNote(step: number, episodes: readonly (EpisodeRecord | undefined)[]): string | null {
  const failed = episodes.filter((e): e is EpisodeRecord => e?.analysisError != null);
  if (failed.length === 0) return null;
  const { reason, raw } = failed[0].analysisError!;
  const quoted = raw ? `; it answered ${JSON.stringify(raw.length > QUOTED_ANSWER_CHARS ? `${raw.slice(0, QUOTED_ANSWER_CHARS)}…` : raw)}` : '';
  const total = episodes.filter((e) => e !== undefined).length;
  return `step ${step}: the analyzer gave ${failed.length} of ${total} episodes no skill (${failed.length > 1 ? 'the first: ' : ''}${reason}${quoted})`;
}
