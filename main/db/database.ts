// Opening the experiment database: one SQLite file (better-sqlite3), WAL, foreign keys, the
// schema brought up to date by the migrations in schema.ts. Every write goes through
// `ExperimentDb.write`, one transaction that either commits whole or leaves nothing, and whose
// SQLite failures come back as DatabaseErrors that name the file.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { chooseNativeBinding } from './native-binding.ts';
import { MIGRATIONS, type Migration } from './schema.ts';

/** Written to the file header so another program's SQLite file is recognised as not ours. */
export const APPLICATION_ID = 0x41444944; // 'ADID'

export type DatabaseErrorCode =
  | 'NOT_A_DATABASE' // not SQLite, corrupt, or another program's SQLite file
  | 'TOO_NEW' // written by a newer Autodidact whose schema this version does not know
  | 'DISK_FULL'
  | 'BUSY' // another process held the lock past the busy timeout
  | 'CANNOT_OPEN'
  | 'STEP_EXISTS' // recordStep for a step that is already recorded
  | 'NOT_FOUND'
  | 'INVALID'
  | 'IN_USE' // something recorded depends on it (e.g. a dataset runs or reviews use)
  | 'SQLITE'; // any other SQLite failure

export class DatabaseError extends Error {
  override name = 'DatabaseError';
  constructor(
    readonly code: DatabaseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface OpenOptions {
  /** How long a write waits for another connection's lock, in ms (default: AUTODIDACT_BUSY_TIMEOUT_MS, else 5000). */
  busyTimeoutMs?: number;
  /** Migrations to apply instead of the app's own (tests). */
  migrations?: readonly Migration[];
  /**
   * The better-sqlite3 `.node` file to load instead of the package's own build. Default: under
   * Electron, the file AUTODIDACT_NATIVE_SQLITE names (a checkout's Electron build, see
   * native-binding.ts); otherwise the package's own.
   */
  nativeBinding?: string;
}

/** Where a checkout gets its Electron build of better-sqlite3 from. */
const NATIVE_HINT =
  'In a checkout, `npm start` builds it for Electron (`npm run rebuild:electron` builds it again).';

/** The busy timeout of connections that name none: AUTODIDACT_BUSY_TIMEOUT_MS (a whole number of ms), else 5 s. */
function defaultBusyTimeout(): number {
  const env = process.env.AUTODIDACT_BUSY_TIMEOUT_MS;
  if (env === undefined || env === '') return 5000;
  const ms = Number(env);
  if (!Number.isInteger(ms) || ms < 0) throw new DatabaseError('INVALID', `AUTODIDACT_BUSY_TIMEOUT_MS must be a whole number of milliseconds, got "${env}".`);
  return ms;
}

/** better-sqlite3's options with the native module chosen; throws a DatabaseError naming a missing file. */
function sqliteOptions(file: string, options: OpenOptions): Database.Options {
  const timeout = options.busyTimeoutMs ?? defaultBusyTimeout();
  const binding = chooseNativeBinding(options.nativeBinding);
  if (binding === undefined) return { timeout };
  const resolved = path.resolve(binding);
  if (!fs.existsSync(resolved)) {
    throw new DatabaseError(
      'CANNOT_OPEN',
      `Cannot open ${file}: the SQLite native module ${resolved} does not exist. ${NATIVE_HINT}`,
    );
  }
  return { timeout, nativeBinding: resolved };
}

/** A native module that would not load (wrong ABI, damaged file) as a DatabaseError naming it. */
function nativeLoadError(file: string, options: Database.Options, err: unknown): unknown {
  const binding = typeof options.nativeBinding === 'string' ? options.nativeBinding : undefined;
  if (!binding || (err as NodeJS.ErrnoException | null)?.code !== 'ERR_DLOPEN_FAILED') return err;
  return new DatabaseError(
    'CANNOT_OPEN',
    `Cannot open ${file}: the SQLite native module ${binding} does not load (${(err as Error).message.split('\n')[0]}). ${NATIVE_HINT}`,
    { cause: err },
  );
}

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Database.SqliteError ? err.code : undefined;
}

/** Turns a SQLite failure into a DatabaseError that says which file and what to do. */
export function translateError(file: string, err: unknown, doing: string): unknown {
  if (err instanceof DatabaseError) return err;
  const code = sqliteCode(err);
  if (code === undefined) return err;
  const where = file === ':memory:' ? 'the in-memory database' : file;
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR')) {
    const why = code === 'SQLITE_FULL' ? 'the disk (or the database size limit) is full' : `an I/O error (${code})`;
    return new DatabaseError(
      code === 'SQLITE_FULL' ? 'DISK_FULL' : 'SQLITE',
      `Could not write to ${where}: ${why}. Nothing of ${doing} was saved; free some space and retry.`,
      { cause: err },
    );
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new DatabaseError('NOT_A_DATABASE', `${where} is not an Autodidact database (not SQLite, or damaged).`, {
      cause: err,
    });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new DatabaseError('BUSY', `${where} is locked by another process; ${doing} was not saved.`, { cause: err });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM')) {
    return new DatabaseError('CANNOT_OPEN', `Cannot open ${where} for writing (${code}).`, { cause: err });
  }
  return new DatabaseError('SQLITE', `${doing} failed in ${where}: ${(err as Error).message}`, { cause: err });
}

