// Formatting helpers: numbers, parameter counts, durations, times.

export function fmtCount(n: number | null | undefined): string {
  if (n == null) return '—';
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [size, unit] of units) if (Math.abs(n) >= size) return `${trim((n / size).toFixed(n / size >= 100 ? 0 : 1))}${unit}`;
  return String(n);
}

function trim(s: string): string {
  return s.replace(/\.0$/, '');
}

export function fmtNum(v: number | null | undefined, digits = 3): string {
  if (v == null || Number.isNaN(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(digits)));
}

/**
 * An axis's tick labels in one notation: exponents for all where one needs them (a KL
 * coefficient's 0.00106 … 9.80e-4 read as two scales), else plain decimals, each with as many
 * digits as the axis needs to write its ticks exactly.
 */
export function axisLabels(values: readonly number[]): string[] {
  const distinct = new Set(values).size;
  const sizes = values.filter((v) => v !== 0).map(Math.abs);
  if (sizes.length === 0) return values.map(() => '0');
  const exponent = Math.max(...sizes) >= 1e5 || Math.min(...sizes) < 1e-3;
  const write = (v: number, digits: number) => (v === 0 ? '0' : exponent ? v.toExponential(digits) : v.toFixed(digits));
  // Enough digits that every label reads back as its tick (ticks are round numbers), and apart.
  const tolerance = 1e-9 * Math.max(...sizes);
  for (let digits = exponent ? 1 : 0; digits <= 10; digits++) {
    const labels = values.map((v) => write(v, digits));
    if (new Set(labels).size === distinct && labels.every((l, i) => Math.abs(Number(l) - values[i]) <= tolerance)) return labels;
  }
  return values.map((v) => write(v, 10));
}

export function fmtPct(v: number | null | undefined): string {
  if (v == null || Number.isNaN(v)) return '—';
  return `${(v * 100).toFixed(1)}%`;
}

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

/** A date and time, always with the date (a list sorted by date reads down it). */
export function fmtDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** A model as people name it: the folder's last part (a built-in name stays as it is). */
export function modelName(pathOrName: string): string {
  const parts = pathOrName.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? pathOrName;
}

export function fmtValue(v: unknown): string {
  if (Array.isArray(v)) return v.length ? v.join(', ') : '(none)';
  if (typeof v === 'number') return fmtNum(v, 6);
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
