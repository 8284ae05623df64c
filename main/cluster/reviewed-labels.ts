// The reviewed-labels file of a cluster run (reviewed-labels.json in its exported folder): the
// labels a person gave in the app, by extra_info.index (the dataset item), which reward_fn.py
// uses instead of the vote. Rewritten whole (a temporary file renamed into place) whenever a
// review of the imported run changes, so the reward function never reads half a file.
import fs from 'node:fs';
import path from 'node:path';
import { type ExperimentDb, type RunInfo } from '../db/index.ts';
import { storedConfig } from '../runs/key-metric.ts';
import { reviewedLabels } from '../runs/start.ts';
import { CLUSTER_FILES } from './launch.ts';

export interface ExternalSource {
  source: 'verl';
  /** The exported folder the run was imported from. */
  dir: string;
}

/** Where an imported run came from (its stored config's `external`), or null for a run of this app. */
export function externalSource(run: RunInfo): ExternalSource | null {
  if (run.kind !== 'external') return null;
  const ext = storedConfig(run).external as Partial<ExternalSource> | undefined;
  return ext && typeof ext.dir === 'string' ? { source: 'verl', dir: ext.dir } : null;
}

/** Writes `<dir>/reviewed-labels.json` ({"labels": {"<index>": "<label>"}}); returns its path. */
export function writeReviewedLabelsFile(dir: string, labels: ReadonlyMap<number, string>): string {
  const file = path.join(dir, CLUSTER_FILES.reviewedLabels);
  const body = { labels: Object.fromEntries([...labels].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])), updatedAt: new Date().toISOString() };
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(body, null, 2) + '\n');
  fs.renameSync(tmp, file);
  return file;
}

/**
 * The labels an imported run's cluster side should use: those of the run it was told to train
 * with (reviewsOf), then the reviews made on the imported run itself, which win.
 */
export function clusterLabels(db: ExperimentDb, run: RunInfo): Map<number, string> {
  if (run.datasetId === null) return new Map();
  const from = storedConfig(run).reviewsOf;
  const base = typeof from === 'number' && from !== run.id ? safeLabels(db, from, run.datasetId) : new Map<number, string>();
  for (const [k, v] of reviewedLabels(db, run.id, run.datasetId)) base.set(k, v);
  return base;
}

function safeLabels(db: ExperimentDb, runId: number, datasetId: number): Map<number, string> {
  try {
    return reviewedLabels(db, runId, datasetId);
  } catch {
    // The run the labels came from was deleted since: only this run's own reviews remain.
    return new Map();
  }
}

/**
 * After a review of an imported run changed: rewrites its folder's reviewed-labels file, so the
 * cluster run picks the label up. Returns the file, or null for a run of this app. A folder that
 * is gone (moved, unmounted) is an error naming it: the review is saved, the cluster does not see it.
 */
export function syncReviewedLabels(db: ExperimentDb, run: RunInfo): string | null {
  const ext = externalSource(run);
  if (!ext) return null;
  if (!fs.existsSync(ext.dir)) {
    throw new Error(`the review is saved, but run ${run.id}'s cluster folder ${ext.dir} is gone, so ${CLUSTER_FILES.reviewedLabels} was not updated; import the run again from where the folder is now`);
  }
  return writeReviewedLabelsFile(ext.dir, clusterLabels(db, run));
}
