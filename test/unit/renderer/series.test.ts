// The charts' data (issue 15.7): the debiased EMA TensorBoard and W&B draw, a run's steps on the
// wall-time and tokens axes, and the CSV a chart downloads.
import { describe, expect, it } from 'vitest';
import type { StepTimeView } from '../../../contract/index.ts';
import { chartCsv, emaSmooth, onAxis, stepPositions, xOf } from '../../../renderer/src/lib/series.ts';

const pts = (...ys: (number | null)[]) => ys.map((y, i) => ({ x: i + 1, y }));

describe('emaSmooth', () => {
  it('is TensorBoard\'s debiased exponential moving average', () => {
    // last = 0.5·last + 0.5·y, divided by 1 − 0.5^n: 1, 1.25/0.75, 2.125/0.875.
    const s = emaSmooth(pts(1, 2, 3), 0.5).map((p) => p.y!);
    expect(s[0]).toBeCloseTo(1, 12);
    expect(s[1]).toBeCloseTo(1.25 / 0.75, 10);
    expect(s[2]).toBeCloseTo(2.125 / 0.875, 10);
    // Debiased: a constant series stays constant from the first point (no pull toward 0), exactly,
    // so a chart's autoscale does not magnify rounding noise.
    for (const p of emaSmooth(pts(0.8, 0.8, 0.8, 0.8), 0.9)) expect(p.y).toBe(0.8);
    for (const p of emaSmooth(Array.from({ length: 40 }, (_, i) => ({ x: i, y: 1e-6 })), 0.8)) expect(p.y).toBe(1e-6);
  });

  it('returns the points at weight 0, keeps x, and skips gaps without moving the average', () => {
    const raw = pts(3, 1, 4);
    expect(emaSmooth(raw, 0)).toBe(raw);
    const s = emaSmooth(pts(1, null, Number.NaN, 3), 0.5);
    expect(s.map((p) => p.x)).toEqual([1, 2, 3, 4]);
    expect(s[1].y).toBeNull();
    expect(s[2].y).toBeNaN();
    // The gap counted for nothing: the fourth point is the second value seen.
    expect(s[3].y).toBeCloseTo((0.5 * 0.5 + 0.5 * 3) / 0.75, 10);
  });

  it('follows a noisy series more smoothly the higher the weight', () => {
    const noisy = Array.from({ length: 200 }, (_, i) => ({ x: i, y: 0.5 + (i % 2 ? 0.2 : -0.2) }));
    const wiggle = (xs: { y: number | null }[]) => Math.max(...xs.slice(50).map((p) => p.y!)) - Math.min(...xs.slice(50).map((p) => p.y!));
    expect(wiggle(emaSmooth(noisy, 0.6))).toBeLessThan(wiggle(noisy));
    expect(wiggle(emaSmooth(noisy, 0.95))).toBeLessThan(wiggle(emaSmooth(noisy, 0.6)));
  });
});

const TIMELINE: StepTimeView[] = [
  { step: 0, recordedAt: '2026-01-01T00:00:05.000Z', tokens: null },
  { step: 1, recordedAt: '2026-01-01T00:00:12.500Z', tokens: 300 },
  { step: 2, recordedAt: '2026-01-01T00:00:20.000Z', tokens: 250 },
];

describe('stepPositions', () => {
  it('puts each step at the seconds since the run started and the running sum of its tokens', () => {
    const p = stepPositions(TIMELINE, '2026-01-01T00:00:00.000Z');
    expect([...p.entries()]).toEqual([
      [0, { time: 5, tokens: 0 }],
      [1, { time: 12.5, tokens: 300 }],
      [2, { time: 20, tokens: 550 }],
    ]);
  });

  it('counts from the first step when the run has no start, and has no tokens axis for a run that kept no counts', () => {
    const old = TIMELINE.map((t) => ({ ...t, tokens: null }));
    const p = stepPositions(old, null);
    expect(p.get(0)).toEqual({ time: 0, tokens: null });
    expect(p.get(2)).toEqual({ time: 15, tokens: null });
    expect(xOf(2, 'tokens', p)).toBeUndefined();
    expect(xOf(2, 'time', p)).toBe(15);
    expect(xOf(7, 'step', p)).toBe(7);
    expect(xOf(7, 'time', p)).toBeUndefined();
  });

  it('moves points to an axis, leaving out steps whose position is not known yet', () => {
    const p = stepPositions(TIMELINE, '2026-01-01T00:00:00.000Z');
    const points = [{ x: 1, y: 0.5 }, { x: 2, y: 0.75 }, { x: 3, y: 0.9 }];
    expect(onAxis(points, 'step', p)).toBe(points);
    expect(onAxis(points, 'time', p)).toEqual([{ x: 12.5, y: 0.5 }, { x: 20, y: 0.75 }]);
    expect(onAxis(points, 'tokens', p)).toEqual([{ x: 300, y: 0.5 }, { x: 550, y: 0.75 }]);
  });
});

describe('chartCsv', () => {
  const a = { label: 'Pseudo reward', points: [{ x: 0, y: 1 }, { x: 1, y: 2 }, { x: 2, y: 3 }] };
  const b = { label: 'Label "acc", %', points: [{ x: 1, y: 0.5 }, { x: 2, y: null }] };

  it('has a row per step and a column per series, empty where a series has no value', () => {
    expect(chartCsv([a, b], 'step', 0)).toBe('step,Pseudo reward,"Label ""acc"", %"\n0,1,\n1,2,0.5\n2,3,\n');
  });

  it('adds each series\' x on a wall-time or tokens axis, and its smoothed values as drawn', () => {
    const positions = stepPositions(TIMELINE, '2026-01-01T00:00:00.000Z');
    const csv = chartCsv([{ ...a, positions }], 'tokens', 0.5);
    const [header, ...rows] = csv.trim().split('\n');
    expect(header).toBe('step,Pseudo reward (tokens seen),Pseudo reward,Pseudo reward (smoothed 0.5)');
    expect(rows.map((r) => r.split(',').slice(0, 3))).toEqual([['0', '0', '1'], ['1', '300', '2'], ['2', '550', '3']]);
    expect(rows.map((r) => Number(r.split(',')[3]))).toEqual([1, 1.25 / 0.75, 2.125 / 0.875].map((v) => Number(v.toPrecision(12))));
  });
});
