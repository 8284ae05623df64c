// Scoring methods: a group of samples for one prompt in, one reward per sample out.
//
// Every label-free method is a `Scorer` with this one signature. The input deliberately has no
// field for a reference answer: hidden labels live elsewhere in the loop and only feed
// diagnostics, so no scorer can read them even by mistake.
import type { ExecutionRecord } from '../code/consensus.ts';
import { type AnswerFormat, type VoteTies, majorityVote } from '../tasks/answers.ts';
import type { Judge } from './judge.ts';
import type { Teacher } from './teacher.ts';

/** One sampled response as a scorer sees it: its text and answer, and what the generator measured per token. */
export interface ScorerSample {
  text: string;
  /** The final answer extracted from `text`, or null when none was found. */
  answer: string | null;
  /** Generated tokens (for methods that look at length). */
  tokenCount: number;
  /** The generated token ids (what the per-token arrays below describe). */
  tokenIds: readonly number[];
  /** Per generated token, from the rollout policy's softmax(logits / T): the token's log-prob, ... */
  logprobs: readonly number[];
  /** ... the distribution's entropy (nats), ... */
  entropies: readonly number[];
  /** ... and its self-certainty KL(U ‖ p) = logsumexp(z) − mean(z) − log V (Intuitor). */
  selfCertainties: readonly number[];
}

/** A prompt and all the samples drawn for it (the votes). */
export interface ScorerGroup {
  prompt: string;
  samples: readonly ScorerSample[];
}

/** What a scorer may use besides the group: the run's cancellation, and the services its method asks for. */
export interface ScorerContext {
  signal?: AbortSignal;
  /** The frozen model as a judge (`judge.ts`), for a method whose definition asks for it (`services.judge`). */
  judge?: Judge;
  /** The EMA teacher (`teacher.ts`), for a method whose definition asks for it (`services.teacher`). */
  teacher?: Teacher;
  /**
   * Where each generated token's text ends in the sample's `text` (characters, from decoding the
   * tokens up to it), for a method that rewards parts of a response apart (`GroupScore.roles`).
   */
  tokenEnds?(tokenIds: readonly number[]): number[];
  /**
   * A second turn from the policy, for a method whose definition asks for it (`services.revise`):
   * each request's sample is continued by the user message, and one revision is sampled (null:
   * the conversation would not fit the run's revision length). In order of the requests.
   */
  revise?(requests: readonly ReviseRequest[]): Promise<(Revision | null)[]>;
}

/** A sample to continue with a user message (its second turn). */
export interface ReviseRequest {
  /** Its index in the group. */
  sample: number;
  message: string;
}

/** A second turn's sampled reply, with what the trainer needs of it. */
export interface Revision {
  text: string;
  /** The conversation before the reply (prompt, first reply, message), as the model read it. */
  promptIds: number[];
  tokenIds: number[];
  /** Per reply token: its log-prob under the rollout policy. */
  logprobs: number[];
}

/** A revision as scored: the loop trains it with the group-relative advantage of `reward` among the group's revisions. */
export interface ScoredRevision extends Revision {
  sample: number;
  reward: number;
}

/**
 * Parts of each response trained with advantages of their own (code-consensus: the function and
 * its tests). The loop gives each role its own group-relative advantage over the trained samples
 * that have a reward for it, times the role's weight, and puts it on that role's tokens; a token
 * of a role the sample has no reward for gets 0. `GroupScore.rewards` stays the sample's one
 * reward (records, charts, the critic under advantage gae, which ignores the roles).
 */
export interface ResponseRoles {
  /** Role names, e.g. ['solution', 'tests']. */
  names: string[];
  /** Per role: its advantage's weight. */
  weights: number[];
  /** Per role, per sample: its reward, or null where the sample wrote nothing of that role. */
  rewards: (number | null)[][];
  /** Per sample, per generated token: the index of its role. */
  tokenRoles: number[][];
}

/** One question put to the judge about a sample, and what it answered: recorded with the sample. */
export interface JudgeExchange {
  prompt: string;
  response: string;
}

export interface VoteCount {
  /** The cluster's representative answer, as first written. */
  answer: string;
  count: number;
}

