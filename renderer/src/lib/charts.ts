// Metric series and step timelines kept outside Svelte's reactivity (plain arrays, shared with
// Chart.js), and the Chart.js setup (zoom and pan: chartjs-plugin-zoom). Events append points; charts
// redraw at most once per animation frame with `update('none')`, so handling an event stays
// cheap however many points a run has.
import { Chart, Legend, LinearScale, LineController, LineElement, LogarithmicScale, type Plugin, PointElement, Tooltip } from 'chart.js';
import zoomPlugin from 'chartjs-plugin-zoom';
import type { MetricPoint, StepTimeView } from '../../../preload/contract.ts';
import { call } from './api.ts';
import { type StepPosition, type XY, stepPositions } from './series.ts';

// A PNG download gets the page's white behind the lines, not a transparent canvas.
const whiteBackground: Plugin = {
  id: 'whiteBackground',
  beforeDraw(chart) {
    const { ctx } = chart;
    ctx.save();
    ctx.globalCompositeOperation = 'destination-over';
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, chart.width, chart.height);
    ctx.restore();
  },
};

Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Legend, Tooltip, zoomPlugin, whiteBackground);
Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font-sans') || 'system-ui, sans-serif';
Chart.defaults.font.size = 11;
Chart.defaults.color = '#5d6470';
Chart.defaults.animation = false;

export { Chart };
export type { XY };

/** Where a run's steps lie on the wall-time and tokens axes; follows the run as it records steps. */
export class RunTimeline {
  private timeline: StepTimeView[] = [];
  private startedAt: string | null = null;
  positions = new Map<number, StepPosition>();
  private readonly listeners = new Set<() => void>();
  private loading: Promise<void> | null = null;
  private again = false;

  constructor(readonly runId: number) {}

  /** Fetches the steps after those known (all of them the first time). */
  async refresh(startedAt: string | null): Promise<void> {
    this.startedAt = startedAt ?? this.startedAt;
    // One fetch at a time; asked again meanwhile, it fetches once more when this one is done.
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        const more = await call('runs.timeline', { id: this.runId, afterStep: this.timeline.at(-1)?.step ?? -1 });
        if (more.length === 0 && this.positions.size > 0) continue;
        this.timeline.push(...more);
        this.positions = stepPositions(this.timeline, this.startedAt);
        for (const listener of this.listeners) listener();
      } while (this.again);
    })()
      // A failed fetch leaves the step axis as it is; the next recorded step asks again.
      .catch((err: unknown) => console.warn('step timeline', err))
      .finally(() => (this.loading = null));
    return this.loading;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Every point of one run's metrics, by key, sorted by step; listeners hear about new points once per frame. */
export class MetricSeries {
  readonly byKey = new Map<string, XY[]>();
  private readonly listeners = new Set<() => void>();
  private scheduled = false;

  add(points: readonly MetricPoint[]): void {
    if (points.length === 0) return;
    for (const p of points) {
      let arr = this.byKey.get(p.key);
      if (!arr) this.byKey.set(p.key, (arr = []));
      const point = { x: p.step, y: p.value };
      const last = arr[arr.length - 1];
      if (!last || last.x < p.step) arr.push(point);
      else if (last.x === p.step) arr[arr.length - 1] = point;
      else {
        // Out of order (rare): insert in place, replacing a point of the same step.
        let i = arr.length - 1;
        while (i > 0 && arr[i - 1].x >= p.step) i--;
        if (arr[i].x === p.step) arr[i] = point;
        else arr.splice(i, 0, point);
      }
    }
    this.schedule();
  }

  keys(): string[] {
    return [...this.byKey.keys()].sort();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const listener of this.listeners) listener();
    });
  }
}
