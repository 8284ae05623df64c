// Datasets: the preview and import of a file the renderer read (web mode has no paths), the
// built-in arithmetic generator, the paged item table (with the evaluation-only answer marked as
// such in the view), and archiving: a dataset runs or reviews depend on is archived, never
// deleted, so no review and no run's prompts or hidden labels go with it.
import { ApiError, type DatasetSummary, type DatasetUsageView, PREVIEW_MAX_BYTES, type RunStatus } from '../../../contract/index.ts';
import {
  type DatasetInfo,
  datasetUsage,
  deleteDataset,
  describeUsage,
  evaluationAnswers,
  getDataset,
  listDatasets,
  listItems,
  setDatasetArchived,
} from '../../db/index.ts';
import { importDatasetBytes, importDatasetText } from '../../runs/datasets.ts';
import { liveRunOwner } from '../../runs/owner.ts';
import { ensureDataset, importArithmeticDataset } from '../../runs/start.ts';
import { DatasetError, decodeDataset, detectFormat, previewDataset } from '../../engine/tasks/datasets.ts';
import { ARITHMETIC_DATASET_NAME, type ArithmeticDifficulty } from '../../engine/tasks/generators.ts';
import { type DatasetEncoding, leadingLines } from '../../engine/tasks/dataset-file.ts';
import type { ApiDeps, HandlerTable } from './types.ts';

export function toDatasetSummary(d: DatasetInfo): DatasetSummary {
  return {
    id: d.id,
    name: d.name,
    source: d.source,
    itemCount: d.itemCount,
    trainCount: d.itemCount - d.evalCount,
    evalCount: d.evalCount,
    answerCount: d.labeledCount,
    createdAt: d.createdAt,
    archivedAt: d.archivedAt,
  };
}

/** The runs and reviews that depend on a dataset, with the process training each run now (this app's or another). */
function usageOf(deps: ApiDeps, id: number): DatasetUsageView {
  const u = datasetUsage(deps.db, id);
  const runs = u.runs.map((r) => ({
    id: r.id,
    name: r.name,
    status: r.status as RunStatus,
    trainingPid: liveRunOwner(deps.home, r.id)?.pid ?? (deps.runs.isActive(r.id) ? process.pid : null),
  }));
  return { runs, reviews: u.reviews, deletable: runs.length === 0 && u.reviews === 0 };
}

function datasetOrThrow(deps: ApiDeps, id: number): DatasetInfo {
  const d = getDataset(deps.db, id);
  if (!d) throw new ApiError('NOT_FOUND', `There is no dataset ${id}; it may have been deleted.`);
  return d;
}

function refuseTakenName(deps: ApiDeps, name: string): void {
  const taken = getDataset(deps.db, name);
  if (taken) {
    const where = taken.archivedAt ? ' (archived: restore it from the archived datasets)' : '';
    throw new ApiError('CONFLICT', `A dataset named "${name}" already exists${where}; choose another name.`);
  }
}

const PREVIEW_ITEMS = 5;
const MIB = 1024 * 1024;

type Upload = { fileName: string; text?: string; data?: string; encoding?: DatasetEncoding };

/**
 * What a preview reads of an upload: its first whole lines within PREVIEW_MAX_BYTES (characters
 * for text), decoded; `partial` when the file goes on. Only that much base64 is decoded, so a
 * preview costs the same for a 100 MB file as for a 4 MB one. A DatasetError names the line.
 */
function previewText(p: Upload, base: string): { text: string; partial: boolean } {
  if (p.data === undefined) {
    const text = p.text ?? '';
    if (text.length <= PREVIEW_MAX_BYTES) return { text, partial: false };
    const end = text.lastIndexOf('\n', PREVIEW_MAX_BYTES - 1) + 1;
    if (end === 0) throw new DatasetError(base, 1, 'too-large', `the first line is longer than ${PREVIEW_MAX_BYTES / MIB} Mi characters, more than a preview reads; a dataset holds one record per line`);
    return { text: text.slice(0, end), partial: true };
  }
  // Whole base64 quads for one byte more than the preview reads, to know whether the file goes on;
  // only they are checked (the contract does not scan a 160 MB string on this thread).
  const quads = p.data.slice(0, Math.ceil((PREVIEW_MAX_BYTES + 1) / 3) * 4);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(quads)) throw new ApiError('BAD_REQUEST', 'invalid request "datasets.preview": data: expected base64', [{ path: 'data', message: 'expected base64' }]);
  const head = Buffer.from(quads, 'base64');
  const lines = leadingLines(head, PREVIEW_MAX_BYTES, p.encoding);
  if (lines.partial && lines.bytes.length === 0) {
    throw new DatasetError(base, 1, 'too-large', `the first line is longer than ${PREVIEW_MAX_BYTES / MIB} MiB, more than a preview reads; a dataset holds one record per line`);
  }
  return { text: decodeDataset(lines.bytes, base, p.encoding), partial: lines.partial };
}

const baseName = (fileName: string) => fileName.replace(/^.*[\\/]/, '');

