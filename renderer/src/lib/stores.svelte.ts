// App-wide state fed by events: the runs (status, progress, review counts), datasets and models.
// Each event touches only the fields it changes, so only the affected rows re-render.
import type { DatasetSummary, MethodCatalog, ModelEntry, RunView } from '../../../contract/index.ts';
import { api, call } from './api.ts';
import { notify, showError } from './toasts.svelte.ts';

class RunsStore {
  list: RunView[] = $state([]);
  loaded = $state(false);

  async refresh(): Promise<void> {
    try {
      this.list = await call('runs.list', {});
      this.loaded = true;
    } catch (err) {
      showError(err);
    }
  }

  get(id: number): RunView | undefined {
    return this.list.find((r) => r.id === id);
  }

  remove(id: number): void {
    const i = this.list.findIndex((r) => r.id === id);
    if (i >= 0) this.list.splice(i, 1);
  }

  upsert(run: RunView): void {
    const i = this.list.findIndex((r) => r.id === run.id);
    if (i >= 0) this.list[i] = run;
    else this.list.unshift(run);
  }
}

class ListStore<T> {
  list: T[] = $state([]);
  loaded = $state(false);
  constructor(private readonly load: () => Promise<T[]>) {}
  async refresh(): Promise<void> {
    try {
      this.list = await this.load();
      this.loaded = true;
    } catch (err) {
      showError(err);
    }
  }
}

/** The method registry as the app serves it (methods, metric table, charts): fixed while the app runs. */
class CatalogStore {
  value: MethodCatalog | null = $state(null);
  private loading: Promise<void> | null = null;
  /** Loads it once; later calls wait for that load. */
  load(): Promise<void> {
    this.loading ??= call('runs.methods', {}).then(
      (c) => void (this.value = c),
      (err) => {
        this.loading = null;
        showError(err);
      },
    );
    return this.loading;
  }
}

export const runs = new RunsStore();
export const catalog = new CatalogStore();
// Archived ones too (marked by archivedAt): the Datasets view lists them apart; pickers leave them out.
export const datasets = new ListStore<DatasetSummary>(() => call('datasets.list', { includeArchived: true }));
export const models = new ListStore<ModelEntry>(() => call('models.list', {}));

let started = false;
/** Load the lists and follow their events (once, at start). */
export function startStores(): void {
  if (started) return;
  started = true;
  void runs.refresh();
  void catalog.load();
  void datasets.refresh();
  void models.refresh();
  api.on('run.status', ({ run }) => {
    const before = runs.get(run.id)?.status;
    runs.upsert(run);
    if (run.status === 'failed' && before !== 'failed') notify(`Run #${run.id} “${run.name}” failed: ${run.error ?? 'no reason given'}`, 'error');
  });
  // The first alert of each kind of a run pops up; the run view lists them all, one line a kind
  // (a collapsing run raises one every step: a toast each would bury every other page).
  const toasted: Record<string, true> = {};
  api.on('run.alert', ({ runId, alert }) => {
    const key = `${runId}:${alert.kind}`;
    if (toasted[key]) return;
    toasted[key] = true;
    notify(`Run #${runId}${alert.step !== null ? `, step ${alert.step}` : ''}: ${alert.message}${alert.kind === 'review_unmatched' ? '' : ' (later ones of this kind: in the run’s view)'}`, 'warn');
  });
  api.on('run.progress', ({ runId, progress }) => {
    const run = runs.get(runId);
    if (run) {
      run.progress = progress;
    }
  });
  api.on('run.metrics', ({ runId, points }) => {
    const run = runs.get(runId);
    if (!run) return;
    const key = run.keyMetric.name;
    for (const p of points) {
      if (p.key !== key || p.value === null) continue;
      run.keyMetric.value = p.value;
      if (run.keyMetric.best === null || p.value > run.keyMetric.best) {
        run.keyMetric.best = p.value;
        run.keyMetric.bestStep = p.step;
      }
    }
  });
  api.on('reviews.changed', ({ runId, count }) => {
    const run = runId === null ? undefined : runs.get(runId);
    if (run) run.reviewCount = count;
  });
  api.on('datasets.changed', () => void datasets.refresh());
  api.on('models.changed', () => void models.refresh());
}
