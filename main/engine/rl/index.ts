// Label-free reinforcement learning: scoring methods, advantage estimators, the run loop and its
// configuration. One import for the command line, the app and the benchmarks.
export * from './advantages.ts';
export * from './config.ts';
export * from './loop.ts';
export * from './metrics.ts';
export * from './rewards.ts';
export * from './signal.ts';
