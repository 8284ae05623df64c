// What the `run` command and its caller share, kept apart from run-command.ts so the caller (the
// app's main thread) can use it without loading the training code and onnxruntime.

/** Int32 slot of the `run` command's `control` buffer that asks for a pause. */
export const RUN_CONTROL_SLOT = 0;
/** Stored (Atomics) in RUN_CONTROL_SLOT: finish the step in progress, save a checkpoint, end 'paused'. */
export const PAUSE_REQUESTED = 1;

export type LogLevel = 'info' | 'warn' | 'error';

/** What a run reports while it trains (the `run` command's progress events). */
export type RunEvent =
  | { kind: 'start'; startAfter: number; steps: number; device: string; resumedFrom: string | null; reviewedLabels: number; promptNotes: string[] }
  | { kind: 'phase'; step: number; steps: number; phase: string }
  /** A step was committed to the database. */
  | {
      kind: 'step';
      step: number;
      steps: number;
      metrics: Record<string, number>;
      alerts: { kind: string; message: string }[];
      checkpoints: { kind: 'last' | 'best'; path: string }[];
      groups: number;
      /** Pseudo-labels against the hidden labels (null: the dataset has none, or a validation-only step). */
      labelAccuracy: number | null;
    }
  | { kind: 'log'; level: LogLevel; message: string };
