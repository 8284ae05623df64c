// Small statistics the loop, the signal check and the methods' rewards share.

export const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Unbiased standard deviation (n − 1, torch's default); 0 for fewer than two values. */
export function std(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** mean, std, min and max under `prefix/` (Intuitor's and verl's naming). */
export function summary(prefix: string, xs: readonly number[]): Record<string, number> {
  if (xs.length === 0) return {};
  return { [`${prefix}/mean`]: mean(xs), [`${prefix}/std`]: std(xs), [`${prefix}/min`]: Math.min(...xs), [`${prefix}/max`]: Math.max(...xs) };
}
