// Metric series kept outside Svelte's reactivity (plain arrays, shared with Chart.js), a run's
// step timeline, and the Chart.js setup (zoom and pan: chartjs-plugin-zoom). Events append
// points; charts redraw at most once per animation frame with `update('none')`, so handling an
// event stays cheap however many points a run has.
import { Chart, Legend, LinearScale, LineController, LineElement, LogarithmicScale, type Plugin, PointElement, Tooltip } from 'chart.js';
import zoomPlugin from 'chartjs-plugin-zoom';
import type { MetricPoint } from '../../../contract/index.ts';
import { call } from './api.ts';
import type { XY } from './series.ts';
import { StepTimeline } from './timeline.ts';

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

/** A run's step timeline, fetched with runs.timeline. */
export function runTimeline(runId: number): StepTimeline {
  return new StepTimeline((afterStep) => call('runs.timeline', { id: runId, afterStep }));
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
