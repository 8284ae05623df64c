// A run's time left, for the progress bar. Measured from training steps only: the first
// interval (loading the model, compiling the graphs) and validations are no guide to the pace of
// a step, and counting them made a 30 s run show "ETA 3 min" (issue 15.10). The validations
// still to come are added at the duration of the last one.

/** Step completions the pace is measured over. */
const PACE_WINDOW = 5;

export class RunPace {
  /** Training step completions (ms), each with the training time of the interval before it. */
  private marks: { step: number; at: number; trainMs: number }[] = [];
  private validationStarted: number | null = null;
  /** Validation time (ms) since the last step completion. */
  private validatingMs = 0;
  private lastValidationMs: number | null = null;

  /**
   * @param steps the run's total steps
   * @param valEvery validation every this many steps (and at the last one); 0: none
   */
  constructor(
    private readonly steps: number,
    private readonly valEvery: number,
  ) {}

  /** The loop entered `phase` at `at` (ms). */
  phase(phase: string, at: number): void {
    if (phase === 'validation') this.validationStarted ??= at;
    else this.endValidation(at);
  }

  /** Step `step` was recorded at `at` (ms); step 0 is the base model's validation. */
  step(step: number, at: number): void {
    this.endValidation(at);
    const previous = this.marks.at(-1);
    // An interval's training time: without the validation inside it. The first training step
    // after a start has no previous mark: it includes the setup, and only marks the start.
    const trainMs = previous && step > previous.step ? Math.max(0, at - previous.at - this.validatingMs) / (step - previous.step) : NaN;
    if (step > 0) {
      this.marks.push({ step, at, trainMs });
      if (this.marks.length > PACE_WINDOW + 1) this.marks.shift();
    }
    this.validatingMs = 0;
  }

  /** Seconds to the end at `now` (ms), or null until two training steps have finished. */
  eta(now: number): number | null {
    const paced = this.marks.filter((m) => Number.isFinite(m.trainMs));
    const last = this.marks.at(-1);
    if (!paced.length || !last) return null;
    const perStep = paced.reduce((s, m) => s + m.trainMs, 0) / paced.length;
    const left = this.steps - last.step;
    const validations = this.validationsAfter(last.step);
    const validationMs = validations * (this.lastValidationMs ?? 0);
    return Math.max(0, Math.round((perStep * left + validationMs - (now - last.at)) / 1000));
  }

  /** Validations the loop will run after step `done`: every valEvery-th step and the last. */
  private validationsAfter(done: number): number {
    if (this.valEvery <= 0 || done >= this.steps) return 0;
    const multiples = Math.floor(this.steps / this.valEvery) - Math.floor(done / this.valEvery);
    return multiples + (this.steps % this.valEvery === 0 ? 0 : 1);
  }

  private endValidation(at: number): void {
    if (this.validationStarted === null) return;
    const ms = Math.max(0, at - this.validationStarted);
    this.validatingMs += ms;
    this.lastValidationMs = ms;
    this.validationStarted = null;
  }
}
