// Progress of long work on stderr: on a terminal, one line redrawn in place (a bar, the step,
// the ETA and the key metrics); otherwise (a log file, CI) one plain line per step, since
// carriage returns make a mess of logs.
import { RunPace } from '../runs/run-pace.ts';

/** The metrics worth a glance while a run trains, with their short labels. */
const KEY_METRICS: [RegExp, string][] = [
  [/^train\/majority_ratio$/, 'maj_ratio'],
  [/^train\/label_accuracy$/, 'label_acc'],
  [/^train\/entropy$/, 'entropy'],
  [/^val\/(avg|maj)@\d+$/, ''],
];

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "maj_ratio 0.75  entropy 1.2  val/maj@16 0.5" from a step's metrics. */
export function keyMetrics(metrics: Record<string, number>): string {
  const parts: string[] = [];
  for (const [pattern, label] of KEY_METRICS) {
    for (const [k, v] of Object.entries(metrics)) {
      if (pattern.test(k) && Number.isFinite(v)) parts.push(`${label || k} ${Number(v.toPrecision(3))}`);
    }
  }
  return parts.join('  ');
}

export interface ProgressOptions {
  total: number;
  /** The run validates every this many steps (and at its last): the ETA adds those to come. */
  valEvery?: number;
  stream?: NodeJS.WriteStream;
  /** Redraw in place (default: whether the stream is a terminal). */
  tty?: boolean;
  now?: () => number;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  /** The pace of training steps (setup and validations apart), for the ETA. */
  private readonly pace: RunPace;
  private drawn = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? Date.now;
    this.pace = new RunPace(opts.total, opts.valEvery ?? 0);
  }

  /** The loop entered `phase` (validation time is kept out of the pace). */
  phase(phase: string): void {
    this.pace.phase(phase, this.now());
  }

  /** The line for `done` steps out of the total. */
  private line(done: number, metrics: Record<string, number>): string {
    const { total } = this.opts;
    const eta = done >= total ? 'done' : `ETA ${formatDuration(this.pace.eta(this.now()) ?? NaN)}`;
    const km = keyMetrics(metrics);
    if (!this.tty) return `step ${done}/${total}  ${eta}${km ? `  ${km}` : ''}`;
    const width = 20;
    const filled = Math.round((width * Math.min(done, total)) / Math.max(total, 1));
    return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}  ${eta}${km ? `  ${km}` : ''}`;
  }

  /** Step `done` was recorded. */
  update(done: number, metrics: Record<string, number> = {}): void {
    this.pace.step(done, this.now());
    const text = this.line(done, metrics);
    if (!this.tty) {
      this.stream.write(`${text}\n`);
      return;
    }
    // Cut to the terminal width so the line never wraps (a wrapped line cannot be redrawn).
    const cols = this.stream.columns || 100;
    this.stream.write(`\r\x1b[2K${text.slice(0, cols - 1)}`);
    this.drawn = true;
  }

  /** Ends the redrawn line before anything else is printed. */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  /** A message on its own line, without breaking the bar. */
  note(message: string): void {
    this.finish();
    this.stream.write(`${message}\n`);
  }
}
