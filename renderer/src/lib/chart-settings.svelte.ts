// The settings every chart follows (smoothing, x-axis), as W&B's workspace settings: one for the
// whole app, kept across views and restarts.
import { type XAxis, X_AXES } from './series.ts';

const KEY = 'autodidact.charts';

class ChartSettings {
  /** EMA weight, 0 (raw) to 0.99. */
  smoothing = $state(0);
  xAxis: XAxis = $state('step');

  constructor() {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY) ?? '{}') as { smoothing?: unknown; xAxis?: unknown };
      if (typeof saved.smoothing === 'number' && saved.smoothing >= 0 && saved.smoothing < 1) this.smoothing = saved.smoothing;
      if (X_AXES.includes(saved.xAxis as XAxis)) this.xAxis = saved.xAxis as XAxis;
    } catch {
      // No storage, or an entry that is not ours: the defaults.
    }
  }

  save(): void {
    try {
      localStorage.setItem(KEY, JSON.stringify({ smoothing: this.smoothing, xAxis: this.xAxis }));
    } catch {
      // A page without storage keeps the setting until it closes.
    }
  }
}

export const chartSettings = new ChartSettings();
