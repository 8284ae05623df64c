// Training steps: everything one step produced (metrics, rollouts with their samples,
// checkpoints, alerts) written in one transaction, and the queries that read steps back.
//
// A step's row in `steps` commits together with its data and every row of the step references
// it, so after a crash a step is either wholly there or wholly absent, and a resumed run that
// tries to write a step again is refused instead of duplicating it.
import { type StepEpisode, insertEpisode } from './agent.ts';
import { blobToFloat32, float32ToBlob } from './blobs.ts';
import { DatabaseError, type ExperimentDb } from './database.ts';

/** One cell of a code group's execution matrix. */
export type ExecutionOutcome = 'pass' | 'fail' | 'error' | 'timeout';

/** What a code group's programs did (migration 13, `rollouts.execution`): the task view's matrix. */
export interface StepExecution {
  language: 'python' | 'javascript';
  /** Per sample: its function as run (null: no code block). */
  solutions: (string | null)[];
  /** The group's tests, pooled, and the samples that wrote each. */
  tests: string[];
  authors: number[][];
  /** `matrix[s][t]`: sample s's function against test t. */
  matrix: ExecutionOutcome[][];
  /** Consensus sets by score, highest first, and the top one's index (null: none). */
  sets: { solutions: number[]; tests: number[]; score: number }[];
  top: number | null;
  /** Per test: its credit. */
  testRewards: number[];
  /** Self-debugging turns: the sample revised, its message, revision, revised function's row, reward, advantage and hidden outcome. */
  revisions?: { sample: number; feedback: string; text: string; solution: string | null; row: ExecutionOutcome[]; reward: number; advantage?: number; hiddenResult?: string }[];
}

export interface StepSample {
  /** Position in its group (default: its index in the array). */
  idx?: number;
  text: string;
  extractedAnswer?: string | null;
  reward?: number | null;
  advantage?: number | null;
  usedForTraining?: boolean;
  logprobs?: Float32Array | readonly number[] | null;
  entropies?: Float32Array | readonly number[] | null;
  /** The generated token ids the per-token arrays describe. */
  tokenIds?: Int32Array | readonly number[] | null;
  /** Per generated token: the self-certainty of the sampling distribution. */
  selfCertainties?: Float32Array | readonly number[] | null;
  /** The method's parts of the reward (certainty, prior, ...). */
  details?: Record<string, number> | null;
  /** What the method's judge was asked about this sample, and answered. */
  judge?: JudgeExchange | null;
  /** An agent run's sample is an episode: stored turn by turn, with its skills (`agent.ts`). */
  episode?: StepEpisode | null;
  /** Its outcome against the hidden answer, where the method checks one (code: pass, fail, error, timeout). */
  hiddenResult?: string | null;
}

/** A question put to a judge model about a sample, and its answer. */
export interface JudgeExchange {
  prompt: string;
  response: string;
}

export interface StepRollout {
  /** dataset_items.idx of the prompt in the run's dataset, where it has one. */
  itemIdx?: number | null;
  prompt: string;
  /** The majority answer; null where the group got no label (e.g. below a confidence threshold). */
  pseudoLabel?: string | null;
  voteCounts?: Record<string, number>;
  majorityRatio?: number | null;
  /** Pseudo-label against the hidden label; null where the item has none. */
  labelCorrect?: boolean | null;
  /** Whether the group was trained on with a label (default: pseudoLabel is not null). */
  labeled?: boolean;
  /** Where the pseudo-label came from: the model's vote (default) or a person's review. */
  labelSource?: LabelSource;
  samples?: readonly StepSample[];
  /** A code method's execution matrix. */
  execution?: StepExecution | null;
}

export type LabelSource = 'vote' | 'review';

export type CheckpointKind = 'best' | 'last';

export interface StepCheckpoint {
  kind: CheckpointKind;
  path: string;
  metric?: number | null;
}

export interface StepAlert {
  kind: string;
  message: string;
}

export interface StepRecord {
  metrics?: Record<string, number>;
  /** Prompt plus completion tokens of every sample of the step's rollout (none for a validation-only step). */
  tokens?: number | null;
  rollouts?: readonly StepRollout[];
  checkpoint?: StepCheckpoint;
  /** More than one checkpoint (e.g. a step that is both the best and the last). */
  checkpoints?: readonly StepCheckpoint[];
  alerts?: readonly StepAlert[];
  /** The run's best validation value so far, reached at this step (step 0, the base model, included). */
  best?: number;
  /** When the step finished (ISO 8601), where that was not now: a step imported from another trainer. */
  recordedAt?: string;
}