export class ExperimentDb {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    /** The raw connection, for queries the repository modules do not cover. */
    readonly sql: Database.Database,
    readonly file: string,
  ) {}

  /** A prepared statement, compiled once per connection (steps are written in a loop). */
  stmt<R = unknown>(text: string): Database.Statement<unknown[], R> {
    let s = this.statements.get(text);
    if (!s) {
      s = this.sql.prepare(text);
      this.statements.set(text, s);
    }
    return s as Database.Statement<unknown[], R>;
  }

  /**
   * Runs fn in one transaction (IMMEDIATE: takes the write lock up front, so a busy database
   * fails before any work instead of at commit). Any throw rolls everything back.
   */
  write<T>(doing: string, fn: () => T): T {
    try {
      return this.sql.transaction(fn).immediate();
    } catch (err) {
      throw translateError(this.file, err, doing);
    }
  }

  /** Runs several reads on one snapshot (a writer committing meanwhile is not seen half-way). */
  read<T>(doing: string, fn: () => T): T {
    try {
      return this.sql.transaction(fn).deferred();
    } catch (err) {
      throw translateError(this.file, err, doing);
    }
  }

  schemaVersion(): number {
    return this.sql.pragma('user_version', { simple: true }) as number;
  }

  close(): void {
    this.statements.clear();
    if (this.sql.open) this.sql.close();
  }
}

/**
 * Opens (creating if needed) the experiment database at `file`, or ':memory:', and migrates it
 * to the current schema. Throws a DatabaseError naming the file when it is not an Autodidact
 * database, comes from a newer app version, or cannot be written.
 */
export function openDatabase(file: string, options: OpenOptions = {}): ExperimentDb {
  const migrations = options.migrations ?? MIGRATIONS;
  const sqlOptions = sqliteOptions(file, options);
  let sql: Database.Database;
  try {
    // The data folder may not exist yet on a first run.
    if (file !== ':memory:' && file !== '') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    sql = new Database(file, sqlOptions);
  } catch (err) {
    throw translateError(file, nativeLoadError(file, sqlOptions, err), 'opening the database');
  }
  const db = new ExperimentDb(sql, file);
  try {
    // The first statement reads the header: this is where a non-SQLite file fails.
    const appId = sql.pragma('application_id', { simple: true }) as number;
    const version = sql.pragma('user_version', { simple: true }) as number;
    const tables = sql.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number };
    if ((appId !== 0 && appId !== APPLICATION_ID) || (appId === 0 && tables.n > 0)) {
      throw new DatabaseError('NOT_A_DATABASE', `${file} is an SQLite file, but not an Autodidact database.`);
    }
    if (version > migrations.length) {
      throw new DatabaseError(
        'TOO_NEW',
        `${file} was written by a newer version of Autodidact (schema ${version}; this version knows up to ` +
          `${migrations.length}). Update the app to open it.`,
      );
    }
    // WAL: readers (the UI) never block the writer (the run loop), and a killed writer leaves
    // the file consistent. synchronous=FULL makes each committed step survive a power loss
    // too; one fsync per training step is nothing next to the step itself.
    sql.pragma('journal_mode = WAL');
    sql.pragma('synchronous = FULL');
    sql.pragma('foreign_keys = ON');
    migrate(db, migrations, version);
    return db;
  } catch (err) {
    db.close();
    throw translateError(file, err, 'opening the database');
  }
}

function migrate(db: ExperimentDb, migrations: readonly Migration[], from: number): void {
  for (let v = from; v < migrations.length; v++) {
    const m = migrations[v];
    // One transaction per migration: a failed or interrupted upgrade leaves the previous
    // version intact (user_version is in the header, written in the same transaction).
    db.write(`migration ${v + 1} (${m.name})`, () => {
      if (typeof m.up === 'string') db.sql.exec(m.up);
      else m.up(db.sql);
      db.sql.pragma(`application_id = ${APPLICATION_ID}`);
      db.sql.pragma(`user_version = ${v + 1}`);
    });
  }
}
