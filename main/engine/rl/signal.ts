// The signal check: is there anything to learn from a step's votes, or is the run training on
// noise? A model that cannot answer its prompts still produces pseudo-labels (a 1-in-16
// "majority"), non-zero advantages and a healthy-looking reward accuracy, so the numbers that
// tell noise apart are logged every step and compared with thresholds (run settings):
//
// - `signal/extraction_rate`: share of samples with an extracted answer. Low: the model does not
//   answer in a form the answer format reads (wrong format, too few tokens, a base model).
// - `signal/majority_ratio_chance` and `signal/majority_lift`: the mean majority ratio compared
//   with what chance gives. For a group of n samples of which m have an answer, spread over k
//   distinct answers, chance is the majority ratio the group would reach if each of its m answers
//   had been drawn uniformly at random from max(k, 2) answers: E[largest count of
//   Multinomial(m, 1/max(k, 2))] / n. (At least two: a unanimous group chose between at least
//   its answer and another one, and is then well above chance.) The lift is the mean majority
//   ratio over the step's groups divided by their mean chance ratio: about 1 or below when the
//   answers are spread as randomly as guesses (16 different answers of 16 give 1/2.6), higher the
//   more a consensus stands out (12 of 16 over 3 answers: about 1.6).
// - `signal/groups_with_signal`: share of groups whose trained samples have any non-zero
//   advantage; a group without (unanimous, tied or unlabeled) teaches nothing.
// - `signal/tied_groups`: share of groups whose vote tied for the most votes.
//
// A method whose learning does not read extracted answers (code) says what counts instead
// (`MethodDefinition.signal`): for code-consensus a sample "answers" with a runnable function (one
// that passed or failed some test), the clusters are its consensus sets of runnable functions,
// the majority ratio is the top set's size over n, and a group has signal when its trained
// samples' rewards differ (any role's: a group may train on per-token advantages whose sample
// means are 0). The TTRL family keeps the answers and votes above.
//
// The signal is weak when any of the three checked numbers, averaged over the last
// `signalWindow` steps, is below its threshold. The watch alerts once when weakness starts and
// re-arms when the signal is healthy again (as the collapse watch).
// The loop evaluates each step's rollout before its update, so the first step's check is a
// pre-flight check: it costs no extra generation, uses exactly the run's prompts and sampling,
// and with `signalAction: 'stop'` the run stops before a single update on noise.
import type { Alert } from './metrics.ts';
import { mean } from './stats.ts';

export const SIGNAL_METRICS = {
  extractionRate: 'signal/extraction_rate',
  majorityRatioChance: 'signal/majority_ratio_chance',
  majorityLift: 'signal/majority_lift',
  groupsWithSignal: 'signal/groups_with_signal',
  tiedGroups: 'signal/tied_groups',
} as const;

/** What the signal check needs to know about one prompt's group. */
export interface SignalGroup {
  /** Samples drawn (n, the majority ratio's denominator). */
  samples: number;
  /** Samples with an extracted answer. */
  extracted: number;
  /** Votes per distinct answer (clusters); their sum is m, the samples that voted. */
  clusterCounts: readonly number[];
  /** Largest cluster's count / n. */
  majorityRatio: number;
  tied: boolean;
  /** Advantages of the samples trained on (empty when the group got no label). */
  trainedAdvantages: readonly number[];
  /** The method's own word on whether the group teaches anything (see MethodSignal); absent: a non-zero trained advantage decides. */
  hasSignal?: boolean;
}

export interface SignalThresholds {
  /** Below this extraction rate the step is weak (0 = off). */
  minExtraction: number;
  /** Below this majority lift the step is weak (0 = off). */
  minLift: number;
  /** Below this share of groups with a non-zero advantage the step is weak (0 = off). */
  minGroupsWithSignal: number;
}

const largestCountCache = new Map<string, number>();

/**
 * E[largest count] when m items fall uniformly at random into k boxes (a multinomial). Exact:
 * P(max ≤ s) by allocating the boxes one at a time (box i takes Binomial(remaining, 1/boxes
 * left)), all in probabilities, so it is stable for any m; E = Σ_{s ≥ 0} (1 − P(max ≤ s)).
 */
export function expectedLargestCount(m: number, k: number): number {
  if (!(Number.isInteger(m) && m >= 0 && Number.isInteger(k) && k >= 1)) throw new Error(`expectedLargestCount needs integers m ≥ 0 and k ≥ 1, got m=${m}, k=${k}`);
  if (m === 0) return 0;
  if (k === 1) return m;
  const key = `${m}/${k}`;
  const cached = largestCountCache.get(key);
  if (cached !== undefined) return cached;
  let expected = 0;
  for (let s = 0; s < m; s++) {
    // prob[j]: probability that j items remain after the boxes so far, each of them holding ≤ s.
    let prob = new Float64Array(m + 1);
    prob[m] = 1;
    for (let box = 0; box < k; box++) {
      const next = new Float64Array(m + 1);
      if (box === k - 1) {
        // The last box takes whatever remains.
        for (let j = 0; j <= s; j++) next[0] += prob[j];
      } else {
        const p = 1 / (k - box);
        const odds = p / (1 - p);
        for (let j = 0; j <= m; j++) {
          if (prob[j] === 0) continue;
          // Binomial(j, p) probabilities for c = 0..s, by the ratio of consecutive terms.
          let pc = Math.pow(1 - p, j);
          for (let c = 0; c <= Math.min(s, j); c++) {
            next[j - c] += prob[j] * pc;
            pc *= ((j - c) / (c + 1)) * odds;
          }
        }
      }
      prob = next;
    }
    const above = 1 - prob[0];
    expected += above;
    // The remaining terms are smaller still: nothing left to add at double precision.
    if (above < 1e-15) break;
  }
  largestCountCache.set(key, expected);
  return expected;
}

