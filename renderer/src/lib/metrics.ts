// How the run views label and chart metrics: everything comes from the method catalog
// (`runs.methods`: the registry's metric table and charts), so a new method's metrics are
// labelled and charted without touching the renderer.
import type { MethodCatalog, MetricInfo } from '../../../contract/index.ts';

/** The catalog entry of a key: exact, else its `@k` family (`val/avg@16` → `val/avg@k`). */
export function metricInfo(catalog: MethodCatalog | null, key: string): MetricInfo | undefined {
  if (!catalog) return undefined;
  const exact = catalog.metrics.find((m) => m.key === key);
  if (exact) return exact;
  const family = key.replace(/@\d+$/, '@k');
  return family === key ? undefined : catalog.metrics.find((m) => m.key === family);
}

export function metricLabel(catalog: MethodCatalog | null, key: string): string {
  const info = metricInfo(catalog, key);
  if (!info) return key;
  const k = /@(\d+)$/.exec(key);
  return k && info.key.endsWith('@k') ? info.label.replace('@k', `@${k[1]}`) : info.label;
}

export function metricDescription(catalog: MethodCatalog | null, key: string): string {
  return metricInfo(catalog, key)?.description ?? '';
}

export interface ChartSpec {
  id: string;
  title: string;
  /** Which of the run's metric keys the chart draws. */
  match: (key: string) => boolean;
  /** Draw order (and colour order) of the keys it knows; others follow, sorted. */
  order: string[];
  /** Values in [0, 1]. */
  unit: boolean;
  hint: string;
}

/** The charts of a run of `method`: those that draw a metric every run logs, or one of the method's own. */
export function runCharts(catalog: MethodCatalog | null, method: string, config: Record<string, unknown> = {}): ChartSpec[] {
  if (!catalog) return [];
  const logged = catalog.metrics.filter((m) => m.method === null || m.method === method);
  return catalog.charts
    .filter((c) => logged.some((m) => m.chart === c.id))
    // A chart of some runs only (the critic's): the run's setting decides, before any step is logged.
    .filter((c) => !c.when || config[c.when.setting] === c.when.equals)
    .map((c) => ({
      id: c.id,
      title: c.title,
      hint: c.hint,
      unit: c.unit,
      match: (key: string) => metricInfo(catalog, key)?.chart === c.id,
      // A family key `val/avg@k` orders every `val/avg@…`.
      order: logged.filter((m) => m.chart === c.id).map((m) => (m.key.endsWith('@k') ? m.key.slice(0, -1) : m.key)),
    }));
}

/** Whether a metric lives in [0, 1] (its chart then shows the whole range). */
export function isUnitMetric(catalog: MethodCatalog | null, key: string): boolean {
  return metricInfo(catalog, key)?.unit ?? false;
}

/** Measured against hidden answers (drawn dashed where it shares a chart with pseudo metrics). */
export function isGroundTruthMetric(catalog: MethodCatalog | null, key: string): boolean {
  return metricInfo(catalog, key)?.groundTruth ?? false;
}

/** Sort keys by a chart's order (an entry ending in '@' matches any k), then by name. */
export function orderKeys(keys: string[], order: string[] = []): string[] {
  const rank = (key: string) => {
    const i = order.findIndex((o) => (o.endsWith('@') ? key.startsWith(o) : key === o));
    return i < 0 ? order.length : i;
  };
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export const SERIES_COLORS = ['#2f6fde', '#e0782f', '#2a9d6f', '#b2479b', '#8a6d1f', '#5b5fc7', '#c4443b', '#3b8ea5'];

/** A method's label (TTRL, Self-certainty); its id where the catalog does not know it (a plug-in's run). */
export function methodLabel(catalog: MethodCatalog | null, id: string): string {
  return catalog?.methods.find((m) => m.id === id)?.label ?? id.toUpperCase();
}

/** How an alert's kind reads in the run view. */
export const ALERT_LABELS: Record<string, string> = {
  collapse: 'Collapse',
  validation_drop: 'Validation drop',
  weak_signal: 'Weak learning signal',
  review_unmatched: 'Unmatched reviewed label',
};
