// Tasks and answers: the one import for the run loop and the database layer.
// extract.ts finds a response's final answer, equivalence.ts decides when two answers are the
// same, vote.ts turns a group of answers into a pseudo-label.
export * from './extract.ts';
export * from './equivalence.ts';
export * from './vote.ts';
