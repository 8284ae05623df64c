// The experiment database for a command: the one in the data folder the desktop app and web mode
// use (AUTODIDACT_HOME, else the data folder chosen in Settings, else the per-user default: see
// resolveDataHome), so what the command line records is what the app shows. Always closed after
// the command.
import { type ExperimentDb, openDatabase } from '../db/index.ts';
import { databasePath } from '../runs/home.ts';
import { createConfSettings, resolveDataHome } from '../settings.ts';

/** The data folder a command works in. */
export function commandHome(): string {
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
