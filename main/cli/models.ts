// `autodidact models add`, `list` and `remove`: the model folders the app offers. The command
// line is how web mode gets one (its page never names a path on the server); the desktop app's
// Models view adds them through the system's folder dialog. Both go through main/api/models.ts.
import { DatabaseError } from '../db/index.ts';
import { addModelFolder, listModelEntries, removeModel } from '../api/models.ts';
import { resolveModel } from '../runs/start.ts';
import { command, positionalArgs } from './args.ts';
import { withDatabase } from './db.ts';
import { writeLine } from './jsonl.ts';
import { printable } from './printable.ts';

export const modelsAddCommand = command({
  name: 'models add',
  summary: 'Add a Hugging Face model folder (config.json, safetensors, tokenizer.json) to the models the app and runs can use.',
  synopsis: 'FOLDER [--name N] [--json]',
  positionals: true,
  flags: {
    name: { type: 'string', value: 'N', description: "the model's name in the app and in runs (default: the folder's name)" },
    json: { type: 'boolean', description: 'print the added model as one JSON object' },
  },
  details: `
The folder is checked as a run would load it (config.json, the safetensors headers, the
tokenizer) and recorded by its path; its files are not copied. A folder that cannot load is
refused with the file or field at fault, and nothing is recorded. Adding the same folder again
refreshes it. A built-in model's name (e.g. tiny-chars) adds that model.`,
  async run(values, positionals) {
    const [folder] = positionalArgs(positionals, ['FOLDER']);
    const entry = await withDatabase((db, home) => addModelFolder(db, resolveModel(folder, home), values.name));
    if (values.json) await writeLine(JSON.stringify(entry));
    else await writeLine(printable(`added model "${entry.name}" (id ${entry.id}): ${entry.architecture}, ${entry.parameterCount} parameters, ${entry.dtype}, from ${entry.path}`));
    return 0;
  },
});

export const modelsListCommand = command({
  name: 'models list',
  summary: 'List the built-in and added models, with architecture, size and dtype, or why one cannot load.',
  synopsis: '[--json]',
  flags: {
    json: { type: 'boolean', description: 'print one JSON array instead of a table' },
  },
  async run(values) {
    const models = await withDatabase((db) => listModelEntries(db));
    if (values.json) {
      await writeLine(JSON.stringify(models));
      return 0;
    }
    const width = Math.max(4, ...models.map((m) => m.name.length));
    await writeLine(`${'id'.padStart(4)}  ${'name'.padEnd(width)}  ${'architecture'.padEnd(12)}  ${'parameters'.padStart(12)}  path`);
    for (const m of models) {
      const id = m.id === null ? '-' : String(m.id);
      const kind = m.builtin ? '  (built-in)' : '';
      await writeLine(printable(`${id.padStart(4)}  ${m.name.padEnd(width)}  ${(m.architecture ?? '-').padEnd(12)}  ${String(m.parameterCount ?? '-').padStart(12)}  ${m.path}${kind}`));
      if (m.error) await writeLine(printable(`      cannot load: ${m.error}`));
    }
    return 0;
  },
});

export const modelsRemoveCommand = command({
  name: 'models remove',
  summary: "Forget an added model (by name or id); its folder's files stay where they are.",
  synopsis: 'MODEL',
  positionals: true,
  flags: {},
  async run(_values, positionals) {
    const [ref] = positionalArgs(positionals, ['MODEL']);
    const removed = await withDatabase((db) => removeModel(db, ref) ?? (/^\d+$/.test(ref) ? removeModel(db, Number(ref)) : null));
    if (!removed) throw new DatabaseError('NOT_FOUND', `no added model "${ref}"; 'autodidact models list' lists them with their ids`);
    await writeLine(printable(`removed model "${removed.name}" (id ${removed.id}); its files stay in ${removed.path}`));
    return 0;
  },
});
