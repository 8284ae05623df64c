// Importing a dataset file into the experiment database: parse the whole file first (a
// malformed line stops everything before the database is touched), choose the evaluation split,
// then write the dataset and all its items in one transaction.
import path from 'node:path';
import { type DatasetInfo, type ExperimentDb, type NewDatasetItem, importDataset } from '../db/index.ts';
import { DatasetError, type DatasetFormat, type FieldMapping, type ParsedDataset, loadDataset } from '../engine/tasks/datasets.ts';
import { fnv1a32 } from '../engine/runtime/rng.ts';

export interface ImportOptions {
  /** Dataset name; default: the file name without its extension. */
  name?: string;
  format?: DatasetFormat;
  mapping?: Partial<FieldMapping>;
  /** Share of the file's items (0 to 1) held out, labeled, for evaluation. */
  evalFraction?: number;
  /** A second file whose items form the evaluation split (same format and mapping). */
  evalFile?: string;
}

export interface ImportResult {
  dataset: DatasetInfo;
  train: number;
  eval: number;
  /** Which fields were used, and whether they were guessed (for the user to check). */
  mappingNote: string;
}

/** A problem with the import the user must fix; for file errors it starts with FILE:LINE. */
export class ImportError extends Error {
  override name = 'ImportError';
}


function parse(file: string, options: ImportOptions): ParsedDataset {
  try {
    return loadDataset(file, { format: options.format, mapping: options.mapping });
  } catch (e) {
    // loadDataset names the file by its base name; the user typed a path, so show that.
    if (e instanceof DatasetError) {
      throw new ImportError(e.line === null ? `${file}: ${e.detail}` : `${file}:${e.line}: ${e.detail}`, { cause: e });
    }
    throw e;
  }
}

/**
 * The indices held out for evaluation: round(n × fraction) of the labeled items, chosen by a
 * hash of the prompt, so re-importing the same file (in any order) gives the same split.
 */
export function evalIndices(items: readonly { prompt: string; answer: string | null }[], fraction: number): Set<number> {
  const labeled = items.map((it, i) => ({ i, h: fnv1a32(it.prompt), ok: it.answer !== null })).filter((x) => x.ok);
  labeled.sort((a, b) => a.h - b.h || a.i - b.i);
  return new Set(labeled.slice(0, Math.round(items.length * fraction)).map((x) => x.i));
}

export function importDatasetFile(db: ExperimentDb, file: string, options: ImportOptions = {}): ImportResult {
  const name = options.name ?? path.basename(file, path.extname(file));
  if (!name.trim()) throw new ImportError('the dataset name is empty; give one with --name');
  const { evalFraction, evalFile } = options;
  if (evalFraction !== undefined && evalFile !== undefined) throw new ImportError('give --eval-fraction or --eval-file, not both');
  if (evalFraction !== undefined && !(evalFraction >= 0 && evalFraction < 1)) {
    throw new ImportError(`the evaluation fraction must be at least 0 and below 1, got ${evalFraction}`);
  }
  const main = parse(file, options);
  const items: NewDatasetItem[] = main.items.map((it) => ({ prompt: it.prompt, answer: it.answer, split: 'train', metadata: it.metadata }));
  if (evalFraction !== undefined && evalFraction > 0) {
    const labeled = main.items.filter((it) => it.answer !== null).length;
    const wanted = Math.round(main.items.length * evalFraction);
    // Evaluation measures against the hidden labels: an unlabeled held-out item measures nothing.
    if (labeled < wanted) {
      throw new ImportError(
        `${file}: --eval-fraction ${evalFraction} needs ${wanted} item${wanted === 1 ? '' : 's'} with an answer, but ${labeled} have one (${main.mappingNote}); ` +
          'name the answer column with --answer-field, lower the fraction, or give a labeled --eval-file',
      );
    }
    for (const i of evalIndices(main.items, evalFraction)) items[i].split = 'eval';
  }
  if (evalFile !== undefined) {
    const held = parse(evalFile, options);
    const unlabeled = held.items.findIndex((it) => it.answer === null);
    if (unlabeled >= 0) {
      throw new ImportError(`${evalFile}: evaluation item ${unlabeled + 1} has no answer (${held.mappingNote}); every evaluation item needs one`);
    }
    for (const it of held.items) items.push({ prompt: it.prompt, answer: it.answer, split: 'eval', metadata: { ...it.metadata, source: path.basename(evalFile) } });
  }
  const dataset = importDataset(
    db,
    {
      name,
      source: path.resolve(file),
      fieldMapping: {
        prompt: main.mapping.prompt,
        answer: main.mapping.answer,
        format: main.format,
        ...(evalFile !== undefined && { evalFile: path.resolve(evalFile) }),
        ...(evalFraction !== undefined && { evalFraction }),
      },
    },
    items,
  );
  const evalCount = items.filter((it) => it.split === 'eval').length;
  return { dataset, train: items.length - evalCount, eval: evalCount, mappingNote: main.mappingNote };
}
