// Self-verified distillation's cascade (issue 17; METHODS.md "Self-verified distillation"): each
// candidate answer passes through stages of self-judgment in order, each stage V judge votes; a
// candidate survives a stage when its votes accept it (unanimous by default, or a strict
// majority) and is dropped at the first stage that rejects it, so no judge is asked about it
// after that stage. The survivors of each question are then deduplicated by answer and capped at
// M, so questions the model finds easy do not fill the SFT set.
//
// This module is the control flow only: the judge of a stage is a function (the real one builds
// prompts from templates and asks the frozen model, `stages.ts`; tests script it), and what is
// already known (verdicts stored before a kill) is passed in, so a resumed round asks only what
// was not yet answered. Outcomes are handed to `onOutcomes` chunk by chunk, which stores them
// before the next chunk is asked.
import { type AnswerFormat, majorityVote } from '../tasks/answers.ts';
import { isCorrect } from '../rl/metrics.ts';
import { mean } from '../rl/stats.ts';

/** The stages there are, in their default order. */
export const STAGE_IDS = ['cycle', 'factuality', 'correctness'] as const;
export type StageId = (typeof STAGE_IDS)[number];

/** How a stage's votes decide: every vote accepts (unanimous), or more than half do (majority). */
export type VoteRule = 'unanimous' | 'majority';

/** One prompt put to the model within a vote, and what it answered. */
export interface StageExchange {
  prompt: string;
  response: string;
}

/** One judge vote: accept, reject, or null when no verdict could be read (it counts as no accept). */
export interface StageVote {
  accept: boolean | null;
  /** What the vote asked and was answered, in order (e.g. the inferred question, then the judgment). */
  exchanges: StageExchange[];
}

export interface CascadeCandidate {
  /** Unique within the cascade (the stored candidate's id). */
  id: number;
  /** The question it answers (candidates of one question are deduplicated and capped together). */
  question: number;
  text: string;
  /** The extracted final answer, or null. */
  answer: string | null;
}

/** A stage's verdict on a candidate: its votes and whether they accepted it. */
export interface StageOutcome {
  candidateId: number;
  /** Position of the stage in the cascade's order. */
  stage: number;
  votes: StageVote[];
  accepted: boolean;
}

/** Asks a stage's V votes about each candidate of a batch: one list of votes per candidate, in order. */
export type StageJudge = (stage: StageId, batch: readonly CascadeCandidate[], votes: number) => Promise<StageVote[][]>;

