// Agent runs (issue 18): each episode (a sample of an agent run) turn by turn, and each run's
// skill library. Written inside a step's transaction by recordStep; read back to open an episode
// and to list, search, edit and delete skills.
import { blobToFloat32, float32ToBlob } from './blobs.ts';
import { DatabaseError, type ExperimentDb } from './database.ts';

export type SkillKind = 'workflow' | 'avoidance' | 'step';

/** An episode as the step record carries it (the engine's EpisodeRecord, structurally). */
export interface StepEpisode {
  task: { env: string; difficulty: string; seed: number };
  goal: string;
  success: boolean;
  contextFull: boolean;
  turns: readonly {
    prompt: string;
    reply: string;
    action: string;
    formatValid: boolean;
    observation: string;
    reward: number;
    done: boolean;
    /** Index into `skills`. */
    skill: number | null;
    tokenIds: Int32Array | null;
    delta: Float32Array | null;
  }[];
  skills: readonly { kind: SkillKind; text: string; turn: number | null; uses: number }[];
  analysisError: { reason: string; raw: string } | null;
}

function int32ToBlob(values: Int32Array): Buffer {
  return Buffer.from(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

/** Writes an episode's row, skills and turns; called inside recordStep's transaction. */
export function insertEpisode(db: ExperimentDb, runId: number, step: number, sampleId: number | bigint, e: StepEpisode): void {
  db.stmt('INSERT INTO episodes (sample_id, env, difficulty, task_seed, goal, success, context_full, analysis_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
    sampleId,
    e.task.env,
    e.task.difficulty,
    e.task.seed,
    e.goal,
    e.success ? 1 : 0,
    e.contextFull ? 1 : 0,
    e.analysisError ? JSON.stringify(e.analysisError) : null,
  );
  const skill = db.stmt('INSERT INTO skills (run_id, step, kind, text, source_sample_id, source_turn, task, use_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const ids = e.skills.map((s) => skill.run(runId, step, s.kind, s.text, sampleId, s.turn, e.goal, s.uses).lastInsertRowid);
  const turn = db.stmt(
    'INSERT INTO episode_turns (sample_id, turn, prompt, reply, action, format_valid, observation, reward, done, skill_id, token_ids, delta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  e.turns.forEach((t, i) =>
    turn.run(
      sampleId,
      i + 1,
      t.prompt,
      t.reply,
      t.action,
      t.formatValid ? 1 : 0,
      t.observation,
      t.reward,
      t.done ? 1 : 0,
      t.skill === null ? null : ids[t.skill],
      t.tokenIds ? int32ToBlob(t.tokenIds) : null,
      t.delta ? float32ToBlob(t.delta) : null,
    ),
  );
}

export interface Skill {
  id: number;
  runId: number;
  step: number;
  kind: SkillKind;
  text: string;
  /** The episode (sample id) it was analysed from; null when that episode is gone. */
  sampleId: number | null;
  /** The turn a step skill is for (1-based). */
  turn: number | null;
  task: string;
  useCount: number;
  editedByPerson: boolean;
  createdAt: string;
  updatedAt: string | null;
}

interface SkillRow {
  id: number;
  run_id: number;
  step: number;
  kind: SkillKind;
  text: string;
  source_sample_id: number | null;
  source_turn: number | null;
  task: string;
  use_count: number;
  edited_by_person: number;
  created_at: string;
  updated_at: string | null;
}

const skillOf = (r: SkillRow): Skill => ({
  id: r.id,
  runId: r.run_id,
  step: r.step,
  kind: r.kind,
  text: r.text,
  sampleId: r.source_sample_id,
  turn: r.source_turn,
  task: r.task,
  useCount: r.use_count,
  editedByPerson: r.edited_by_person === 1,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface SkillQuery {
  /** Words every listed skill's text or task contains (case-insensitive). */
  query?: string;
  kind?: SkillKind;
  limit?: number;
  offset?: number;
}

/** A run's skills, newest first, filtered by words in their text or task; with the count matched. */
export function listSkills(db: ExperimentDb, runId: number, q: SkillQuery = {}): { skills: Skill[]; total: number } {
  const where = ['run_id = ?'];
  const args: unknown[] = [runId];
  for (const word of (q.query ?? '').trim().split(/\s+/).filter(Boolean)) {
    // LIKE with the wildcards of the word escaped: a person's search is literal text.
    where.push("(text LIKE ? ESCAPE '\\' OR task LIKE ? ESCAPE '\\')");
    const pattern = `%${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    args.push(pattern, pattern);
  }
  if (q.kind) {
    where.push('kind = ?');
    args.push(q.kind);
  }
  const sql = `FROM skills WHERE ${where.join(' AND ')}`;
  const total = db.stmt<{ n: number }>(`SELECT count(*) AS n ${sql}`).get(...args)!.n;
  const rows = db.stmt<SkillRow>(`SELECT * ${sql} ORDER BY step DESC, id DESC LIMIT ? OFFSET ?`).all(...args, q.limit ?? 100, q.offset ?? 0);
  return { skills: rows.map(skillOf), total };
}

export function getSkill(db: ExperimentDb, id: number): Skill | undefined {
  const r = db.stmt<SkillRow>('SELECT * FROM skills WHERE id = ?').get(id);
  return r ? skillOf(r) : undefined;
}

/** A person's new text for a skill: marked as theirs from then on. */
export function editSkill(db: ExperimentDb, id: number, text: string): Skill {
  return db.write(`editing skill ${id}`, () => {
    const r = db.stmt("UPDATE skills SET text = ?, edited_by_person = 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?").run(text, id);
    if (r.changes === 0) throw new DatabaseError('NOT_FOUND', `No skill ${id}.`);
    return getSkill(db, id)!;
  });
}

/** Removes a skill; the turns it taught keep their Δ and lose the link. */
export function deleteSkill(db: ExperimentDb, id: number): void {
  db.write(`deleting skill ${id}`, () => {
    if (db.stmt('DELETE FROM skills WHERE id = ?').run(id).changes === 0) throw new DatabaseError('NOT_FOUND', `No skill ${id}.`);
  });
}

export interface EpisodeTurnView {
  turn: number;
  prompt: string;
  reply: string;
  action: string;
  formatValid: boolean;
  observation: string;
  reward: number | null;
  done: boolean;
  /** The skill that taught the reply, if one did and it still exists. */
  skillId: number | null;
  /** The reply's tokens (decoded pieces are the caller's) and Δ per token, where a skill taught it. */
  tokenIds: number[] | null;
  delta: number[] | null;
}

export interface EpisodeView {
  sampleId: number;
  runId: number;
  step: number;
  /** The episode's position in its group (the sample's idx) and the group's position in the step. */
  group: number;
  idx: number;
  env: string;
  difficulty: string;
  taskSeed: number;
  goal: string;
  success: boolean;
  reward: number | null;
  advantage: number | null;
  contextFull: boolean;
  analysisError: { reason: string; raw: string } | null;
  turns: EpisodeTurnView[];
  skills: Skill[];
}

/** An episode of an agent run, turn by turn with its skills; undefined when the sample is not an episode. */
export function getEpisode(db: ExperimentDb, sampleId: number): EpisodeView | undefined {
  const e = db
    .stmt<{
      sample_id: number;
      run_id: number;
      step: number;
      group_idx: number;
      idx: number;
      env: string;
      difficulty: string;
      task_seed: number;
      goal: string;
      success: number;
      context_full: number;
      analysis_error: string | null;
      reward: number | null;
      advantage: number | null;
    }>(
      `SELECT e.*, r.run_id, r.step, r.group_idx, s.idx, s.reward, s.advantage
       FROM episodes e JOIN samples s ON s.id = e.sample_id JOIN rollouts r ON r.id = s.rollout_id WHERE e.sample_id = ?`,
    )
    .get(sampleId);
  if (!e) return undefined;
  const turns = db
    .stmt<{
      turn: number;
      prompt: string;
      reply: string;
      action: string;
      format_valid: number;
      observation: string;
      reward: number | null;
      done: number;
      skill_id: number | null;
      token_ids: Buffer | null;
      delta: Buffer | null;
    }>('SELECT * FROM episode_turns WHERE sample_id = ? ORDER BY turn')
    .all(sampleId)
    .map(
      (t): EpisodeTurnView => ({
        turn: t.turn,
        prompt: t.prompt,
        reply: t.reply,
        action: t.action,
        formatValid: t.format_valid === 1,
        observation: t.observation,
        reward: t.reward,
        done: t.done === 1,
        skillId: t.skill_id,
        tokenIds: t.token_ids ? Array.from(new Int32Array(new Uint8Array(t.token_ids).buffer)) : null,
        delta: t.delta ? Array.from(blobToFloat32(t.delta) ?? []) : null,
      }),
    );
  const skills = db.stmt<SkillRow>('SELECT * FROM skills WHERE source_sample_id = ? ORDER BY id').all(sampleId).map(skillOf);
  return {
    sampleId,
    runId: e.run_id,
    step: e.step,
    group: e.group_idx,
    idx: e.idx,
    env: e.env,
    difficulty: e.difficulty,
    taskSeed: e.task_seed,
    goal: e.goal,
    success: e.success === 1,
    reward: e.reward,
    advantage: e.advantage,
    contextFull: e.context_full === 1,
    analysisError: e.analysis_error ? (JSON.parse(e.analysis_error) as { reason: string; raw: string }) : null,
    turns,
    skills,
  };
}

/** The episodes (sample ids) of one step of a run, by group and position. */
export function listEpisodes(db: ExperimentDb, runId: number, step: number): { sampleId: number; group: number; idx: number; goal: string; success: boolean; turns: number }[] {
  return db
    .stmt<{ sample_id: number; group_idx: number; idx: number; goal: string; success: number; turns: number }>(
      `SELECT e.sample_id, r.group_idx, s.idx, e.goal, e.success, (SELECT count(*) FROM episode_turns t WHERE t.sample_id = e.sample_id) AS turns
       FROM episodes e JOIN samples s ON s.id = e.sample_id JOIN rollouts r ON r.id = s.rollout_id
       WHERE r.run_id = ? AND r.step = ? ORDER BY r.group_idx, s.idx`,
    )
    .all(runId, step)
    .map((r) => ({ sampleId: r.sample_id, group: r.group_idx, idx: r.idx, goal: r.goal, success: r.success === 1, turns: r.turns }));
}