export const datasetHandlers = {
  'datasets.list': (p, deps) => listDatasets(deps.db, { archived: p.includeArchived ? undefined : false }).map(toDatasetSummary),

  'datasets.preview': (p) => {
    let read: { text: string; partial: boolean };
    try {
      read = previewText(p, baseName(p.fileName));
    } catch (e) {
      if (!(e instanceof DatasetError)) throw e;
      // Text that cannot be read yet (another encoding) still has the format its name says.
      let format = p.format ?? 'jsonl';
      try {
        format = detectFormat(p.fileName, p.format);
      } catch {
        // an unknown extension: the error above is what the preview shows
      }
      return { format, fields: [], mapping: null, mappingNote: '', items: [], total: null, error: e.message, partial: false };
    }
    const v = previewDataset(read.text, p.fileName, PREVIEW_ITEMS, { format: p.format, mapping: p.mapping }, read.partial);
    return {
      format: v.format,
      fields: v.fields,
      mapping: v.mapping,
      mappingNote: v.mappingNote,
      items: v.items.map((it) => ({ prompt: it.prompt, answer: it.answer })),
      total: v.total,
      error: v.error ? v.error.message : null,
      partial: read.partial,
    };
  },

  'datasets.import': (p, deps) => {
    const base = baseName(p.fileName);
    const name = p.name ?? base.replace(/\.[^.]*$/, '');
    refuseTakenName(deps, name);
    const options = { name, format: p.format, mapping: p.mapping, evalFraction: p.evalFraction, encoding: p.encoding };
    const r = p.data !== undefined ? importDatasetBytes(deps.db, Buffer.from(p.data, 'base64'), base, options) : importDatasetText(deps.db, p.text ?? '', base, options);
    deps.events.emit('datasets.changed', {});
    return { dataset: toDatasetSummary(r.dataset), train: r.train, eval: r.eval, mappingNote: r.mappingNote };
  },

  'datasets.generate': (p, deps) => {
    const difficulty = p.difficulty as ArithmeticDifficulty;
    let id: number;
    if (p.name === undefined) {
      // The same dataset a run naming "arithmetic" gets, so the two are one row, not copies.
      id = ensureDataset(deps.db, ARITHMETIC_DATASET_NAME, { difficulty }, p.seed);
    } else {
      refuseTakenName(deps, p.name);
      id = importArithmeticDataset(deps.db, p.name, difficulty, p.seed).id;
    }
    deps.events.emit('datasets.changed', {});
    return toDatasetSummary(datasetOrThrow(deps, id));
  },

  'datasets.items': (p, deps) => {
    datasetOrThrow(deps, p.datasetId);
    const page = deps.db.read(`reading items of dataset ${p.datasetId}`, () => {
      const { items, total } = listItems(deps.db, p.datasetId, { offset: p.offset, limit: p.limit, search: p.search || undefined, split: p.split });
      // The hidden labels are shown to the person (marked evaluation-only), never to a reward.
      const answers = evaluationAnswers(deps.db, p.datasetId, items.map((it) => it.idx));
      return { items: items.map((it) => ({ idx: it.idx, prompt: it.prompt, evalAnswer: answers.get(it.idx) ?? null, split: it.split })), total };
    });
    return page;
  },

  'datasets.usage': (p, deps) => {
    datasetOrThrow(deps, p.id);
    return usageOf(deps, p.id);
  },

  'datasets.archive': (p, deps) => {
    datasetOrThrow(deps, p.id);
    const d = setDatasetArchived(deps.db, p.id, true);
    deps.events.emit('datasets.changed', {});
    return toDatasetSummary(d);
  },

  'datasets.restore': (p, deps) => {
    datasetOrThrow(deps, p.id);
    const d = setDatasetArchived(deps.db, p.id, false);
    deps.events.emit('datasets.changed', {});
    return toDatasetSummary(d);
  },

  'datasets.delete': (p, deps) => {
    const d = datasetOrThrow(deps, p.id);
    const usage = usageOf(deps, p.id);
    if (!usage.deletable) {
      const training = usage.runs.filter((r) => r.trainingPid !== null);
      const live = training.length
        ? ` Run ${training.map((r) => `#${r.id}`).join(', ')} is training on it now (process ${[...new Set(training.map((r) => r.trainingPid))].join(', ')}).`
        : '';
      throw new ApiError(
        'CONFLICT',
        `Dataset "${d.name}" is used by ${describeUsage(datasetUsage(deps.db, p.id))}: deleting it would destroy the reviews and leave the runs without their prompts and hidden labels.${live} Archive it instead: it leaves the pickers, everything that uses it keeps working, and it can be restored.`,
      );
    }
    const deleted = deleteDataset(deps.db, p.id);
    deps.events.emit('datasets.changed', {});
    return { deleted };
  },
} satisfies HandlerTable<
  'datasets.list' | 'datasets.preview' | 'datasets.import' | 'datasets.generate' | 'datasets.items' | 'datasets.usage' | 'datasets.archive' | 'datasets.restore' | 'datasets.delete'
>;