export interface CascadeOptions {
  stages: readonly StageId[];
  /** V: judge votes per candidate and stage. */
  votes: number;
  rule: VoteRule;
  judge: StageJudge;
  /** Candidates per judge call (a batch of `chunkSize × votes` prompts). */
  chunkSize: number;
  /** Outcomes stored earlier (a resumed round): those candidates are not asked again at those stages. */
  known?: readonly StageOutcome[];
  /** Called with each chunk's outcomes before the next chunk is asked (store them here). */
  onOutcomes?: (outcomes: StageOutcome[]) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface CascadeResult {
  /** Per candidate id: the position of the stage that rejected it, or null when it survived every stage. */
  rejectedAt: Map<number, number | null>;
  /** Every outcome, known and new, in stage order. */
  outcomes: StageOutcome[];
}

/** Whether a stage's votes accept: all of them (unanimous), or more than half (majority); a vote without a verdict does not accept. */
export function stageAccepts(votes: readonly Pick<StageVote, 'accept'>[], rule: VoteRule): boolean {
  const yes = votes.filter((v) => v.accept === true).length;
  if (votes.length === 0) return false;
  return rule === 'unanimous' ? yes === votes.length : yes * 2 > votes.length;
}

/**
 * A judge's verdict from its text: the last of the yes or no markers it wrote decides (a judge
 * may quote the format before giving its own, as `Relevant: [[Y]]` after "answer [[Y]] or [[N]]");
 * null when it wrote neither.
 */
export function parseVerdict(text: string, yes: string, no: string): boolean | null {
  const y = text.lastIndexOf(yes);
  const n = text.lastIndexOf(no);
  if (y < 0 && n < 0) return null;
  return y > n;
}

/** The cascade over `candidates`: stage by stage, only the survivors of the stages before are asked. */
export async function runCascade(candidates: readonly CascadeCandidate[], options: CascadeOptions): Promise<CascadeResult> {
  const { stages, votes, rule, judge, chunkSize } = options;
  if (stages.length === 0) throw new Error('the cascade needs at least one stage');
  if (!(Number.isInteger(votes) && votes >= 1)) throw new Error(`judge votes must be a whole number ≥ 1, got ${votes}`);
  if (!(Number.isInteger(chunkSize) && chunkSize >= 1)) throw new Error(`the chunk size must be a whole number ≥ 1, got ${chunkSize}`);
  const ids = new Set(candidates.map((c) => c.id));
  if (ids.size !== candidates.length) throw new Error('cascade candidates must have distinct ids');
  const known = new Map<string, StageOutcome>();
  for (const o of options.known ?? []) {
    if (!ids.has(o.candidateId)) throw new Error(`a stored verdict names candidate ${o.candidateId}, which is not in this round`);
    if (o.stage < 0 || o.stage >= stages.length) throw new Error(`a stored verdict names stage ${o.stage + 1}; the cascade has ${stages.length}`);
    known.set(`${o.candidateId}/${o.stage}`, o);
  }
  const rejectedAt = new Map<number, number | null>(candidates.map((c) => [c.id, null]));
  const outcomes: StageOutcome[] = [];
  for (let s = 0; s < stages.length; s++) {
    const alive = candidates.filter((c) => rejectedAt.get(c.id) === null);
    const stageOutcomes: StageOutcome[] = [];
    const ask: CascadeCandidate[] = [];
    for (const c of alive) {
      const k = known.get(`${c.id}/${s}`);
      if (k) stageOutcomes.push(k);
      else ask.push(c);
    }
    for (let start = 0; start < ask.length; start += chunkSize) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      const batch = ask.slice(start, start + chunkSize);
      const answered = await judge(stages[s], batch, votes);
      if (answered.length !== batch.length) throw new Error(`the ${stages[s]} stage answered for ${answered.length} of ${batch.length} candidates`);
      const fresh = batch.map((c, i): StageOutcome => {
        if (answered[i].length !== votes) throw new Error(`the ${stages[s]} stage gave ${answered[i].length} votes for candidate ${c.id}, not ${votes}`);
        return { candidateId: c.id, stage: s, votes: answered[i], accepted: stageAccepts(answered[i], rule) };
      });
      await options.onOutcomes?.(fresh);
      stageOutcomes.push(...fresh);
    }
    for (const o of stageOutcomes) if (!o.accepted) rejectedAt.set(o.candidateId, s);
    // In the candidates' order, whichever were known.
    const order = new Map(candidates.map((c, i) => [c.id, i]));
    outcomes.push(...stageOutcomes.sort((a, b) => order.get(a.candidateId)! - order.get(b.candidateId)!));
  }
  return { rejectedAt, outcomes };
}

/** Why a survivor of the cascade is not in the SFT set. */
export type Dropped = 'duplicate' | 'cap';

/**
 * The SFT set from the survivors: per question, one candidate per distinct answer (equivalence as
 * the votes count it; a candidate without an answer is its own text), the answers that most
 * survivors gave first (ties: the one seen first), at most `cap` of them. Returns the kept ids in
 * the candidates' order and why each other survivor was dropped.
 */
