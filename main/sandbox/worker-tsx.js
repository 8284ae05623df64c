// Starts a sandbox worker from its TypeScript sources (as main/engine/worker-tsx.js does for
// the engine worker: on Node 20 a worker does not inherit the parent's tsx loader).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
