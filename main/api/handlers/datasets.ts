// Datasets: the preview and import of a file the renderer read (web mode has no paths), the
// built-in arithmetic generator, the paged item table (with the evaluation-only answer marked as
// such in the view), and deletion.
import { ApiError, type DatasetSummary } from '../../../preload/contract.ts';
import { type DatasetInfo, deleteDataset, evaluationAnswers, getDataset, listDatasets, listItems, listRuns } from '../../db/index.ts';
import { importDatasetText } from '../../runs/datasets.ts';
import { ensureDataset, importArithmeticDataset } from '../../runs/start.ts';
import { previewDataset } from '../../engine/tasks/datasets.ts';
import { ARITHMETIC_DATASET_NAME, type ArithmeticDifficulty } from '../../engine/tasks/generators.ts';
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
  };
}

function datasetOrThrow(deps: ApiDeps, id: number): DatasetInfo {
  const d = getDataset(deps.db, id);
  if (!d) throw new ApiError('NOT_FOUND', `There is no dataset ${id}; it may have been deleted.`);
  return d;
}

function refuseTakenName(deps: ApiDeps, name: string): void {
  if (getDataset(deps.db, name)) {
    throw new ApiError('CONFLICT', `A dataset named "${name}" already exists; choose another name or delete that one first.`);
  }
}

const PREVIEW_ITEMS = 5;

export const datasetHandlers = {
  'datasets.list': (_p, deps) => listDatasets(deps.db).map(toDatasetSummary),

  'datasets.preview': (p) => {
    const v = previewDataset(p.text, p.fileName, PREVIEW_ITEMS, { format: p.format, mapping: p.mapping });
    return {
      format: v.format,
      fields: v.fields,
      mapping: v.mapping,
      mappingNote: v.mappingNote,
      items: v.items.map((it) => ({ prompt: it.prompt, answer: it.answer })),
      total: v.total,
      error: v.error ? v.error.message : null,
    };
  },

  'datasets.import': (p, deps) => {
    const base = p.fileName.replace(/^.*[\\/]/, '');
    const name = p.name ?? base.replace(/\.[^.]*$/, '');
    refuseTakenName(deps, name);
    const r = importDatasetText(deps.db, p.text, base, { name, format: p.format, mapping: p.mapping, evalFraction: p.evalFraction });
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

  'datasets.delete': (p, deps) => {
    const d = datasetOrThrow(deps, p.id);
    const user = listRuns(deps.db, { status: ['running', 'queued'] }).find((r) => r.datasetId === p.id && deps.runs.isActive(r.id));
    if (user) throw new ApiError('CONFLICT', `Dataset "${d.name}" is in use by run ${user.id} ("${user.name}"); stop that run before deleting it.`);
    const deleted = deleteDataset(deps.db, p.id);
    deps.events.emit('datasets.changed', {});
    return { deleted };
  },
} satisfies HandlerTable<'datasets.list' | 'datasets.preview' | 'datasets.import' | 'datasets.generate' | 'datasets.items' | 'datasets.delete'>;
