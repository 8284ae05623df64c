// Which process is training a run. executeRun writes `<runDir>/owner.json` while it trains and
// removes it at the end, so the app starting up can tell a run another process (the command
// line) is training from one whose process died: only the latter is marked stopped.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDir } from './home.ts';

export interface RunOwner {
  pid: number;
  hostname: string;
  startedAt: string;
}

const ownerFile = (home: string, runId: number) => path.join(runDir(home, runId), 'owner.json');

/** Marks this process as the run's trainer; returns the function that clears the mark. */
export function claimRun(home: string, runId: number): () => void {
  const file = ownerFile(home, runId);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const owner: RunOwner = { pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString() };
  fs.writeFileSync(file, JSON.stringify(owner));
  return () => fs.rmSync(file, { force: true });
}

/** The live process training a run on this machine, or null (no mark, or the mark of a dead process). */
export function liveRunOwner(home: string, runId: number): RunOwner | null {
  let owner: RunOwner;
  try {
    owner = JSON.parse(fs.readFileSync(ownerFile(home, runId), 'utf8')) as RunOwner;
  } catch {
    return null;
  }
  if (owner.hostname !== os.hostname() || !Number.isInteger(owner.pid)) return null;
  try {
    process.kill(owner.pid, 0);
    return owner;
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? owner : null;
  }
}