export interface GroupScore {
  /** One reward per sample of the group, in order. */
  rewards: number[];
  /** False when the method gives this prompt no label: it gets no update (SRT below τ). */
  labeled: boolean;
  /** Vote methods: the answer the rewards agree with (majority vote), or null. */
  pseudoLabel?: string | null;
  /** Vote methods: votes per answer cluster, in order of first appearance. */
  voteCounts?: VoteCount[];
  /** Vote methods: winner's count / number of samples (no-answer samples count in the denominator). */
  majorityRatio?: number;
  /** Vote methods, per sample: whether its answer agrees with the pseudo-label (what a hard 0/1 reward would give). */
  agreesWithLabel?: boolean[];
  /**
   * Labels the method weighed, by name (e.g. the teacher's and the policy's majority answers):
   * its definition's `truthMetrics` say which metric measures which against the hidden answers.
   */
  labels?: Record<string, string | null>;
  /** Per sample: the method's parts of its reward (certainty, prior, factor, ...), stored with the sample. */
  details?: Record<string, number>[];
  /** Per sample: what the judge was asked about it and answered (null: not asked), stored with the sample. */
  judge?: (JudgeExchange | null)[];
  /** Method-specific numbers for logging. */
  diagnostics?: Record<string, number>;
  /** Per-role rewards over token spans, for a method whose definition declares `tokenAdvantages`. */
  roles?: ResponseRoles;
  /** Code methods: the execution matrix the rewards came from, stored with the group. */
  execution?: ExecutionRecord;
  /** Second turns to train (`ScorerContext.revise`), in the order of `execution.revisions`. */
  revisions?: ScoredRevision[];
}

/** A majority vote's score: every vote field is there. */
export type VoteScore = Required<Omit<GroupScore, 'details' | 'judge' | 'labels' | 'roles' | 'execution' | 'revisions'>>;

/** A label-free method's reward: one group in, one reward per sample out (possibly after asking a model). */
export type Scorer = (group: ScorerGroup, context: ScorerContext) => GroupScore | Promise<GroupScore>;

/** What a majority vote reads of a group: the answers. */
export interface VoteGroup {
  samples: readonly Pick<ScorerSample, 'answer'>[];
}

export interface MajorityVoteOptions {
  /** How answers are normalised before voting. */
  format?: AnswerFormat;
  /** SRT's confidence threshold τ: a group whose majority ratio is below it gets no label. 0 = off (TTRL). */
  threshold?: number;
  /** SRT's soft reward: r_i = share of the group that gave sample i's answer (0 for no answer). */
  softReward?: boolean;
  /** A tie for the most votes: no label (default) or the answer seen first. */
  ties?: VoteTies;
}

/**
 * Majority vote (TTRL, and SRT with `threshold` / `softReward`): the most frequent answer is the
 * pseudo-label; a sample earns 1 when its answer is equivalent to it. Equivalence is decided by
 * the vote's clustering, so "0.5" and "1/2" agree.
 */
export function majorityVoteScorer(options: MajorityVoteOptions = {}): (group: VoteGroup) => VoteScore {
  const threshold = options.threshold ?? 0;
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`majority vote threshold must be in [0, 1], got ${threshold}`);
  return (group) => {
    const n = group.samples.length;
    const vote = majorityVote(
      group.samples.map((s) => s.answer),
      { format: options.format, ties: options.ties },
    );
    const voteCounts = vote.clusters.map((c) => ({ answer: c.representative, count: c.count }));
    const agreesWithLabel = vote.clusterOf.map((c) => vote.labelCluster >= 0 && c === vote.labelCluster);
    // A group with no usable answer (or a tie, under ties 'no-label') has nothing to agree on, whatever the threshold.
    const labeled = vote.label !== null && vote.majorityRatio >= threshold;
    let rewards: number[];
    if (!labeled) rewards = new Array<number>(n).fill(0);
    else if (options.softReward) rewards = vote.clusterOf.map((c) => (c >= 0 ? vote.clusters[c].count / n : 0));
    else rewards = agreesWithLabel.map((a) => (a ? 1 : 0));
    return {
      rewards,
      labeled,
      pseudoLabel: labeled ? vote.label : null,
      voteCounts,
      majorityRatio: vote.majorityRatio,
      agreesWithLabel: labeled ? agreesWithLabel : new Array<boolean>(n).fill(false),
      diagnostics: {
        clusters: vote.clusters.length,
        tied: vote.tied ? 1 : 0,
        no_answer_ratio: n > 0 ? vote.clusterOf.filter((c) => c < 0).length / n : 0,
      },
    };
  };
}

/** TTRL: hard reward against the majority answer, every group labeled. */
export const ttrlScorer = (format?: AnswerFormat, ties?: VoteTies) => majorityVoteScorer({ format, ties });

/** SRT: majority vote with a confidence threshold τ and optionally the soft (frequency) reward. */
export const srtScorer = (options: { format?: AnswerFormat; threshold: number; softReward?: boolean; ties?: VoteTies }) => majorityVoteScorer(options);
