// Which better-sqlite3 native module the database loads: the Node build by default, the file
// AUTODIDACT_NATIVE_SQLITE names under Electron (a checkout's Electron build), an explicit one;
// and the errors that name the file when it is missing or does not load.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DatabaseError, openDatabase } from '../../../main/db/database.ts';
import { NATIVE_SQLITE_ENV, chooseNativeBinding, electronNativeDir, electronNativeFile } from '../../../main/db/native-binding.ts';
import { tempDir } from './helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.remove());

/** The Node build npm install made: loading it through nativeBinding must work like the default. */
const nodeBuild = createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');

function expectCannotOpen(fn: () => unknown, mentions: string): DatabaseError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DatabaseError);
    const e = err as DatabaseError;
    expect(e.code).toBe('CANNOT_OPEN');
    expect(e.message).toContain(mentions);
    expect(e.message).toContain('npm start');
    return e;
  }
  throw new Error('expected a DatabaseError');
}

describe('the Electron build path', () => {
  it('names the folder by Electron version, platform and architecture', () => {
    expect(electronNativeDir('/r/out', '41.7.1', 'linux', 'x64')).toBe(path.join('/r/out', 'native', 'electron-41.7.1-linux-x64'));
    expect(electronNativeFile('/r/out', 'v41.7.1', 'darwin', 'arm64')).toBe(
      path.join('/r/out', 'native', 'electron-41.7.1-darwin-arm64', 'better_sqlite3.node'),
    );
  });
});

describe('chooseNativeBinding', () => {
  const env = { [NATIVE_SQLITE_ENV]: '/x/better_sqlite3.node' };
  it('uses the environment variable only inside Electron', () => {
    expect(chooseNativeBinding(undefined, env, { ...process.versions, electron: '41.7.1' })).toBe('/x/better_sqlite3.node');
    const node = { ...process.versions };
    delete (node as { electron?: string }).electron;
    expect(chooseNativeBinding(undefined, env, node)).toBeUndefined();
    expect(chooseNativeBinding(undefined, {}, { ...process.versions, electron: '41.7.1' })).toBeUndefined();
  });
  it('prefers an explicit file', () => {
    expect(chooseNativeBinding('/y.node', env, { ...process.versions, electron: '41.7.1' })).toBe('/y.node');
  });
});

describe('openDatabase with nativeBinding', () => {
  it('opens, migrates and writes through the given module', () => {
    const file = tmp.file('bound.db');
    const db = openDatabase(file, { nativeBinding: nodeBuild });
    db.write('a test write', () => db.sql.exec('CREATE TABLE t (x INTEGER)'));
    db.close();
    const again = openDatabase(file, { nativeBinding: nodeBuild });
    expect(again.schemaVersion()).toBeGreaterThan(0);
    expect(again.sql.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 0 });
    again.close();
  });

  it('names a missing module and how to build it', () => {
    const missing = tmp.file('electron-0.0.0-none/better_sqlite3.node');
    expectCannotOpen(() => openDatabase(tmp.file('never.db'), { nativeBinding: missing }), missing);
    expect(fs.existsSync(tmp.file('never.db'))).toBe(false);
  });

  it('names a module that does not load', () => {
    const broken = tmp.file('broken.node');
    fs.writeFileSync(broken, 'not a shared library');
    expectCannotOpen(() => openDatabase(tmp.file('never2.db'), { nativeBinding: broken }), broken);
  });
});
