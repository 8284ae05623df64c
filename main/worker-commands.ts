// What the app's engine worker can be asked to do: the engine's own commands (models, devices,
// chat) and the app's `run` (a run recorded in the experiment database, trained in the worker).
// Composed here, above both, so the engine never imports the run layer; the host's calls are
// typed from this table (`EngineHost<WorkerCommands>`).
import { commands } from './engine/commands/index.ts';
import { defineCommand, type CommandTable } from './engine/protocol.ts';
import { run, runParams } from './runs/run-command.ts';

export const workerCommands = {
  ...commands,
  /** Train a run recorded in the experiment database; progress: phases, committed steps, log lines. */
  run: defineCommand({ params: runParams, run }),
} satisfies CommandTable;

export type WorkerCommands = typeof workerCommands;
