// Where a model named on the command line (or in a run configuration) lives: a folder path, or
// the name of a built-in model under resources/models/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built-in models' folder (AUTODIDACT_BUILTIN_MODELS overrides it, e.g. for a packaged app). */
export function builtinModelsDir(): string {
  return process.env.AUTODIDACT_BUILTIN_MODELS ?? fileURLToPath(new URL('../../resources/models/', import.meta.url));
}

/** Names of the built-in models present (folders with a config.json). */
export function listBuiltinModels(): string[] {
  const dir = builtinModelsDir();
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'config.json')))
    .map((e) => e.name)
    .sort();
}

/**
 * The absolute folder of a model given as a path or a built-in name. A path that exists wins; a
 * bare name (no path separator) is looked up among the built-in models.
 */
export function resolveModelPath(nameOrDir: string): string {
  const asPath = path.resolve(nameOrDir);
  if (fs.existsSync(asPath)) {
    if (!fs.statSync(asPath).isDirectory()) throw new Error(`model "${nameOrDir}" is a file; give the model's folder (the one holding config.json)`);
    return asPath;
  }
  const isBareName = !nameOrDir.includes('/') && !nameOrDir.includes(path.sep) && !nameOrDir.startsWith('.');
  if (isBareName) {
    const builtin = path.join(builtinModelsDir(), nameOrDir);
    if (fs.existsSync(path.join(builtin, 'config.json'))) return builtin;
  }
  const names = listBuiltinModels();
  const known = names.length ? `built-in models: ${names.join(', ')}` : 'no built-in models are installed';
  throw new Error(`model "${nameOrDir}" is neither a folder nor a built-in model (${known})`);
}
