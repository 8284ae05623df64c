// Importing a dataset file into the experiment database: parse the whole file first (a
// malformed line stops everything before the database is touched), choose the evaluation split,
// then write the dataset and all its items (staged in short transactions, published at once).
import path from 'node:path';
import { type DatasetInfo, type ExperimentDb, type NewDatasetItem, getDataset, importDataset } from '../db/index.ts';
import { DatasetError, type DatasetFormat, type FieldMapping, type ParsedDataset, decodeDataset, loadDataset, parseDataset } from '../engine/tasks/datasets.ts';
import type { DatasetEncoding } from '../engine/tasks/dataset-file.ts';
import { fnv1a32 } from '../engine/runtime/rng.ts';

export interface ImportOptions {
  /** Dataset name; default: the file name without its extension. */
  name?: string;
  format?: DatasetFormat;
  mapping?: Partial<FieldMapping>;
  /** The file's encoding when it is not UTF-8 (a file, or bytes handed over). */
  encoding?: DatasetEncoding;
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

/** The source of a dataset: a file on disk, or a file's text or bytes the app was handed (web mode has no paths). */
type Source = { kind: 'file'; file: string } | { kind: 'text'; fileName: string; text: string } | { kind: 'bytes'; fileName: string; bytes: Uint8Array };

const sourceName = (src: Source): string => (src.kind === 'file' ? src.file : src.fileName);

function parse(src: Source, options: ImportOptions): ParsedDataset {
  try {
    const how = { format: options.format, mapping: options.mapping, encoding: options.encoding };
    if (src.kind === 'file') return loadDataset(src.file, how);
    const text = src.kind === 'text' ? src.text : decodeDataset(src.bytes, src.fileName, options.encoding);
    return parseDataset(text, src.fileName, how);
  } catch (e) {
    // loadDataset names the file by its base name; the user typed a path, so show that.
    if (e instanceof DatasetError) {
      const where = sourceName(src);
      throw new ImportError(e.line === null ? `${where}: ${e.detail}` : `${where}:${e.line}: ${e.detail}`, { cause: e });
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

/** Imports a dataset file from disk (the command line); a malformed line imports nothing. */
export function importDatasetFile(db: ExperimentDb, file: string, options: ImportOptions = {}): ImportResult {
  return importFrom(db, { kind: 'file', file }, options);
}

/**
 * Imports a dataset from a file's text (the app: the renderer reads the file). `fileName` picks
 * the format (unless `options.format` gives it) and names the file in errors ("NAME:LINE: ...").
 * An `evalFile` is not available here (there is no path to read it from).
 */
export function importDatasetText(db: ExperimentDb, text: string, fileName: string, options: Omit<ImportOptions, 'evalFile'> = {}): ImportResult {
  return importFrom(db, { kind: 'text', fileName, text }, options);
}

/**
 * Imports a dataset from a file's bytes (the app: the picker sends them), decoded as UTF-8 or
 * from `options.encoding`; bytes that are not text in it are refused with NAME:LINE.
 */
export function importDatasetBytes(db: ExperimentDb, bytes: Uint8Array, fileName: string, options: Omit<ImportOptions, 'evalFile'> = {}): ImportResult {
  return importFrom(db, { kind: 'bytes', fileName, bytes }, options);
}

function importFrom(db: ExperimentDb, src: Source, options: ImportOptions): ImportResult {
  const file = sourceName(src);
  // The command line names its flags; the app names the fields of its import form.
  const say = (cli: string, app: string) => (src.kind === 'file' ? cli : app);
  const name = options.name ?? path.basename(file, path.extname(file));
  if (!name.trim()) throw new ImportError(`the dataset name is empty; give one ${say('with --name', 'in the Name field')}`);
  // Before the file is read: the name is the file's unless one is given, so say how to give one.
  if (getDataset(db, name)) {
    throw new ImportError(`A dataset named "${name}" already exists; give this one another name ${say("with --name NAME ('autodidact datasets list' lists them)", 'in the Name field')}`);
  }
  const { evalFraction, evalFile } = options;
  if (evalFraction !== undefined && evalFile !== undefined) throw new ImportError('give --eval-fraction or --eval-file, not both');
  if (evalFraction !== undefined && !(evalFraction >= 0 && evalFraction < 1)) {
    throw new ImportError(`${say('--eval-fraction', 'the evaluation share')} must be at least 0 and below 1, got ${evalFraction}`);
  }
  const main = parse(src, options);
  const items: NewDatasetItem[] = main.items.map((it) => ({ prompt: it.prompt, answer: it.answer, split: 'train', metadata: it.metadata }));
  if (evalFraction !== undefined && evalFraction > 0) {
    const labeled = main.items.filter((it) => it.answer !== null).length;
    const wanted = Math.round(main.items.length * evalFraction);
    // Evaluation measures against the hidden labels: an unlabeled held-out item measures nothing.
    if (labeled < wanted) {
      throw new ImportError(
        `${file}: ${say('--eval-fraction', 'an evaluation share of')} ${evalFraction} needs ${wanted} item${wanted === 1 ? '' : 's'} with an answer, but ${labeled} have one (${main.mappingNote}); ` +
          say('name the answer column with --answer-field, lower the fraction, or give a labeled --eval-file', 'choose the answer field or lower the evaluation share'),
      );
    }
    for (const i of evalIndices(main.items, evalFraction)) items[i].split = 'eval';
  }
  if (evalFile !== undefined) {
    const held = parse({ kind: 'file', file: evalFile }, options);
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
      // A text upload has no path: its file name is all that is known of where it came from.
      source: src.kind === 'file' ? path.resolve(src.file) : src.fileName,
      fieldMapping: {
        prompt: main.mapping.prompt,
        answer: main.mapping.answer,
        format: main.format,
        ...(options.encoding !== undefined && { encoding: options.encoding }),
        ...(evalFile !== undefined && { evalFile: path.resolve(evalFile) }),
        ...(evalFraction !== undefined && { evalFraction }),
      },
    },
    items,
  );
  const evalCount = items.filter((it) => it.split === 'eval').length;
  return { dataset, train: items.length - evalCount, eval: evalCount, mappingNote: main.mappingNote };
}
