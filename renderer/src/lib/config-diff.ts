// The compare view's configuration diff: every setting of the compared runs, marked where the
// runs differ. Pure (tested in test/unit/renderer/config-diff.test.ts).

export interface ConfigRow {
  key: string;
  /** One per run, in the runs' order; undefined where a run's configuration lacks the key. */
  values: unknown[];
  differs: boolean;
}

/** Two values are the same setting when their JSON is (arrays and objects compared by content, keys in any order). */
function canonical(v: unknown): string {
  if (v === undefined) return 'undefined';
  return JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

/** Every key of the configurations, sorted, with each run's value and whether they differ. */
export function configDiff(configs: readonly Record<string, unknown>[]): ConfigRow[] {
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))].sort();
  return keys.map((key) => {
    const values = configs.map((c) => (Object.hasOwn(c, key) ? c[key] : undefined));
    return { key, values, differs: new Set(values.map(canonical)).size > 1 };
  });
}
