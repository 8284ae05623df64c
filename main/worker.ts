// The engine worker's entry (started by EngineHost: main/worker-tsx.js from the sources, the
// bundle's worker.js when built): serves the app's command table on this thread.
import { disposeCommands } from './engine/commands/index.ts';
import { serveCommands } from './engine/worker.ts';
import { workerCommands } from './worker-commands.ts';

serveCommands(workerCommands, disposeCommands);
