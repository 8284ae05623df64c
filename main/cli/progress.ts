// Progress of long work on stderr: on a terminal, one line redrawn in place (a bar, the step,
// the ETA and the key metrics); otherwise (a log file, CI) one plain line per step, since
// carriage returns make a mess of logs.

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
  /** Steps already done before this process started (a resumed run): not counted in the ETA. */
  startAt?: number;
  stream?: NodeJS.WriteStream;
  /** Redraw in place (default: whether the stream is a terminal). */
  tty?: boolean;
  now?: () => number;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly started: number;
  private readonly startAt: number;
  private drawn = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    this.startAt = opts.startAt ?? 0;
  }

  /** The line for `done` steps out of the total (exposed for tests). */
  line(done: number, metrics: Record<string, number>): string {
    const { total } = this.opts;
    const ranHere = done - this.startAt;
    const perStep = ranHere > 0 ? (this.now() - this.started) / 1000 / ranHere : NaN;
    const eta = done >= total ? 'done' : `ETA ${formatDuration(perStep * (total - done))}`;
    const km = keyMetrics(metrics);
    if (!this.tty) return `step ${done}/${total}  ${eta}${km ? `  ${km}` : ''}`;
    const width = 20;
    const filled = Math.round((width * Math.min(done, total)) / Math.max(total, 1));
    return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}  ${eta}${km ? `  ${km}` : ''}`;
  }

  update(done: number, metrics: Record<string, number> = {}): void {
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
