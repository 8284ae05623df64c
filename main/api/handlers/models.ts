// Models: the built-in ones and the Hugging Face folders a person added, each with what its
// config.json and safetensors headers say (architecture, parameter count, dtype) or why it
// cannot load. A folder is added only as the person picks it in the desktop app's folder dialog
// (a request never names a path); web mode says how to add one from the command line.
import { ApiError, modelsAddCommand } from '../../../contract/index.ts';
import { addModelFolder, listModelEntries, removeModel } from '../models.ts';
import type { HandlerTable } from './types.ts';

export const modelHandlers = {
  'models.list': (_p, deps) => listModelEntries(deps.db),

  'models.add': async (p, deps) => {
    if (!deps.pickFolder) {
      throw new ApiError(
        'UNAVAILABLE',
        `In web mode the page cannot name folders on the server. On the machine running it, add a model folder with: ${modelsAddCommand(deps.home)} (it then shows here).`,
      );
    }
    const dir = await deps.pickFolder('model');
    if (dir === null) return { added: null };
    const added = await addModelFolder(deps.db, dir, p.name);
    deps.events.emit('models.changed', {});
    return { added };
  },

  'models.remove': (p, deps) => {
    if (!removeModel(deps.db, p.id)) throw new ApiError('NOT_FOUND', `There is no model ${p.id}; it may have been removed already.`);
    deps.events.emit('models.changed', {});
    return { removed: true };
  },
} satisfies HandlerTable<'models.list' | 'models.add' | 'models.remove'>;
