// Which process is training a run. executeRun writes `<runDir>/owner.json` while it trains and
// removes it at the end, so the app starting up can tell a run another process (the command
// line) is training from one whose process died: only the latter is marked stopped. Another
// process reaches the owner through a control request beside it (stop or pause after the step).
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

/**
 * What another process asks of the process training a run: stop (or pause) after the step in
 * progress, with a 'last' checkpoint there, so nothing trained is lost. The owner reads it at
 * each step boundary (executeRun); the file lives in the run's folder, so any process on this
 * data folder (the app, `autodidact serve`, a second terminal) can reach any other.
 */
export interface ControlRequest {
  action: 'stop' | 'pause';
  /** The process that asked, for the owner's log. */
  pid: number;
  requestedAt: string;
}

const requestFile = (home: string, runId: number) => path.join(runDir(home, runId), 'control-request.json');

export function requestControl(home: string, runId: number, action: ControlRequest['action']): void {
  const file = requestFile(home, runId);
  const request: ControlRequest = { action, pid: process.pid, requestedAt: new Date().toISOString() };
  // Written whole, then renamed: the owner never reads half a request.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(request));
  fs.renameSync(tmp, file);
}

/** The request waiting for a run's owner, or null (none, or an unreadable file, which counts as none). */
export function controlRequest(home: string, runId: number): ControlRequest | null {
  try {
    const r = JSON.parse(fs.readFileSync(requestFile(home, runId), 'utf8')) as ControlRequest;
    return r.action === 'stop' || r.action === 'pause' ? r : null;
  } catch {
    return null;
  }
}

export function clearControlRequest(home: string, runId: number): void {
  fs.rmSync(requestFile(home, runId), { force: true });
}

/**
 * Clears the run's mark when this process made it: after the engine worker training the run
 * exited without reaching executeRun's own release (the process, and so the mark's pid, lives
 * on, which would make the run look trained elsewhere and refuse its resume).
 */
export function releaseOwnClaim(home: string, runId: number): void {
  const file = ownerFile(home, runId);
  try {
    const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as RunOwner;
    if (owner.pid === process.pid && owner.hostname === os.hostname()) fs.rmSync(file, { force: true });
  } catch {
    // no mark, or an unreadable one: nothing of ours to clear
  }
}
