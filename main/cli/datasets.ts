// `autodidact datasets import`, `list`, `archive`, `restore` and `delete`. A dataset runs or
// reviews depend on is archived, never deleted (the database refuses that, naming them).
import { DatabaseError, type DatasetInfo, type ExperimentDb, deleteDataset, getDataset, listDatasets, setDatasetArchived } from '../db/index.ts';
import { importDatasetFile } from '../runs/datasets.ts';
import { DATASET_ENCODINGS, MAX_DATASET_BYTES } from '../engine/tasks/dataset-file.ts';
import { UsageError, choiceFlag, command, numberFlag, positionalArgs } from './args.ts';
import { withDatabase } from './db.ts';
import { writeLine } from './jsonl.ts';
import { printable } from './printable.ts';

export const datasetsImportCommand = command({
  name: 'datasets import',
  summary: 'Import a JSONL, CSV or TSV file of prompts (answers optional, evaluation-only) into the database.',
  synopsis: 'FILE [--name N] [--prompt-field F] [--answer-field F] [--format jsonl|csv|tsv] [--encoding E] [--eval-fraction X | --eval-file FILE]',
  positionals: true,
  flags: {
    name: { type: 'string', value: 'N', description: 'dataset name (default: the file name without extension)' },
    'prompt-field': { type: 'string', value: 'F', description: 'field or column holding the prompt (default: guessed, e.g. prompt, question, problem)' },
    'answer-field': { type: 'string', value: 'F', description: 'field holding the answer, or "none" (default: guessed, e.g. answer, solution)' },
    format: { type: 'string', value: 'FMT', description: 'jsonl, csv or tsv (default: from the extension)' },
    encoding: { type: 'string', value: 'E', description: `the file's encoding when it is not UTF-8: ${DATASET_ENCODINGS.filter((e) => e !== 'utf-8').join(', ')}` },
    'eval-fraction': { type: 'string', value: 'X', description: 'hold out this share (0 to 1) of the labeled items for evaluation' },
    'eval-file': { type: 'string', value: 'FILE', description: 'a second file of labeled items that forms the evaluation split' },
    json: { type: 'boolean', description: 'print the imported dataset as one JSON object' },
  },
  details: `
Answers are evaluation-only: they are stored apart from the prompts and used to measure label
accuracy and validation scores, never to compute a reward. Nested JSON fields are reached with
dots (--prompt-field meta.question). The import is all-or-nothing: a malformed line stops it with
FILE:LINE and the database is left as it was. The evaluation share is chosen by a hash of each
prompt, so importing the same file again gives the same split. A file must be UTF-8 unless
--encoding names its encoding (latin1 reads as windows-1252, its superset); a file that is not,
holds a NUL character or an unpaired surrogate is refused with the line. Only regular files of at
most ${MAX_DATASET_BYTES / (1024 * 1024)} MiB are read.`,
  async run(values, positionals) {
    const [file] = positionalArgs(positionals, ['FILE']);
    const format = values.format === undefined ? undefined : choiceFlag(values, 'format', ['jsonl', 'csv', 'tsv'] as const, 'jsonl');
    const encoding = values.encoding === undefined ? undefined : choiceFlag(values, 'encoding', DATASET_ENCODINGS, 'utf-8');
    const evalFraction = numberFlag(values, 'eval-fraction', 0, 1);
    if (evalFraction !== undefined && values['eval-file'] !== undefined) throw new UsageError('give --eval-fraction or --eval-file, not both');
    const answer = values['answer-field'];
    const mapping = {
      ...(values['prompt-field'] !== undefined && { prompt: values['prompt-field'] }),
      ...(answer !== undefined && { answer: answer === 'none' ? null : answer }),
    };
    const result = await withDatabase((db) =>
      importDatasetFile(db, file, { name: values.name, format, encoding, mapping, evalFraction, evalFile: values['eval-file'] }),
    );
    if (values.json) {
      await writeLine(JSON.stringify({ ...result.dataset, train: result.train, eval: result.eval }));
    } else {
      const d = result.dataset;
      // The name and the field names come from the file.
      await writeLine(printable(`imported dataset "${d.name}" (id ${d.id}): ${result.train} train + ${result.eval} eval items, ${d.labeledCount} with an answer`));
      await writeLine(printable(`fields: ${result.mappingNote}`));
    }
    return 0;
  },
});

