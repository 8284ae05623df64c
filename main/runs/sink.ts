// The bridge from the run loop's step records to the experiment database: each record becomes
// one recordStep call (one transaction), so a step is in the database whole or not at all.
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseError, type ExperimentDb, type StepRecord as DbStepRecord, recordStep } from '../db/index.ts';
import type { StepRecord as LoopStepRecord } from '../engine/rl/index.ts';

/** The database form of a loop record: the same fields under the same names (vote counts as an object). */
export function toDbStep(record: LoopStepRecord): DbStepRecord {
  return {
    metrics: record.metrics,
    tokens: record.tokens ?? null,
    rollouts: record.groups.map((g) => ({
      itemIdx: g.itemIdx,
      prompt: g.prompt,
      pseudoLabel: g.pseudoLabel,
      voteCounts: Object.fromEntries(g.voteCounts.map((v) => [v.answer, v.count])),
      majorityRatio: g.majorityRatio,
      labelCorrect: g.labelCorrect,
      labeled: g.labeled,
      labelSource: g.labelSource,
      samples: g.samples.map((s, i) => ({
        idx: i,
        text: s.text,
        extractedAnswer: s.extractedAnswer,
        reward: s.reward,
        advantage: s.advantage,
        usedForTraining: s.usedForTraining,
        logprobs: s.logprobs,
        entropies: s.entropies,
        tokenIds: s.tokenIds,
        selfCertainties: s.selfCertainties,
        details: s.details ?? null,
        judge: s.judge ?? null,
        episode: s.episode ?? null,
        hiddenResult: s.hiddenResult ?? null,
      })),
      execution: g.execution ?? null,
    })),
    checkpoints: record.checkpoints.map((c) => ({ kind: c.kind, path: c.path, metric: c.metric?.value ?? null })),
    ...(record.best && { best: record.best.value }),
    alerts: record.alerts.map((a) => ({ kind: a.kind, message: a.message })),
  };
}

/**
 * How long a step's record keeps retrying while another process holds the database's write
 * lock (an import, a second run) before the run gives up. The record is in memory, and a
 * transaction that failed left nothing, so waiting loses nothing.
 */
export const STEP_WRITE_PATIENCE_MS = 10 * 60_000;

export interface SinkOptions {
  /** Called after each step is committed (progress display). */
  after?: (record: LoopStepRecord) => void;
  /** Called when a step's write finds the database busy and will be retried. */
  onWait?: (message: string) => void;
  /** Overrides STEP_WRITE_PATIENCE_MS (tests). */
  patienceMs?: number;
}

/**
 * The loop's onStep hook for a run: writes each step (one transaction). A database another
 * process keeps busy past the busy timeout makes the step wait and retry, not fail the run.
 */
export function databaseSink(db: ExperimentDb, runId: number, options: SinkOptions = {}) {
  const patience = options.patienceMs ?? STEP_WRITE_PATIENCE_MS;
  return async (record: LoopStepRecord): Promise<void> => {
    const rec = toDbStep(record);
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        recordStep(db, runId, record.step, rec);
        break;
      } catch (e) {
        const waited = Date.now() - started;
        if (!(e instanceof DatabaseError && e.code === 'BUSY')) throw e;
        if (waited >= patience) throw new DatabaseError('BUSY', `${e.message} It waited ${Math.round(waited / 1000)} s for another process (an import, another run) to finish writing.`, { cause: e });
        options.onWait?.(`step ${record.step}: the database is busy (another process is writing to it); waiting to save the step (${Math.round(waited / 1000)} s so far)`);
        // The busy timeout has already waited; a short pause lets the event loop breathe.
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * attempt, 1000)));
      }
    }
    options.after?.(record);
  };
}

/**
 * The loop step a checkpoint folder was saved at (its trainer_state.json), or null when the
 * folder holds no run-loop state. Resume compares it with the database.
 */
export function checkpointLoopStep(dir: string): number | null {
  let state: unknown;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
  } catch {
    return null;
  }
  const step = (state as { extra?: { kind?: unknown; step?: unknown } } | null)?.extra;
  // The RL loop's state, or a distillation run's (engine/svd/round.ts), whose step is its last round.
  return (step?.kind === 'autodidact-rl-loop' || step?.kind === 'autodidact-svd') && typeof step.step === 'number' ? step.step : null;
}
