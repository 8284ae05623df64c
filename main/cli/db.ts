// The experiment database for a command: the one in the data folder (see main/runs/home.ts), so
// what the command line records is what the desktop app shows. Always closed after the command.
import { type ExperimentDb, openDatabase } from '../db/index.ts';
import { databasePath, dataHome } from '../runs/home.ts';

export async function withDatabase<T>(fn: (db: ExperimentDb, home: string) => T | Promise<T>): Promise<T> {
  const home = dataHome();
  const db = openDatabase(databasePath(home));
  try {
    return await fn(db, home);
  } finally {
    db.close();
  }
}
