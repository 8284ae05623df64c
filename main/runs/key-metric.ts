// The validation metric that picks a run's best (and its 'best' checkpoint), named from the
// run's stored settings. The run view shows it and a resume recomputes the run's best from it.
import type { RunInfo } from '../db/index.ts';
import { RUN_CONFIG_DEFAULTS } from '../engine/rl/config.ts';
import { AGENT_METHOD_ID, AGENT_METRICS } from '../engine/rl/methods/agent.ts';

const BEST_KINDS = ['avg', 'maj', 'pass'] as const;

export const positiveInt = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : fallback);

/** The validation metric that picks a run's best checkpoint, e.g. `val/maj@16`. */
export function keyMetricName(config: Record<string, unknown>): string {
  // An agent run's best is its held-out success rate.
  if (config.method === AGENT_METHOD_ID) return AGENT_METRICS.valSuccess;
  const kind = BEST_KINDS.find((k) => k === config.bestMetric) ?? RUN_CONFIG_DEFAULTS.bestMetric;
  // As engine/rl/metrics.ts valMetricName names it (not imported: it would load the answer
  // checker's math library into the main process just for a template).
  return `val/${kind}@${positiveInt(config.valSamples, RUN_CONFIG_DEFAULTS.valSamples)}`;
}

/**
 * A run's stored config as an object (a damaged one shows as empty rather than breaking a list).
 * Runs recorded before the reviews had one name stored `reviewsFrom`; it reads as `reviewsOf`.
 */
export function storedConfig(run: Pick<RunInfo, 'config'>): Record<string, unknown> {
  const c = run.config;
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return {};
  const { reviewsFrom, ...rest } = c as Record<string, unknown>;
  return reviewsFrom === undefined || 'reviewsOf' in rest ? (c as Record<string, unknown>) : { ...rest, reviewsOf: reviewsFrom };
}
