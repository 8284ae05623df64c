// A refresh that is asked for often (each step of a run, each status change) and done at most
// once per wait. Unlike a debounce, a steady stream of requests cannot postpone it for ever: a
// run stepping faster than the wait still gets its view refreshed (issue 15.10: the checkpoints
// panel showed none mid-run because every step restarted a 1.5 s debounce).
export class Refresher {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private due = Infinity;

  constructor(private readonly refresh: () => void) {}

  /** Refresh within `ms`: keeps an earlier refresh already due, brings a later one forward. */
  request(ms: number): void {
    const at = Date.now() + ms;
    if (this.timer !== undefined && this.due <= at) return;
    clearTimeout(this.timer);
    this.due = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due = Infinity;
      this.refresh();
    }, ms);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = Infinity;
  }
}