/** Token ids as an int32 little-endian BLOB (copies: the view may be of a larger buffer). */
function int32ToBlob(values: Int32Array | readonly number[]): Buffer {
  const arr = values instanceof Int32Array ? values : Int32Array.from(values);
  return Buffer.from(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength));
}

function blobToInt32(blob: Buffer | null): Int32Array | null {
  if (blob == null) return null;
  if (blob.byteLength % 4 !== 0) throw new Error(`int32 blob of ${blob.byteLength} bytes is not a multiple of 4`);
  const out = new Int32Array(blob.byteLength / 4);
  new Uint8Array(out.buffer).set(blob);
  return out;
}

const bool = (b: boolean | null | undefined): number | null => (b == null ? null : b ? 1 : 0);
// SQLite has no NaN (it would store NULL anyway); make that explicit in both directions.
const real = (x: number | null | undefined): number | null => (x == null || Number.isNaN(x) ? null : x);

/**
 * Records step `step` of run `runId` in one transaction. Throws STEP_EXISTS if that step is
 * already recorded and NOT_FOUND if the run is not; any error leaves nothing of the step.
 */
export function recordStep(db: ExperimentDb, runId: number, step: number, rec: StepRecord): void {
  if (!Number.isInteger(step) || step < 0) throw new DatabaseError('INVALID', `Step must be an integer >= 0, got ${step}.`);
  db.write(`step ${step} of run ${runId}`, () => {
    if (!db.stmt('SELECT 1 FROM runs WHERE id = ?').get(runId)) throw new DatabaseError('NOT_FOUND', `No run ${runId}.`);
    if (db.stmt('SELECT 1 FROM steps WHERE run_id = ? AND step = ?').get(runId, step)) {
      throw new DatabaseError('STEP_EXISTS', `Step ${step} of run ${runId} is already recorded.`);
    }
    db.stmt("INSERT INTO steps (run_id, step, tokens, created_at) VALUES (?, ?, ?, coalesce(?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))").run(runId, step, rec.tokens ?? null, rec.recordedAt ?? null);

    const metric = db.stmt('INSERT INTO metrics (run_id, step, key, value) VALUES (?, ?, ?, ?)');
    for (const [key, value] of Object.entries(rec.metrics ?? {})) metric.run(runId, step, key, real(value));

    const rollout = db.stmt(
      `INSERT INTO rollouts (run_id, step, group_idx, item_idx, prompt, pseudo_label, vote_counts, majority_ratio,
         label_correct, labeled, label_source, execution) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const sample = db.stmt(
      `INSERT INTO samples (rollout_id, idx, text, extracted_answer, reward, advantage, used_for_training, logprobs,
         entropies, token_ids, self_certainties, details, judge, hidden_result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    (rec.rollouts ?? []).forEach((r, g) => {
      const pseudo = r.pseudoLabel ?? null;
      const { lastInsertRowid } = rollout.run(
        runId,
        step,
        g,
        r.itemIdx ?? null,
        r.prompt,
        pseudo,
        JSON.stringify(r.voteCounts ?? {}),
        real(r.majorityRatio),
        bool(r.labelCorrect),
        bool(r.labeled ?? pseudo !== null),
        r.labelSource ?? 'vote',
        r.execution ? JSON.stringify(r.execution) : null,
      );
      (r.samples ?? []).forEach((s, i) => {
        const inserted = sample.run(
          lastInsertRowid,
          s.idx ?? i,
          s.text,
          s.extractedAnswer ?? null,
          real(s.reward),
          real(s.advantage),
          bool(s.usedForTraining ?? false),
          s.logprobs ? float32ToBlob(s.logprobs) : null,
          s.entropies ? float32ToBlob(s.entropies) : null,
          s.tokenIds ? int32ToBlob(s.tokenIds) : null,
          s.selfCertainties ? float32ToBlob(s.selfCertainties) : null,
          s.details ? JSON.stringify(s.details) : null,
          s.judge ? JSON.stringify({ prompt: s.judge.prompt, response: s.judge.response }) : null,
          s.hiddenResult ?? null,
        );
        if (s.episode) insertEpisode(db, runId, step, inserted.lastInsertRowid, s.episode);
      });
    });

    const checkpoints = [...(rec.checkpoint ? [rec.checkpoint] : []), ...(rec.checkpoints ?? [])];
    const ckpt = db.stmt('INSERT INTO checkpoints (run_id, step, kind, path, metric) VALUES (?, ?, ?, ?, ?)');
    for (const c of checkpoints) ckpt.run(runId, step, c.kind, c.path, real(c.metric));
    // The run's best is its best validation, whether or not a checkpoint holds it (step 0 is the
    // base model: the view and the database must agree on it). A 'best' checkpoint is one.
    const best = rec.best ?? checkpoints.find((c) => c.kind === 'best')?.metric;
    if (best !== undefined && best !== null) db.stmt('UPDATE runs SET best_metric = ?, best_step = ? WHERE id = ?').run(real(best), step, runId);

    const alert = db.stmt('INSERT INTO alerts (run_id, step, kind, message) VALUES (?, ?, ?, ?)');
    for (const a of rec.alerts ?? []) alert.run(runId, step, a.kind, a.message);

    db.stmt('UPDATE runs SET current_step = max(coalesce(current_step, -1), ?) WHERE id = ?').run(step, runId);
  });
}

/** The highest recorded step of a run, or null when it has none. */
export function lastCompletedStep(db: ExperimentDb, runId: number): number | null {
  const r = db.stmt<{ s: number | null }>('SELECT max(step) AS s FROM steps WHERE run_id = ?').get(runId);
  return r?.s ?? null;
}

/** Whether step `step` of a run is recorded. */
export function hasStep(db: ExperimentDb, runId: number, step: number): boolean {
  return db.stmt('SELECT 1 FROM steps WHERE run_id = ? AND step = ?').get(runId, step) !== undefined;
}

/** The recorded steps of a run, ascending. */
export function listSteps(db: ExperimentDb, runId: number): number[] {
  return db
    .stmt<{ step: number }>('SELECT step FROM steps WHERE run_id = ? ORDER BY step')
    .all(runId)
    .map((r) => r.step);
}

export interface StepTime {
  step: number;
  /** When the step was recorded (ISO 8601, UTC, milliseconds). */
  recordedAt: string;
  /** Tokens the step's rollout processed (prompts and completions); null where not recorded. */
  tokens: number | null;
}

/** When each step of a run was recorded and how many tokens it processed, ascending (after `afterStep` if given). */
export function stepTimeline(db: ExperimentDb, runId: number, afterStep = -1): StepTime[] {
  return db
    .stmt<StepTime>('SELECT step, created_at AS recordedAt, tokens FROM steps WHERE run_id = ? AND step > ? ORDER BY step')
    .all(runId, afterStep);
}

/** When a run's latest step was recorded (ISO 8601, UTC), or null before its first. */
export function latestStepTime(db: ExperimentDb, runId: number): string | null {
  return db.stmt<{ at: string | null }>('SELECT max(created_at) AS at FROM steps WHERE run_id = ?').get(runId)?.at ?? null;
}

/**
 * Deletes every step of a run after `step` (with all their rows) in one transaction. Resume
 * uses it when the last checkpoint is older than the last recorded step: the steps after the
 * checkpoint will be trained again, so their records must go first. The run's best is recomputed
 * from the validation metric `bestKey` (e.g. `val/maj@16`) of the steps that remain.
 */
export function deleteStepsAfter(db: ExperimentDb, runId: number, step: number, bestKey: string): number {
  return db.write(`rolling run ${runId} back to step ${step}`, () => {
    const n = db.stmt('DELETE FROM steps WHERE run_id = ? AND step > ?').run(runId, step).changes;
    db.stmt('DELETE FROM alerts WHERE run_id = ? AND step > ?').run(runId, step);
    // Progress and best are recomputed from what remains (the best: the first step that reached the highest value).
    const best = `(SELECT %s FROM metrics WHERE run_id = runs.id AND key = @key AND value IS NOT NULL ORDER BY value DESC, step ASC LIMIT 1)`;
    db.stmt(
      `UPDATE runs SET
         current_step = (SELECT max(step) FROM steps WHERE run_id = runs.id),
         best_step = ${best.replace('%s', 'step')},
         best_metric = ${best.replace('%s', 'value')}
       WHERE id = @id`,
    ).run({ id: runId, key: bestKey });
    return n;
  });
}

// --- metrics -----------------------------------------------------------------------------

export interface MetricPoint {
  step: number;
  key: string;
  value: number;
}

export interface MetricQuery {
  keys?: readonly string[];
  fromStep?: number;
  toStep?: number;
}

/** A run's metrics in long format, ordered by key then step; NULL values come back as NaN. */
export function queryMetrics(db: ExperimentDb, runId: number, q: MetricQuery = {}): MetricPoint[] {
  const where = ['run_id = ?'];
  const args: unknown[] = [runId];
  if (q.keys) {
    if (q.keys.length === 0) return [];
    where.push(`key IN (${q.keys.map(() => '?').join(', ')})`);
    args.push(...q.keys);
  }
  if (q.fromStep !== undefined) {
    where.push('step >= ?');
    args.push(q.fromStep);
  }
  if (q.toStep !== undefined) {
    where.push('step <= ?');
    args.push(q.toStep);
  }
  return db
    .stmt<{ step: number; key: string; value: number | null }>(
      `SELECT step, key, value FROM metrics WHERE ${where.join(' AND ')} ORDER BY key, step`,
    )
    .all(...args)
    .map((r) => ({ step: r.step, key: r.key, value: r.value ?? NaN }));
}

/** The metric keys a run has recorded. */
export function metricKeys(db: ExperimentDb, runId: number): string[] {
  return db
    .stmt<{ key: string }>('SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key')
    .all(runId)
    .map((r) => r.key);
}

// --- rollouts, samples, checkpoints, alerts ----------------------------------------------

export interface Rollout {
  id: number;
  runId: number;
  step: number;
  groupIdx: number;
  itemIdx: number | null;
  prompt: string;
  pseudoLabel: string | null;
  voteCounts: Record<string, number>;
  majorityRatio: number | null;
  labelCorrect: boolean | null;
  labeled: boolean;
  labelSource: LabelSource;
}

export interface Sample {
  id: number;
  rolloutId: number;
  idx: number;
  text: string;
  extractedAnswer: string | null;
  reward: number | null;
  advantage: number | null;
  usedForTraining: boolean;
  logprobs: Float32Array | null;
  entropies: Float32Array | null;
  /** Null for samples recorded before token ids were stored. */
  tokenIds: Int32Array | null;
  /** Null for samples recorded before self-certainty was stored. */
  selfCertainties: Float32Array | null;
  /** The method's parts of the reward; null where it gave none. */
  details: Record<string, number> | null;
  /** What the method's judge was asked about the sample and answered; null where none was asked. */
  judge: JudgeExchange | null;
  /** Its outcome against the hidden answer where the method checks one; null otherwise. */
  hiddenResult: string | null;
}

export interface RolloutRow {
  id: number;
  run_id: number;
  step: number;
  group_idx: number;
  item_idx: number | null;
  prompt: string;
  pseudo_label: string | null;
  vote_counts: string;
  majority_ratio: number | null;
  label_correct: number | null;
  labeled: number;
  label_source: LabelSource;
}

interface SampleRow {
  id: number;
  rollout_id: number;
  idx: number;
  text: string;
  extracted_answer: string | null;
  reward: number | null;
  advantage: number | null;
  used_for_training: number;
  logprobs: Buffer | null;
  entropies: Buffer | null;
  token_ids: Buffer | null;
  self_certainties: Buffer | null;
  details: string | null;
  judge: string | null;
  hidden_result: string | null;
}

export const toRollout = (r: RolloutRow): Rollout => ({
  id: r.id,
  runId: r.run_id,
  step: r.step,
  groupIdx: r.group_idx,
  itemIdx: r.item_idx,
  prompt: r.prompt,
  pseudoLabel: r.pseudo_label,
  voteCounts: JSON.parse(r.vote_counts) as Record<string, number>,
  majorityRatio: r.majority_ratio,
  labelCorrect: r.label_correct == null ? null : r.label_correct === 1,
  labeled: r.labeled === 1,
  labelSource: r.label_source,
});

/** A code group's execution matrix (read apart: the review queue lists groups without it); null for other methods' groups. */
export function executionOfRollout(db: ExperimentDb, rolloutId: number): StepExecution | null {
  const r = db.stmt<{ execution: string | null }>('SELECT execution FROM rollouts WHERE id = ?').get(rolloutId);
  return r?.execution == null ? null : (JSON.parse(r.execution) as StepExecution);
}

const toSample = (r: SampleRow): Sample => ({
  id: r.id,
  rolloutId: r.rollout_id,
  idx: r.idx,
  text: r.text,
  extractedAnswer: r.extracted_answer,
  reward: r.reward,
  advantage: r.advantage,
  usedForTraining: r.used_for_training === 1,
  logprobs: blobToFloat32(r.logprobs),
  entropies: blobToFloat32(r.entropies),
  tokenIds: blobToInt32(r.token_ids),
  selfCertainties: blobToFloat32(r.self_certainties),
  details: r.details === null ? null : (JSON.parse(r.details) as Record<string, number>),
  judge: r.judge === null ? null : (JSON.parse(r.judge) as JudgeExchange),
  hiddenResult: r.hidden_result,
});

/** The prompt groups of one step, in group order (without their samples). */
export function rolloutsAtStep(db: ExperimentDb, runId: number, step: number): Rollout[] {
  return db
    .stmt<RolloutRow>('SELECT * FROM rollouts WHERE run_id = ? AND step = ? ORDER BY group_idx')
    .all(runId, step)
    .map(toRollout);
}

export function getRollout(db: ExperimentDb, id: number): Rollout | undefined {
  const r = db.stmt<RolloutRow>('SELECT * FROM rollouts WHERE id = ?').get(id);
  return r && toRollout(r);
}

/** The extracted answers of one prompt group's samples, in order (no per-token arrays). */
export function answersOfRollout(db: ExperimentDb, rolloutId: number): (string | null)[] {
  return db
    .stmt<{ extracted_answer: string | null }>('SELECT extracted_answer FROM samples WHERE rollout_id = ? ORDER BY idx')
    .all(rolloutId)
    .map((r) => r.extracted_answer);
}

/** The samples of one prompt group, in order, with their per-token arrays. */
export function samplesOfRollout(db: ExperimentDb, rolloutId: number): Sample[] {
  return db
    .stmt<SampleRow>('SELECT * FROM samples WHERE rollout_id = ? ORDER BY idx')
    .all(rolloutId)
    .map(toSample);
}

export interface Checkpoint {
  id: number;
  runId: number;
  step: number;
  kind: CheckpointKind;
  path: string;
  metric: number | null;
  createdAt: string;
}

interface CheckpointRow {
  id: number;
  run_id: number;
  step: number;
  kind: CheckpointKind;
  path: string;
  metric: number | null;
  created_at: string;
}

const toCheckpoint = (r: CheckpointRow): Checkpoint => ({
  id: r.id,
  runId: r.run_id,
  step: r.step,
  kind: r.kind,
  path: r.path,
  metric: r.metric,
  createdAt: r.created_at,
});

export function listCheckpoints(db: ExperimentDb, runId: number, kind?: CheckpointKind): Checkpoint[] {
  const rows = kind
    ? db.stmt<CheckpointRow>('SELECT * FROM checkpoints WHERE run_id = ? AND kind = ? ORDER BY step').all(runId, kind)
    : db.stmt<CheckpointRow>('SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step, kind').all(runId);
  return rows.map(toCheckpoint);
}

/** The newest checkpoint of a kind: 'last' is where a resume starts. */
export function latestCheckpoint(db: ExperimentDb, runId: number, kind: CheckpointKind): Checkpoint | undefined {
  const r = db
    .stmt<CheckpointRow>('SELECT * FROM checkpoints WHERE run_id = ? AND kind = ? ORDER BY step DESC, id DESC LIMIT 1')
    .get(runId, kind);
  return r && toCheckpoint(r);
}

export interface Alert {
  id: number;
  runId: number;
  step: number | null;
  kind: string;
  message: string;
  createdAt: string;
}

/** Records an alert that belongs to no step (one found while recording a step goes in recordStep). */
export function addAlert(db: ExperimentDb, runId: number, kind: string, message: string): void {
  db.write(`alert for run ${runId}`, () => {
    db.stmt('INSERT INTO alerts (run_id, step, kind, message) VALUES (?, NULL, ?, ?)').run(runId, kind, message);
  });
}

export function listAlerts(db: ExperimentDb, runId: number): Alert[] {
  return db
    .stmt<{ id: number; run_id: number; step: number | null; kind: string; message: string; created_at: string }>(
      'SELECT * FROM alerts WHERE run_id = ? ORDER BY id',
    )
    .all(runId)
    .map((r) => ({ id: r.id, runId: r.run_id, step: r.step, kind: r.kind, message: r.message, createdAt: r.created_at }));
}

export interface StepDetail {
  step: number;
  metrics: Record<string, number>;
  rollouts: (Rollout & { samples: Sample[] })[];
  checkpoints: Checkpoint[];
  alerts: Alert[];
}

/** Everything recorded for one step (the step view), or undefined if it was never recorded. */
export function getStep(db: ExperimentDb, runId: number, step: number): StepDetail | undefined {
  return db.read(`reading step ${step} of run ${runId}`, () => {
    if (!db.stmt('SELECT 1 FROM steps WHERE run_id = ? AND step = ?').get(runId, step)) return undefined;
    const metrics: Record<string, number> = {};
    for (const m of queryMetrics(db, runId, { fromStep: step, toStep: step })) metrics[m.key] = m.value;
    return {
      step,
      metrics,
      rollouts: rolloutsAtStep(db, runId, step).map((r) => ({ ...r, samples: samplesOfRollout(db, r.id) })),
      checkpoints: listCheckpoints(db, runId).filter((c) => c.step === step),
      alerts: listAlerts(db, runId).filter((a) => a.step === step),
    };
  });
}
