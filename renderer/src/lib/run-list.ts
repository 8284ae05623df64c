// The runs list's filtering, sorting and durations, apart from the view so they can be tested
// without a browser. Every run is in the list already (runs.list): filtering and sorting
// happen here, on what the window holds, so events keep a filtered list current.
import type { RunStatus, RunView } from '../../../contract/index.ts';

export interface RunFilter {
  /** Part of the run's name or id (case-insensitive). */
  text: string;
  status: RunStatus | '';
  method: string;
  model: string;
  dataset: string;
  tag: string;
}

export const NO_FILTER: RunFilter = { text: '', status: '', method: '', model: '', dataset: '', tag: '' };

export type RunSortKey = 'created' | 'name' | 'duration' | 'status' | 'metric' | 'reviews';
export interface RunSort {
  key: RunSortKey;
  descending: boolean;
}

/** Newest first, as the database lists them. */
export const DEFAULT_SORT: RunSort = { key: 'created', descending: true };

const time = (iso: string | null): number | null => {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
};

/**
 * Seconds from a run's first start to its end: its finish, now while it trains, its last step
 * while it is paused (pauses between are counted). Null for a run that never started.
 */
export function runDurationSeconds(run: Pick<RunView, 'status' | 'startedAt' | 'finishedAt' | 'lastStepAt'>, nowMs: number): number | null {
  const start = time(run.startedAt);
  if (start === null) return null;
  const end = run.status === 'running' || run.status === 'queued' ? nowMs : (time(run.finishedAt) ?? time(run.lastStepAt));
  return end === null ? null : Math.max(0, (end - start) / 1000);
}

export function filterRuns(list: readonly RunView[], f: RunFilter): RunView[] {
  const text = f.text.trim().toLowerCase();
  return list.filter(
    (r) =>
      (!text || r.name.toLowerCase().includes(text) || `#${r.id}` === text || String(r.id) === text) &&
      (!f.status || r.status === f.status) &&
      (!f.method || r.method === f.method) &&
      (!f.model || r.model === f.model) &&
      (!f.dataset || r.dataset === f.dataset) &&
      (!f.tag || r.tags.includes(f.tag)),
  );
}

export const isFiltered = (f: RunFilter): boolean => (Object.keys(NO_FILTER) as (keyof RunFilter)[]).some((k) => f[k].trim() !== '');

// Status order when sorting by it: what needs attention (training, then waiting) first.
const STATUS_ORDER: Record<RunStatus, number> = { running: 0, queued: 1, paused: 2, failed: 3, stopped: 4, completed: 5 };

/**
 * The runs in the order asked. Runs without a value (no duration, no metric yet) go last either
 * way; ties keep the newest first.
 */
export function sortRuns(list: readonly RunView[], sort: RunSort, nowMs: number): RunView[] {
  const value = (r: RunView): number | string | null => {
    switch (sort.key) {
      case 'created':
        return time(r.createdAt);
      case 'name':
        return r.name.toLowerCase();
      case 'duration':
        return runDurationSeconds(r, nowMs);
      case 'status':
        return STATUS_ORDER[r.status];
      case 'metric':
        return r.keyMetric.value;
      case 'reviews':
        return r.reviewCount;
    }
  };
  const newestFirst = (a: RunView, b: RunView) => (time(b.createdAt) ?? 0) - (time(a.createdAt) ?? 0) || b.id - a.id;
  return list
    .map((r) => ({ r, v: value(r) }))
    .sort((a, b) => {
      if (a.v === null || b.v === null) return a.v === b.v ? newestFirst(a.r, b.r) : a.v === null ? 1 : -1;
      const c = typeof a.v === 'string' ? a.v.localeCompare(String(b.v)) : a.v - (b.v as number);
      return (sort.descending ? -c : c) || newestFirst(a.r, b.r);
    })
    .map((x) => x.r);
}

/** The values each filter can take: those the runs have, sorted. */
export function filterChoices(list: readonly RunView[]): { methods: string[]; models: string[]; datasets: string[]; tags: string[] } {
  const distinct = (values: string[]) => [...new Set(values)].sort((a, b) => a.localeCompare(b));
  return {
    methods: distinct(list.map((r) => r.method)),
    models: distinct(list.map((r) => r.model)),
    datasets: distinct(list.map((r) => r.dataset)),
    tags: distinct(list.flatMap((r) => r.tags)),
  };
}
