// Dynamic loss scaling for mixed-precision training (as PyTorch's torch.amp.GradScaler): the loss
// is multiplied by a scale before the backward pass, so that small gradients stay above float16's
// smallest values (6e-8; 6e-5 at full precision), and the gradients are divided by it again in
// float32 before clipping and AdamW. A gradient that overflowed float16 (inf or NaN) skips the
// update and halves the scale; after `growthInterval` updates in a row without one, the scale
// doubles. The training graph does the multiplying and dividing; this is the host's bookkeeping.

export interface LossScaleOptions {
  /** The first scale (GradScaler: 2^16). */
  initScale: number;
  /** Multiplies the scale after `growthInterval` good steps in a row (GradScaler: 2). */
  growthFactor: number;
  /** Multiplies the scale after a step whose gradient was not finite (GradScaler: 0.5). */
  backoffFactor: number;
  /** Good steps in a row before the scale grows (GradScaler: 2000). */
  growthInterval: number;
}

export const LOSS_SCALE_DEFAULTS: LossScaleOptions = { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000 };

/** What a checkpoint keeps of a scaler, so a resumed run continues with the same scale. */
export interface LossScaleState {
  scale: number;
  goodSteps: number;
}

export class LossScaler {
  private current: number;
  private good = 0;
  private skippedCount = 0;

  constructor(readonly options: LossScaleOptions = LOSS_SCALE_DEFAULTS) {
    const { initScale, growthFactor, backoffFactor, growthInterval } = options;
    if (!(initScale > 0 && Number.isFinite(initScale))) throw new Error(`loss scale: initScale must be a finite number > 0, got ${initScale}`);
    if (!(growthFactor > 1)) throw new Error(`loss scale: growthFactor must be > 1, got ${growthFactor}`);
    if (!(backoffFactor > 0 && backoffFactor < 1)) throw new Error(`loss scale: backoffFactor must be in (0, 1), got ${backoffFactor}`);
    if (!(Number.isInteger(growthInterval) && growthInterval >= 1)) throw new Error(`loss scale: growthInterval must be a whole number >= 1, got ${growthInterval}`);
    this.current = initScale;
  }

  /** The scale the next step multiplies its loss by. */
  get scale(): number {
    return this.current;
  }

  /** Steps skipped so far because their gradient was not finite. */
  get skipped(): number {
    return this.skippedCount;
  }

  /**
   * After a step run at `scale`: whether its gradient was finite. Not finite: the step is to be
   * skipped and the scale backs off; finite: one more good step, and the scale grows after
   * `growthInterval` of them in a row. Returns whether the step is skipped.
   */
  update(finite: boolean): boolean {
    if (!finite) {
      this.current *= this.options.backoffFactor;
      this.good = 0;
      this.skippedCount++;
      return true;
    }
    this.good++;
    if (this.good === this.options.growthInterval) {
      this.current *= this.options.growthFactor;
      this.good = 0;
    }
    return false;
  }

  state(): LossScaleState {
    return { scale: this.current, goodSteps: this.good };
  }

  restore(state: LossScaleState): void {
    if (!(state.scale > 0 && Number.isFinite(state.scale)) || !(Number.isInteger(state.goodSteps) && state.goodSteps >= 0)) {
      throw new Error(`loss scale: a saved state needs a finite scale > 0 and a whole number of good steps, got ${JSON.stringify(state)}`);
    }
    this.current = state.scale;
    this.good = state.goodSteps;
  }
}
