// The experiment database for a command: the one in the data folder the desktop app and web mode
// use (AUTODIDACT_HOME, else the data folder chosen in Settings, else the per-user default: see
// resolveDataHome), so what the command line records is what the app shows. Always closed after
// the command.
import fs from 'node:fs';
import { type ExperimentDb, openDatabase } from '../db/index.ts';
import { databasePath } from '../runs/home.ts';
import { createConfSettings, resolveDataHome, settingsFolder } from '../settings.ts';
import { InputError } from './jsonl.ts';

/** The data folder a command works in. */
export function commandHome(): string {
  // The settings live in the data folder too: a file there is said to be one, not an ENOTDIR.
  const folder = settingsFolder();
  if (fs.existsSync(folder) && !fs.statSync(folder).isDirectory()) {
    throw new InputError(`the data folder ${folder}${process.env.AUTODIDACT_HOME ? ' (AUTODIDACT_HOME)' : ''} is a file, not a folder; point AUTODIDACT_HOME at a folder (one that does not exist yet is created)`);
  }
  return resolveDataHome(createConfSettings().get());
}

export async function withDatabase<T>(fn: (db: ExperimentDb, home: string) => T | Promise<T>): Promise<T> {
  const home = commandHome();
  const db = openDatabase(databasePath(home));
  try {
    return await fn(db, home);
  } finally {
    db.close();
  }
}
