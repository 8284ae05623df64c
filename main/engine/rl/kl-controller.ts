// The adaptive KL coefficient of Ziegler et al. (2019), "Fine-Tuning Language Models from Human
// Preferences" (TRL's AdaptiveKLController): after each update the coefficient is multiplied by
//   1 + clip(KL / target − 1, −0.2, 0.2) / horizon,
// so it rises while the policy runs further from the reference than the target and falls while
// it stays closer, by at most 0.2 / horizon a step. A fixed coefficient has to be strong enough
// for the early, fast-moving steps, and is then stronger than needed once the learning rate has
// decayed; a target holds the distance instead.

/** The largest relative error one step acts on (TRL's ±0.2). */
const MAX_ERROR = 0.2;

export interface KlControl {
  /** The coefficient to start from (the run's klCoef). */
  initial: number;
  /** Mean token KL to the reference to hold (> 0). */
  target: number;
  /** Steps over which a sustained ±20% error changes the coefficient by about ±20%. */
  horizon: number;
}

/** The coefficient after an update measured `kl` (a non-finite KL leaves it unchanged). */
export function nextKlCoef(coef: number, kl: number, control: KlControl): number {
  if (!Number.isFinite(kl)) return coef;
  const error = Math.min(MAX_ERROR, Math.max(-MAX_ERROR, kl / control.target - 1));
  return coef * (1 + error / control.horizon);
}

/** What is wrong with a controller's settings, each at the run setting that sets it (none: it can run). */
export function klControlProblems(control: KlControl): { setting: 'klCoef' | 'klTarget' | 'klHorizon'; message: string }[] {
  const problems: { setting: 'klCoef' | 'klTarget' | 'klHorizon'; message: string }[] = [];
  if (!(control.initial > 0)) problems.push({ setting: 'klCoef', message: `an adaptive KL coefficient (klTarget > 0) needs klCoef > 0 to start from, got ${control.initial}` });
  if (!(control.target > 0)) problems.push({ setting: 'klTarget', message: `klTarget must be > 0, got ${control.target}` });
  if (!(control.horizon >= 1)) problems.push({ setting: 'klHorizon', message: `klHorizon must be >= 1 step, got ${control.horizon}` });
  return problems;
}

export function checkKlControl(control: KlControl): void {
  const [first] = klControlProblems(control);
  if (first) throw new Error(first.message);
}
