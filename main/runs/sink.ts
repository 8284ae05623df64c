// The bridge from the run loop's step records to the experiment database: each record becomes
// one recordStep call (one transaction), so a step is in the database whole or not at all.
import fs from 'node:fs';
import path from 'node:path';
import { type ExperimentDb, type StepRecord as DbStepRecord, recordStep } from '../db/index.ts';
import type { StepRecord as LoopStepRecord } from '../engine/rl/index.ts';

/**
 * The database form of a loop record. `itemIdx[i]` is the dataset_items.idx of the loop's i-th
 * training item (the loop numbers items by their position in the list it was given).
 */
export function toDbStep(record: LoopStepRecord, itemIdx: readonly number[]): DbStepRecord {
  return {
    metrics: record.metrics,
    rollouts: record.groups.map((g) => ({
      itemIdx: itemIdx[g.itemIndex] ?? null,
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
        extractedAnswer: s.answer,
        reward: s.reward,
        advantage: s.advantage,
        usedForTraining: s.usedForTraining,
        logprobs: s.logprobs,
        entropies: s.entropies,
        tokenIds: s.tokenIds,
      })),
    })),
    checkpoints: record.checkpoints.map((c) => ({ kind: c.kind, path: c.path, metric: c.metric?.value ?? null })),
    alerts: record.alerts.map((a) => ({ kind: a.kind, message: a.message })),
  };
}

/** The loop's onStep hook for a run: writes each step, then tells `after` (progress display). */
export function databaseSink(db: ExperimentDb, runId: number, itemIdx: readonly number[], after?: (record: LoopStepRecord) => void) {
  return (record: LoopStepRecord): void => {
    recordStep(db, runId, record.step, toDbStep(record, itemIdx));
    after?.(record);
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
  return step?.kind === 'autodidact-rl-loop' && typeof step.step === 'number' ? step.step : null;
}
