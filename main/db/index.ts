// The experiment database: open it with openDatabase, then use the repository functions.
export * from './agent.ts';
export * from './blobs.ts';
export * from './database.ts';
export * from './datasets.ts';
export * from './models.ts';
export * from './review-queue.ts';
export * from './reviews.ts';
export * from './runs.ts';
export * from './steps.ts';
export * from './svd.ts';