/** The majority ratio chance gives a group: E[largest count of Multinomial(m, 1/max(k, 2))] / n. */
export function chanceMajorityRatio(group: Pick<SignalGroup, 'samples' | 'clusterCounts'>): number {
  const m = group.clusterCounts.reduce((a, b) => a + b, 0);
  if (group.samples === 0 || m === 0) return 0;
  return expectedLargestCount(m, Math.max(group.clusterCounts.length, 2)) / group.samples;
}

/** The step's signal metrics (keys of SIGNAL_METRICS). */
export function signalMetrics(groups: readonly SignalGroup[]): Record<string, number> {
  const samples = groups.reduce((s, g) => s + g.samples, 0);
  const extracted = groups.reduce((s, g) => s + g.extracted, 0);
  const ratio = mean(groups.map((g) => g.majorityRatio));
  const chance = mean(groups.map(chanceMajorityRatio));
  return {
    [SIGNAL_METRICS.extractionRate]: samples === 0 ? 0 : extracted / samples,
    [SIGNAL_METRICS.majorityRatioChance]: chance,
    // No answers at all: no consensus to speak of.
    [SIGNAL_METRICS.majorityLift]: chance === 0 ? 0 : ratio / chance,
    [SIGNAL_METRICS.groupsWithSignal]: mean(groups.map((g) => ((g.hasSignal ?? g.trainedAdvantages.some((a) => a !== 0)) ? 1 : 0))),
    [SIGNAL_METRICS.tiedGroups]: mean(groups.map((g) => (g.tied ? 1 : 0))),
  };
}

const pct = (x: number): string => `${Math.round(x * 100)}%`;
const fix = (x: number): string => x.toFixed(2);

/**
 * Why a step's signal is weak, one sentence per failed check naming its setting; empty when it is
 * not. `answered` says what the extraction rate counts (a method's `signal.answered`).
 */
export function weakSignalReasons(metrics: Readonly<Record<string, number>>, limits: SignalThresholds, answered = 'an answer was found'): string[] {
  const reasons: string[] = [];
  const extraction = metrics[SIGNAL_METRICS.extractionRate];
  const lift = metrics[SIGNAL_METRICS.majorityLift];
  const withSignal = metrics[SIGNAL_METRICS.groupsWithSignal];
  if (extraction < limits.minExtraction) {
    reasons.push(`${answered} in ${pct(extraction)} of the samples (signalMinExtraction ${limits.minExtraction})`);
  }
  // Chance of 0 (no answer extracted at all, a code group with no runnable function): the
  // extraction reason says it; a ratio against zero says nothing.
  if (lift < limits.minLift && metrics[SIGNAL_METRICS.majorityRatioChance] > 0) {
    reasons.push(
      `the majority ratio is ${fix(lift)}× what chance gives (${fix(metrics['train/majority_ratio'] ?? NaN)} against ${fix(metrics[SIGNAL_METRICS.majorityRatioChance])}; signalMinLift ${limits.minLift})`,
    );
  }
  if (withSignal < limits.minGroupsWithSignal) {
    reasons.push(`${pct(withSignal)} of the prompts gave any non-zero advantage (signalMinGroupsWithSignal ${limits.minGroupsWithSignal})`);
  }
  return reasons;
}

export interface SignalWatchState {
  /** The last check was weak (an alert has fired for it). */
  weak: boolean;
  /** The numbers of the last steps checked (at most the window), oldest first. */
  recent?: Record<string, number>[];
}

/** The keys the decision reads (and the watch keeps per step). */
const DECISION_KEYS = [SIGNAL_METRICS.extractionRate, SIGNAL_METRICS.majorityLift, SIGNAL_METRICS.majorityRatioChance, SIGNAL_METRICS.groupsWithSignal, 'train/majority_ratio'];

/**
 * Decides on the mean of the last `window` steps' numbers (fewer at the start: the first step's
 * check, the pre-flight check, decides on that step alone), since a step of a few prompts is a
 * small sample; alerts once when the signal becomes weak and re-arms once it is healthy again.
 */
export class SignalWatch {
  constructor(
    private readonly limits: SignalThresholds & { window: number; answered?: string },
    public state: SignalWatchState = { weak: false },
  ) {
    if (!(Number.isInteger(limits.window) && limits.window >= 1)) throw new Error(`the signal check's window must be a whole number of steps ≥ 1, got ${limits.window}`);
  }

  onStep(step: number, metrics: Readonly<Record<string, number>>, first: boolean): Alert | null {
    const now = Object.fromEntries(DECISION_KEYS.map((k) => [k, metrics[k]]));
    const recent = [...(first ? [] : (this.state.recent ?? [])), now].slice(-this.limits.window);
    const pooled = Object.fromEntries(DECISION_KEYS.map((k) => [k, recent.reduce((s, r) => s + r[k], 0) / recent.length]));
    const reasons = weakSignalReasons(pooled, this.limits, this.limits.answered);
    const fire = reasons.length > 0 && !this.state.weak;
    this.state = { weak: reasons.length > 0, recent };
    if (!fire) return null;
    const when = first ? `Pre-flight check (step ${step}'s rollout, before any update)` : `Step ${step}${recent.length > 1 ? ` (mean of steps ${step - recent.length + 1}–${step})` : ''}`;
    return {
      kind: 'weak_signal',
      step,
      message: `${when}: weak learning signal: ${reasons.join('; ')}. The learning signal is likely noise: check the prompt preview and the answer format, or use prompts the model can answer.`,
      values: pooled,
    };
  }
}
