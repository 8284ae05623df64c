// A run as the windows see it (RunView): its database record, the settings it stores, the key
// metric at a glance and its review count. The run manager (for `run.status` events) and the
// request handlers build it the same way, from here.
import type { RunProgress, RunView } from '../../contract/index.ts';
import { type ExperimentDb, type RunInfo, countReviews, latestStepTime, queryMetrics } from '../db/index.ts';
import { RUN_CONFIG_DEFAULTS } from '../engine/rl/config.ts';
import { keyMetricName, positiveInt, storedConfig } from '../runs/key-metric.ts';
import { stepsLostOnResume } from '../runs/resume.ts';

/** The statuses runs.resume takes (a running, queued or completed run is refused for what it is). */
const RESUMABLE: ReadonlySet<RunInfo['status']> = new Set(['paused', 'stopped', 'failed']);

export function toRunView(db: ExperimentDb, run: RunInfo, progress: RunProgress | null): RunView {
  const config = storedConfig(run);
  const name = keyMetricName(config);
  const { points, reviews, lastStepAt } = db.read(`reading run ${run.id}`, () => ({
    points: queryMetrics(db, run.id, { keys: [name] }),
    reviews: countReviews(db, run.id),
    lastStepAt: latestStepTime(db, run.id),
  }));
  // The best is the first step that reached the highest value (what the loop keeps as 'best').
  let best: { value: number; step: number } | null = null;
  for (const p of points) if (!Number.isNaN(p.value) && (best === null || p.value > best.value)) best = { value: p.value, step: p.step };
  const last = points.at(-1)?.value;
  return {
    id: run.id,
    name: run.name,
    kind: run.kind,
    method: run.method,
    model: run.model,
    dataset: run.dataset,
    datasetId: run.datasetId,
    status: run.status,
    error: run.error,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    currentStep: run.currentStep,
    steps: positiveInt(config.steps, RUN_CONFIG_DEFAULTS.steps),
    config,
    progress,
    keyMetric: { name, value: last === undefined || Number.isNaN(last) ? null : last, best: best?.value ?? null, bestStep: best?.step ?? null },
    reviewCount: reviews,
    tags: run.tags,
    lastStepAt,
    // Asked only of a run a person can resume (RunView is built for every run of every list).
    stepsLostOnResume: run.kind !== 'external' && RESUMABLE.has(run.status) ? stepsLostOnResume(db, run) : null,
  };
}
