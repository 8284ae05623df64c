// A run's step timeline (when each step was recorded, its tokens) and where that puts each step
// on the wall-time and tokens axes, followed as the run records steps. Kept outside Svelte's
// reactivity; listeners hear of each change. Tested in test/unit/renderer/timeline.test.ts.
import type { StepTimeView } from '../../../contract/index.ts';
import { type StepPosition, stepPositions } from './series.ts';

export class StepTimeline {
  private timeline: StepTimeView[] = [];
  private startedAt: string | null = null;
  positions = new Map<number, StepPosition>();
  private readonly listeners = new Set<() => void>();
  private loading: Promise<void> | null = null;
  private again = false;
  private whole = false;

  /** `fetch(afterStep)`: the steps recorded after that one (runs.timeline). */
  constructor(private readonly fetch: (afterStep: number) => Promise<StepTimeView[]>) {}

  /**
   * Fetches the steps after those known (all of them the first time). `recorded`: the step an
   * event just announced; one already known was recorded again (a resumed run rolled back to its
   * checkpoint and trains those steps anew), so the whole timeline is fetched again.
   */
  refresh(startedAt: string | null, recorded?: number): Promise<void> {
    this.startedAt = startedAt ?? this.startedAt;
    const last = this.timeline.at(-1)?.step;
    if (recorded !== undefined && last !== undefined && recorded <= last) this.whole = true;
    // One fetch at a time; asked again meanwhile, it fetches once more when this one is done.
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        const whole = this.whole;
        this.whole = false;
        const more = await this.fetch(whole ? -1 : (this.timeline.at(-1)?.step ?? -1));
        if (!whole && more.length === 0 && this.positions.size > 0) continue;
        this.timeline = whole ? more : [...this.timeline, ...more];
        this.positions = stepPositions(this.timeline, this.startedAt);
        for (const listener of this.listeners) listener();
      } while (this.again || this.whole);
    })()
      // A failed fetch leaves the axes as they are; the next recorded step asks again.
      .catch((err: unknown) => console.warn('step timeline', err))
      .finally(() => (this.loading = null));
    return this.loading;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
