// Pause, resume and stop, shared by the runs table and the run detail.
import type { RunView } from '../../../contract/index.ts';
import { call } from './api.ts';
import { runs } from './stores.svelte.ts';
import { attempt, notify } from './toasts.svelte.ts';

// A run imported from a cluster (kind external) is trained there: it is only followed here.
export const canPause = (r: RunView) => r.kind !== 'external' && (r.status === 'running' || r.status === 'queued');
export const canResume = (r: RunView) => r.kind !== 'external' && (r.status === 'paused' || r.status === 'stopped' || r.status === 'failed');
export const canStop = (r: RunView) => r.status === 'running' || r.status === 'queued' || r.status === 'paused';

/** restart: the person confirmed that a run with no checkpoint trains again from step 0 (ResumeButton). */
export async function runAction(action: 'pause' | 'resume' | 'stop', run: RunView, reviewsOfItself = false, restart = false): Promise<RunView | undefined> {
  const result = await attempt(
    action === 'resume'
      ? call('runs.resume', { id: run.id, ...(reviewsOfItself ? { reviewsOfItself: true } : {}), ...(restart ? { restart: true } : {}) })
      : call(`runs.${action}`, { id: run.id }),
  );
  if (result) {
    runs.upsert(result);
    if (reviewsOfItself) notify(`Run #${run.id} resumes with its reviewed labels`);
  }
  return result;
}

// A paused run (one saved without starting, too) is not in the engine: it can go.
export const canDelete = (r: RunView) => r.status !== 'running' && r.status !== 'queued';

/** The confirm button's words: it names the reviews that go with the run. */
export const deleteConfirmText = (r: RunView) => (r.reviewCount > 0 ? `Delete with its ${r.reviewCount} review${r.reviewCount === 1 ? '' : 's'}` : 'Confirm delete');

/** Deletes a run after the person confirmed `deleteConfirmText(run)`, reviews included where it named them. */
export async function deleteRun(run: RunView): Promise<boolean> {
  const result = await attempt(call('runs.delete', { id: run.id, ...(run.reviewCount > 0 ? { discardReviews: true } : {}) }));
  if (result) {
    runs.remove(run.id);
    notify(`Deleted run #${run.id} “${run.name}”`);
  }
  return !!result;
}
