// Learning-rate schedules, computed on the host and fed to the training graph as its `lr` input
// (so changing the rate never recompiles the step). `step` is the 0-based index of the update
// about to run. Warmup rises linearly over warmupSteps + 1 intervals, so update 0 already moves
// the weights (lr/(w+1)) and update w is the first at the full rate. Hugging Face's LambdaLR
// starts at 0 instead, which in RL spends a whole rollout on an update that changes nothing
// (with 40 steps and 3% warmup, step 1 trained at lr 0). `warmupFromZero` keeps LambdaLR's ramp
// for recipes measured with it (the built-in models rebuild bit-identical).

export type ScheduleSpec =
  | { kind: 'constant'; lr: number; warmupSteps?: number; warmupFromZero?: boolean }
  | {
      kind: 'cosine';
      lr: number;
      warmupSteps?: number;
      /** Hugging Face's LambdaLR warmup: update 0 at lr 0, update w the first at the full rate. */
      warmupFromZero?: boolean;
      totalSteps: number;
      /** The floor the rate decays to, as a fraction of `lr` (verl's min_lr_ratio; default 0). */
      minLrRatio?: number;
    };

function check(spec: ScheduleSpec): void {
  if (!(spec.lr >= 0) || !Number.isFinite(spec.lr)) throw new Error(`schedule: lr must be a finite number >= 0, got ${spec.lr}`);
  const warmup = spec.warmupSteps ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`schedule: warmupSteps must be an integer >= 0, got ${warmup}`);
  if (spec.kind === 'cosine') {
    if (!Number.isInteger(spec.totalSteps) || spec.totalSteps <= 0) {
      throw new Error(`schedule: totalSteps must be a positive integer, got ${spec.totalSteps}`);
    }
    const floor = spec.minLrRatio ?? 0;
    if (!(floor >= 0 && floor <= 1)) throw new Error(`schedule: minLrRatio must be in [0, 1], got ${floor}`);
  }
}

/** The learning rate of update `step` (0-based). */
export function learningRate(spec: ScheduleSpec, step: number): number {
  check(spec);
  if (!Number.isInteger(step) || step < 0) throw new Error(`schedule: step must be an integer >= 0, got ${step}`);
  const warmup = spec.warmupSteps ?? 0;
  if (step < warmup) return spec.warmupFromZero ? (spec.lr * step) / warmup : (spec.lr * (step + 1)) / (warmup + 1);
  if (spec.kind === 'constant') return spec.lr;
  // Past totalSteps the rate stays at its floor instead of rising again along the cosine.
  const progress = Math.min(1, (step - warmup) / Math.max(1, spec.totalSteps - warmup));
  const floor = spec.minLrRatio ?? 0;
  return spec.lr * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** The schedule as a function of the step. */
export function makeSchedule(spec: ScheduleSpec): (step: number) => number {
  check(spec);
  return (step) => learningRate(spec, step);
}

/** Warmup given as a fraction of the run (TTRL's 3%), rounded down as verl does. */
export function warmupStepsFromRatio(ratio: number, totalSteps: number): number {
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`warmup ratio must be in [0, 1], got ${ratio}`);
  return Math.floor(ratio * totalSteps);
}
