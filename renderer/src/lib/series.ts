// What a chart draws, computed from a run's points by step: the x-axis (step, wall time or
// tokens seen), the smoothed line, and the CSV a chart downloads. Pure functions (no DOM, no
// Chart.js), so they are tested directly (test/unit/renderer/series.test.ts).
import type { StepTimeView } from '../../../contract/index.ts';

export interface XY {
  x: number;
  y: number | null;
}

export const X_AXES = ['step', 'time', 'tokens'] as const;
export type XAxis = (typeof X_AXES)[number];

export const X_AXIS_TITLES: Record<XAxis, string> = { step: 'step', time: 'wall time (s)', tokens: 'tokens seen' };

/** Where each step of a run lies on the wall-time and tokens axes. */
export interface StepPosition {
  /** Seconds from the run's start to when the step was recorded. */
  time: number;
  /** Tokens the run's rollouts processed up to and including this step; null where the run kept no token counts. */
  tokens: number | null;
}

/**
 * A run's steps on the wall-time axis (seconds since `startedAt`, else since its first step) and
 * the tokens axis (the running sum of each step's tokens; null for every step of a run recorded
 * before steps kept their tokens).
 */
export function stepPositions(timeline: readonly StepTimeView[], startedAt: string | null): Map<number, StepPosition> {
  const positions = new Map<number, StepPosition>();
  if (timeline.length === 0) return positions;
  const sorted = [...timeline].sort((a, b) => a.step - b.step);
  const started = startedAt === null ? NaN : Date.parse(startedAt);
  const origin = Number.isFinite(started) ? started : Date.parse(sorted[0].recordedAt);
  const counted = sorted.some((t) => t.tokens !== null);
  let tokens = 0;
  for (const t of sorted) {
    tokens += t.tokens ?? 0;
    positions.set(t.step, { time: (Date.parse(t.recordedAt) - origin) / 1000, tokens: counted ? tokens : null });
  }
  return positions;
}

/** The x of a step on an axis; undefined where it is not known (yet): such points are left out. */
export function xOf(step: number, axis: XAxis, positions: ReadonlyMap<number, StepPosition> | undefined): number | undefined {
  if (axis === 'step') return step;
  const p = positions?.get(step);
  if (!p) return undefined;
  return axis === 'time' ? p.time : (p.tokens ?? undefined);
}

/** Points by step moved to an axis, leaving out those whose position is not known. */
export function onAxis(points: readonly XY[], axis: XAxis, positions?: ReadonlyMap<number, StepPosition>): XY[] {
  if (axis === 'step') return points as XY[];
  const out: XY[] = [];
  for (const p of points) {
    const x = xOf(p.x, axis, positions);
    if (x !== undefined) out.push({ x, y: p.y });
  }
  return out;
}

/**
 * The exponential moving average TensorBoard and W&B draw, debiased: the running average starts
 * at 0 and is divided by 1 − weight^n (n: the finite values seen), so the first points are not
 * pulled toward 0. weight 0 returns the points; a missing or non-finite value is kept as it is
 * and does not move the average.
 */
export function emaSmooth(points: readonly XY[], weight: number): XY[] {
  if (!(weight > 0)) return points as XY[];
  const w = Math.min(weight, 0.999);
  let last = 0;
  let n = 0;
  return points.map((p) => {
    if (p.y === null || !Number.isFinite(p.y)) return { x: p.x, y: p.y };
    last = last * w + (1 - w) * p.y;
    n++;
    // 12 significant digits: rounding noise is not drawn (a constant series stays exactly constant,
    // where the chart's autoscale would otherwise magnify differences of 1e-22 into a zigzag).
    return { x: p.x, y: Number((last / (1 - w ** n)).toPrecision(12)) };
  });
}

export interface CsvSeries {
  label: string;
  /** The raw points by step. */
  points: readonly XY[];
  /** The series' steps on the chart's x-axis, where that is not the step. */
  positions?: ReadonlyMap<number, StepPosition>;
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * A chart's data as CSV: one row per step, the step, then for each series its x on the chart's
 * axis (when that is wall time or tokens), its value and, with smoothing, its smoothed value (as
 * drawn, on the same axis). An empty cell where a series has no point at that step.
 */
export function chartCsv(series: readonly CsvSeries[], axis: XAxis, smoothing: number): string {
  const steps = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const header = ['step'];
  const columns: ((step: number) => string)[] = [];
  for (const s of series) {
    const byStep = new Map(s.points.map((p) => [p.x, p.y]));
    if (axis !== 'step') {
      header.push(`${s.label} (${X_AXIS_TITLES[axis]})`);
      columns.push((step) => (byStep.has(step) ? cell(xOf(step, axis, s.positions)) : ''));
    }
    header.push(s.label);
    columns.push((step) => cell(byStep.get(step)));
    if (smoothing > 0) {
      // Smoothed along the drawn axis, as on screen: only the points that axis places.
      const placed = s.points.filter((p) => xOf(p.x, axis, s.positions) !== undefined);
      const smoothed = new Map(emaSmooth(placed, smoothing).map((p) => [p.x, p.y]));
      header.push(`${s.label} (smoothed ${smoothing})`);
      columns.push((step) => cell(smoothed.get(step)));
    }
  }
  const lines = [header.map(cell).join(',')];
  for (const step of steps) lines.push([String(step), ...columns.map((c) => c(step))].join(','));
  return lines.join('\n') + '\n';
}
