// Starts the engine worker from its TypeScript sources (a development checkout, the tests, the
// command line run through tsx). On Node 20 a worker does not inherit the parent's tsx loader,
// and `execArgv: ['--import', 'tsx']` does not apply to the worker's own entry file, so the
// worker registers tsx itself before it loads worker.ts.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
