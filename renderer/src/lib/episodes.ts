// What the episode view draws, as pure functions: each taught reply token's shade from its Δ
// (OPID's re-scoring, log π(token | skill + o) − log π(token | o)), and the skill that guided a turn.
import type { EpisodeTurnView, EpisodeView, SkillView } from '../../../contract/index.ts';

/** The smallest |Δ| (nats) that gets the full shade, so an episode of tiny Δs is not painted at full strength. */
export const MIN_DELTA_SCALE = 0.05;
/** The share of an episode's taught tokens shaded below full: one outlier token must not wash out the rest. */
export const DELTA_SCALE_QUANTILE = 0.9;

/** The |Δ| that gets the full shade in an episode: the 90th percentile of its tokens' |Δ|, at least MIN_DELTA_SCALE. */
export function deltaScale(turns: readonly Pick<EpisodeTurnView, 'delta'>[]): number {
  const all: number[] = [];
  for (const t of turns) for (const d of t.delta ?? []) if (Number.isFinite(d)) all.push(Math.abs(d));
  if (all.length === 0) return MIN_DELTA_SCALE;
  all.sort((a, b) => a - b);
  return Math.max(MIN_DELTA_SCALE, all[Math.min(all.length - 1, Math.ceil(DELTA_SCALE_QUANTILE * all.length) - 1)]);
}

/** A token's shade: its sign (the teacher with the skill made it likelier, or less likely) and strength in [0, 1]. */
export function deltaShade(delta: number, scale: number): { sign: 'up' | 'down' | 'none'; alpha: number } {
  if (!Number.isFinite(delta) || delta === 0 || scale <= 0) return { sign: 'none', alpha: 0 };
  return { sign: delta > 0 ? 'up' : 'down', alpha: Math.min(1, Math.abs(delta) / scale) };
}

export interface ShadedToken {
  text: string;
  delta: number;
  sign: 'up' | 'down' | 'none';
  alpha: number;
}

/** A taught turn's tokens with their Δ and shade; null for a turn no skill taught (no Δ stored). */
export function shadedTokens(turn: Pick<EpisodeTurnView, 'tokens' | 'delta'>, scale: number): ShadedToken[] | null {
  if (!turn.tokens || !turn.delta) return null;
  const delta = turn.delta;
  return turn.tokens.map((text, i) => ({ text, delta: delta[i] ?? Number.NaN, ...deltaShade(delta[i] ?? Number.NaN, scale) }));
}

/** The skill that guided a turn, from the episode's skills; null when none did or it was deleted since. */
export function turnSkill(episode: Pick<EpisodeView, 'skills'>, turn: Pick<EpisodeTurnView, 'skillId'>): SkillView | null {
  return turn.skillId === null ? null : (episode.skills.find((s) => s.id === turn.skillId) ?? null);
}

/** How a skill kind reads in the views. */
export const SKILL_KIND_LABELS: Record<SkillView['kind'], string> = {
  workflow: 'workflow (from a success)',
  avoidance: 'avoidance rule (from a failure)',
  step: 'step skill',
};

/** The Δ a reply's tokens carry on average (the turn's summary), or null for a turn without Δ. */
export function meanDelta(turn: Pick<EpisodeTurnView, 'delta'>): number | null {
  const d = (turn.delta ?? []).filter(Number.isFinite);
  return d.length ? d.reduce((a, x) => a + x, 0) / d.length : null;
}
