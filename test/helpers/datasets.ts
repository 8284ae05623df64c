// Shared by the dataset tests: the refusal an import must give, for closer checks of its message.
import { expect } from 'vitest';
import { DatasetError } from '../../main/engine/tasks/datasets.ts';

/** Runs `fn`, expects a DatasetError, and returns it. */
export function datasetError(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    return e as DatasetError;
  }
  throw new Error('expected a DatasetError');
}