/** A dataset by name, or by id where no dataset has that name. */
function findDataset(db: ExperimentDb, ref: string): DatasetInfo {
  const found = getDataset(db, ref) ?? (/^\d+$/.test(ref) ? getDataset(db, Number(ref)) : undefined);
  if (!found) throw new DatabaseError('NOT_FOUND', `no dataset "${ref}"; 'autodidact datasets list --archived' lists them all with their ids`);
  return found;
}

export const datasetsListCommand = command({
  name: 'datasets list',
  summary: 'List the imported datasets with their item counts (archived ones with --archived).',
  synopsis: '[--archived] [--json]',
  flags: {
    archived: { type: 'boolean', description: 'list the archived datasets too' },
    json: { type: 'boolean', description: 'print one JSON array instead of a table' },
  },
  async run(values) {
    const datasets = await withDatabase((db) => listDatasets(db, { archived: values.archived ? undefined : false }));
    if (values.json) {
      await writeLine(JSON.stringify(datasets));
      return 0;
    }
    if (datasets.length === 0) {
      await writeLine("no datasets yet; import one with 'autodidact datasets import FILE'");
      return 0;
    }
    const width = Math.max(4, ...datasets.map((d) => d.name.length));
    await writeLine(`${'id'.padStart(4)}  ${'name'.padEnd(width)}  ${'items'.padStart(7)}  ${'labeled'.padStart(7)}  source`);
    for (const d of datasets) {
      const archived = d.archivedAt ? `  (archived ${d.archivedAt.slice(0, 10)})` : '';
      await writeLine(`${String(d.id).padStart(4)}  ${d.name.padEnd(width)}  ${String(d.itemCount).padStart(7)}  ${String(d.labeledCount).padStart(7)}  ${d.source ?? ''}${archived}`);
    }
    return 0;
  },
});

export const datasetsArchiveCommand = command({
  name: 'datasets archive',
  summary: 'Hide a dataset from the lists and pickers; its runs and reviews keep working (restore brings it back).',
  synopsis: 'DATASET',
  positionals: true,
  flags: {},
  async run(_values, positionals) {
    const [ref] = positionalArgs(positionals, ['DATASET']);
    const d = await withDatabase((db) => setDatasetArchived(db, findDataset(db, ref).id, true));
    await writeLine(`archived dataset "${d.name}" (id ${d.id}); 'autodidact datasets restore ${d.id}' brings it back`);
    return 0;
  },
});

export const datasetsRestoreCommand = command({
  name: 'datasets restore',
  summary: 'Bring an archived dataset back to the lists and pickers.',
  synopsis: 'DATASET',
  positionals: true,
  flags: {},
  async run(_values, positionals) {
    const [ref] = positionalArgs(positionals, ['DATASET']);
    const d = await withDatabase((db) => setDatasetArchived(db, findDataset(db, ref).id, false));
    await writeLine(`restored dataset "${d.name}" (id ${d.id})`);
    return 0;
  },
});

export const datasetsDeleteCommand = command({
  name: 'datasets delete',
  summary: 'Delete a dataset nothing depends on; one that runs or reviews use is refused (archive it instead).',
  synopsis: 'DATASET',
  positionals: true,
  flags: {},
  details: `
Deleting a dataset removes its items and hidden labels for good. A dataset that a run trained on
or that a person reviewed is never deleted: the command names those runs and reviews and exits 1;
'autodidact datasets archive DATASET' hides it instead, and everything that uses it keeps working.`,
  async run(_values, positionals) {
    const [ref] = positionalArgs(positionals, ['DATASET']);
    const message = await withDatabase((db) => {
      const d = findDataset(db, ref);
      deleteDataset(db, d.id); // refuses (IN_USE, naming them) when runs or reviews depend on it
      return `deleted dataset "${d.name}" (id ${d.id}, ${d.itemCount} items)`;
    });
    await writeLine(message);
    return 0;
  },
});