export function selectSurvivors(candidates: readonly CascadeCandidate[], survived: ReadonlySet<number>, options: { cap: number; format: AnswerFormat }): { kept: number[]; dropped: Map<number, Dropped> } {
  if (!(Number.isInteger(options.cap) && options.cap >= 1)) throw new Error(`the cap per question must be a whole number ≥ 1, got ${options.cap}`);
  const byQuestion = new Map<number, CascadeCandidate[]>();
  for (const c of candidates) if (survived.has(c.id)) byQuestion.set(c.question, [...(byQuestion.get(c.question) ?? []), c]);
  const kept = new Set<number>();
  const dropped = new Map<number, Dropped>();
  for (const group of byQuestion.values()) {
    const vote = majorityVote(
      group.map((c) => c.answer),
      { format: options.format },
    );
    // Answer clusters, then each answerless candidate as its own (by its text).
    const clusters: { members: CascadeCandidate[]; first: number }[] = vote.clusters.map((cl) => ({ members: cl.members.map((i) => group[i]), first: cl.members[0] }));
    const byText = new Map<string, { members: CascadeCandidate[]; first: number }>();
    group.forEach((c, i) => {
      if (vote.clusterOf[i] >= 0) return;
      const key = c.text.trim();
      const cl = byText.get(key) ?? { members: [], first: i };
      cl.members.push(c);
      byText.set(key, cl);
    });
    clusters.push(...byText.values());
    clusters.sort((a, b) => b.members.length - a.members.length || a.first - b.first);
    clusters.forEach((cl, rank) => {
      cl.members.forEach((c, j) => {
        if (rank >= options.cap) dropped.set(c.id, 'cap');
        else if (j > 0) dropped.set(c.id, 'duplicate');
        else kept.add(c.id);
      });
    });
  }
  return { kept: candidates.filter((c) => kept.has(c.id)).map((c) => c.id), dropped };
}

/** Metric keys of a stage: survivors after it, and their precision and recall against hidden answers. */
export const stageMetric = (stage: StageId, what: 'survivors' | 'precision' | 'recall') => `svd/${stage}/${what}`;

export const SVD_METRICS = {
  candidates: 'svd/candidates',
  rawAccuracy: 'svd/raw_accuracy',
  sftSet: 'svd/sft_set',
  sftPrecision: 'svd/sft_precision',
  judgeAgreement: 'svd/judge_agreement',
  reviewRejected: 'svd/review_rejected',
} as const;

/**
 * A round's cascade in numbers. Per stage (cumulative, in the cascade's order): how many
 * candidates survived it and every stage before, the share of those that are right (precision),
 * and the share of all right candidates among them (recall). Where candidates have no hidden
 * answer (`correct` null) precision and recall leave them out, and are absent without any.
 * Judge agreement: over every stage verdict, the share of its votes that agree with the verdict
 * the votes' majority gives (1 when every vote agrees).
 */
export function cascadeMetrics(
  candidates: readonly { id: number; correct: boolean | null }[],
  stages: readonly StageId[],
  rejectedAt: ReadonlyMap<number, number | null>,
  outcomes: readonly StageOutcome[],
  sft: readonly number[],
): Record<string, number> {
  const m: Record<string, number> = { [SVD_METRICS.candidates]: candidates.length, [SVD_METRICS.sftSet]: sft.length };
  const labeled = candidates.filter((c) => c.correct !== null);
  const right = labeled.filter((c) => c.correct).length;
  if (labeled.length > 0) m[SVD_METRICS.rawAccuracy] = right / labeled.length;
  stages.forEach((stage, s) => {
    const through = candidates.filter((c) => {
      const r = rejectedAt.get(c.id);
      return r === null || (r !== undefined && r > s);
    });
    m[stageMetric(stage, 'survivors')] = through.length;
    const known = through.filter((c) => c.correct !== null);
    if (known.length > 0) m[stageMetric(stage, 'precision')] = known.filter((c) => c.correct).length / known.length;
    if (right > 0) m[stageMetric(stage, 'recall')] = known.filter((c) => c.correct).length / right;
  });
  const inSft = new Set(sft);
  const sftKnown = candidates.filter((c) => inSft.has(c.id) && c.correct !== null);
  if (sftKnown.length > 0) m[SVD_METRICS.sftPrecision] = sftKnown.filter((c) => c.correct).length / sftKnown.length;
  if (outcomes.length > 0) {
    m[SVD_METRICS.judgeAgreement] = mean(
      outcomes.map((o) => {
        const yes = o.votes.filter((v) => v.accept === true).length;
        return Math.max(yes, o.votes.length - yes) / o.votes.length;
      }),
    );
  }
  return m;
}

/** Whether a candidate's answer is right, where its question has a hidden answer (measurement only). */
export function candidateCorrect(answer: string | null, truth: string | null, format: AnswerFormat): boolean | null {
  return truth === null ? null : isCorrect(answer, truth, format);
}
