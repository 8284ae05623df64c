// When a notice goes away by itself. Every kind does, so notices never pile up over the run log;
// an error stays long enough to read (longer for a longer message), and a notice the pointer
// rests on stays until the pointer leaves it.

/** How long a notice of `kind` with `message` (and its detail) stays, in ms. */
export function toastLifetime(kind: 'error' | 'warn' | 'info', message: string, detail = ''): number {
  const base = kind === 'info' ? 4000 : kind === 'warn' ? 8000 : 12_000;
  // About 20 characters a second of reading beyond the first line, capped at 30 s.
  const reading = Math.max(0, message.length + detail.length - 80) * 50;
  return Math.min(30_000, base + reading);
}

/** One countdown per notice, which can be held (pointer over it) and released (pointer gone). */
export class DismissTimers {
  private readonly timers = new Map<number, { left: number; started: number; handle: ReturnType<typeof setTimeout> | null }>();

  constructor(private readonly expire: (id: number) => void) {}

  start(id: number, ms: number): void {
    this.clear(id);
    this.timers.set(id, { left: ms, started: Date.now(), handle: setTimeout(() => this.fire(id), ms) });
  }

  /** Stops the countdown of `id`, keeping the time it has left. */
  hold(id: number): void {
    const t = this.timers.get(id);
    if (!t || t.handle === null) return;
    clearTimeout(t.handle);
    t.left = Math.max(0, t.left - (Date.now() - t.started));
    t.handle = null;
  }

  /** Resumes the countdown of `id`, with at least `min` ms so it does not vanish under the leaving pointer. */
  release(id: number, min = 1500): void {
    const t = this.timers.get(id);
    if (!t || t.handle !== null) return;
    t.left = Math.max(t.left, min);
    t.started = Date.now();
    t.handle = setTimeout(() => this.fire(id), t.left);
  }

  clear(id: number): void {
    const t = this.timers.get(id);
    if (t?.handle) clearTimeout(t.handle);
    this.timers.delete(id);
  }

  private fire(id: number): void {
    this.timers.delete(id);
    this.expire(id);
  }
}
