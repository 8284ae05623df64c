// Models: the built-in ones and the Hugging Face folders a person added, each with what its
// config.json and safetensors headers say (architecture, parameter count, dtype) or why it
// cannot load. Adding a folder that cannot load records nothing.
import fs from 'node:fs';
import path from 'node:path';
import { ApiError, type ModelEntry } from '../../../preload/contract.ts';
import { type ModelInfo, deleteModel, getModel, listModels, upsertModel } from '../../db/index.ts';
import { builtinModelsDir, listBuiltinModels } from '../../engine/model-paths.ts';
import { RunSetupError, resolveModel } from '../../runs/start.ts';
import { inspectModelFolder } from '../models.ts';
import type { HandlerTable } from './types.ts';

async function entry(name: string, dir: string, builtin: boolean, stored: ModelInfo | undefined): Promise<ModelEntry> {
  const i = await inspectModelFolder(dir);
  return {
    id: stored?.id ?? null,
    name,
    path: dir,
    builtin,
    // Fresh from the folder where it loads; what was recorded at import where it no longer does.
    architecture: i.architecture ?? stored?.architecture ?? null,
    parameterCount: i.parameterCount ?? stored?.parameterCount ?? null,
    dtype: i.dtype ?? stored?.dtype ?? null,
    error: i.error,
  };
}

const samePath = (a: string, b: string) => path.resolve(a) === path.resolve(b);

export const modelHandlers = {
  'models.list': async (_p, deps) => {
    const stored = listModels(deps.db);
    const builtins = listBuiltinModels().map((name) => ({ name, dir: path.join(builtinModelsDir(), name) }));
    const isBuiltinPath = (p: string) => builtins.some((b) => samePath(b.dir, p));
    return Promise.all([
      ...builtins.map((b) => entry(b.name, b.dir, true, stored.find((m) => samePath(m.path, b.dir)))),
      ...stored.filter((m) => !isBuiltinPath(m.path)).map((m) => entry(m.name, m.path, false, m)),
    ]);
  },

  'models.add': async (p, deps) => {
    let dir: string;
    try {
      // A folder, a built-in model's name, or a model already in the data folder.
      dir = resolveModel(p.path, deps.home);
    } catch (e) {
      if (e instanceof RunSetupError) throw new ApiError('SETUP', e.message);
      throw e;
    }
    if (!fs.statSync(dir).isDirectory()) throw new ApiError('SETUP', `${dir} is a file; choose the model's folder (the one holding config.json)`);
    const i = await inspectModelFolder(dir);
    if (i.error) throw new ApiError('SETUP', `${dir} cannot be used as a model: ${i.error}`);
    const builtin = listBuiltinModels().find((n) => samePath(path.join(builtinModelsDir(), n), dir));
    const name = p.name ?? builtin ?? path.basename(dir);
    const taken = getModel(deps.db, name);
    if (taken && !samePath(taken.path, dir)) {
      throw new ApiError('CONFLICT', `A model named "${name}" is already added (from ${taken.path}); give this one another name.`);
    }
    const m = upsertModel(deps.db, { name, path: dir, architecture: i.architecture, parameterCount: i.parameterCount, dtype: i.dtype });
    deps.events.emit('models.changed', {});
    return entry(m.name, m.path, builtin !== undefined, m);
  },

  'models.remove': (p, deps) => {
    if (!getModel(deps.db, p.id)) throw new ApiError('NOT_FOUND', `There is no model ${p.id}; it may have been removed already.`);
    const removed = deleteModel(deps.db, p.id);
    deps.events.emit('models.changed', {});
    return { removed };
  },
} satisfies HandlerTable<'models.list' | 'models.add' | 'models.remove'>;
