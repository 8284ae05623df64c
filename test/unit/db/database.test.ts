// Opening the experiment database: migrations, reopening, pragmas, and the errors for files
// that are not ours, too new, or on a full disk.
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DatabaseError, openDatabase } from '../../../main/db/database.ts';
import { getDataset, importDataset } from '../../../main/db/datasets.ts';
import { createRun, getRun } from '../../../main/db/runs.ts';
import { MIGRATIONS } from '../../../main/db/schema.ts';
import { tempDir } from './helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.remove());

function expectDbError(fn: () => unknown, code: string, mentions: string): DatabaseError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DatabaseError);
    const e = err as DatabaseError;
    expect(e.code).toBe(code);
    expect(e.message).toContain(mentions);
    return e;
  }
  throw new Error('expected a DatabaseError');
}

describe('openDatabase', () => {
  it('migrates an empty file to the current schema, with WAL and foreign keys on', () => {
    const file = tmp.file('fresh.db');
    const db = openDatabase(file);
    expect(db.schemaVersion()).toBe(MIGRATIONS.length);
    expect(db.sql.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.sql.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.sql.pragma('busy_timeout', { simple: true })).toBe(5000);
    const tables = db.sql
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .all()
      .map((r) => (r as { name: string }).name);
    expect(tables).toEqual(
      ['alerts', 'checkpoints', 'dataset_items', 'datasets', 'episode_turns', 'episodes', 'metrics', 'models', 'reviews', 'rollouts', 'run_tags', 'runs', 'samples', 'skills', 'steps', 'svd_candidates', 'svd_reviews', 'svd_rounds', 'svd_verdicts'],
    );
    db.close();
  });

  it('keeps its data when reopened, and does not migrate twice', () => {
    const file = tmp.file('reopen.db');
    let db = openDatabase(file);
    importDataset(db, { name: 'd' }, [{ prompt: 'p', answer: '1' }]);
    const run = createRun(db, { name: 'r', method: 'ttrl', model: 'm', dataset: 'd', config: { lr: 1e-3 } });
    db.close();
    db = openDatabase(file);
    expect(db.schemaVersion()).toBe(MIGRATIONS.length);
    expect(getDataset(db, 'd')?.itemCount).toBe(1);
    expect(getRun(db, run.id)?.config).toEqual({ lr: 1e-3 });
    db.close();
  });

  it('applies later migrations to an older database, each in its own transaction', () => {
    const file = tmp.file('upgrade.db');
    openDatabase(file).close();
    const extra = [...MIGRATIONS, { name: 'add notes', up: 'ALTER TABLE runs ADD COLUMN notes TEXT' }];
    const db = openDatabase(file, { migrations: extra });
    expect(db.schemaVersion()).toBe(extra.length);
    db.close();
    // A migration that fails leaves the database at the previous version, untouched.
    const broken = [...extra, { name: 'broken', up: 'CREATE TABLE t (x); SELECT no_such_function();' }];
    expect(() => openDatabase(file, { migrations: broken })).toThrow(DatabaseError);
    const again = openDatabase(file, { migrations: extra });
    expect(again.schemaVersion()).toBe(extra.length);
    expect(again.sql.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 't'").get()).toEqual({ n: 0 });
    again.close();
  });

  it('creates the folder of a database that does not exist yet', () => {
    const file = tmp.file('new/sub/dir/autodidact.db');
    openDatabase(file).close();
    expect(fs.existsSync(file)).toBe(true);
  });

  it('names the file when it cannot be opened', () => {
    const dir = tmp.file('a-folder.db');
    fs.mkdirSync(dir);
    expectDbError(() => openDatabase(dir), 'CANNOT_OPEN', dir);
  });

  it('works in memory', () => {
    const db = openDatabase(':memory:');
    expect(db.schemaVersion()).toBe(MIGRATIONS.length);
    db.close();
  });

  it('names the file when it is not a database', () => {
    const file = tmp.file('notes.txt');
    fs.writeFileSync(file, 'this is plain text, not SQLite, and it is long enough to have a header\n'.repeat(20));
    expectDbError(() => openDatabase(file), 'NOT_A_DATABASE', file);
  });

  it('refuses another program’s SQLite file', () => {
    const file = tmp.file('other.db');
    const other = new Database(file);
    other.exec('CREATE TABLE x (y)');
    other.close();
    expectDbError(() => openDatabase(file), 'NOT_A_DATABASE', file);
  });

  it('refuses a database from a newer app version', () => {
    const file = tmp.file('newer.db');
    const db = openDatabase(file);
    db.sql.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    const e = expectDbError(() => openDatabase(file), 'TOO_NEW', file);
    expect(e.message).toMatch(/newer version/);
  });

  it('reports a full disk naming the file, and keeps nothing of the failed write', () => {
    const file = tmp.file('full.db');
    const db = openDatabase(file);
    importDataset(db, { name: 'small' }, [{ prompt: 'fits' }]);
    // A page limit just above the current size stands in for a full disk: SQLite answers
    // SQLITE_FULL exactly as it does when the filesystem is out of space.
    const pages = db.sql.pragma('page_count', { simple: true }) as number;
    db.sql.pragma(`max_page_count = ${pages + 2}`);
    const items = Array.from({ length: 5000 }, (_, i) => ({ prompt: `question ${i} `.repeat(20) }));
    const e = expectDbError(() => importDataset(db, { name: 'big' }, items), 'DISK_FULL', file);
    expect(e.message).toMatch(/Nothing of importing dataset "big" was saved/);
    expect(getDataset(db, 'big')).toBeUndefined();
    expect(getDataset(db, 'small')?.itemCount).toBe(1);
    expect(db.sql.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});
