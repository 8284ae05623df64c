// Models known to the app: the built-in ones and those a person imported.
import type { ExperimentDb } from './database.ts';

export interface ModelInfo {
  id: number;
  name: string;
  path: string;
  architecture: string | null;
  parameterCount: number | null;
  dtype: string | null;
  createdAt: string;
}

export type NewModel = Pick<ModelInfo, 'name' | 'path'> & Partial<Pick<ModelInfo, 'architecture' | 'parameterCount' | 'dtype'>>;

interface ModelRow {
  id: number;
  name: string;
  path: string;
  architecture: string | null;
  parameter_count: number | null;
  dtype: string | null;
  created_at: string;
}

const toModel = (r: ModelRow): ModelInfo => ({
  id: r.id,
  name: r.name,
  path: r.path,
  architecture: r.architecture,
  parameterCount: r.parameter_count,
  dtype: r.dtype,
  createdAt: r.created_at,
});

/** Adds a model, or updates the one with the same name (re-importing a folder refreshes it). */
export function upsertModel(db: ExperimentDb, m: NewModel): ModelInfo {
  return db.write(`saving model "${m.name}"`, () => {
    db.stmt(
      `INSERT INTO models (name, path, architecture, parameter_count, dtype) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET path = excluded.path, architecture = excluded.architecture,
         parameter_count = excluded.parameter_count, dtype = excluded.dtype`,
    ).run(m.name, m.path, m.architecture ?? null, m.parameterCount ?? null, m.dtype ?? null);
    return getModel(db, m.name) as ModelInfo;
  });
}

export function getModel(db: ExperimentDb, idOrName: number | string): ModelInfo | undefined {
  const where = typeof idOrName === 'number' ? 'id = ?' : 'name = ?';
  const r = db.stmt<ModelRow>(`SELECT * FROM models WHERE ${where}`).get(idOrName);
  return r && toModel(r);
}

export function listModels(db: ExperimentDb): ModelInfo[] {
  return db.stmt<ModelRow>('SELECT * FROM models ORDER BY name').all().map(toModel);
}

export function deleteModel(db: ExperimentDb, id: number): boolean {
  return db.write(`deleting model ${id}`, () => db.stmt('DELETE FROM models WHERE id = ?').run(id).changes > 0);
}
