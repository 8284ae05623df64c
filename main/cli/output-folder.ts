// The folders commands write into (--out): created a level at a time from the nearest one that
// exists, so a place no folder can be made (/proc, a read-only disk, a file in the way) is an
// error naming it, never Node's recursive mkdir, which loops for ever under /proc.
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './jsonl.ts';

/** What a file-system error means for a person, without its errno code. */
export function fileProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'the disk is full';
    case 'ENOENT':
      return 'this file system does not allow a folder there';
    case 'EEXIST':
    case 'ENOTDIR':
      return 'a file of that name is in the way';
    default:
      return (e as Error).message;
  }
}

/** Makes `dir` (and the folders above it that are missing); `flag` names the option it came from. */
export function makeOutputFolder(dir: string, flag = '--out'): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    missing.unshift(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  if (fs.existsSync(at) && !fs.statSync(at).isDirectory()) throw new InputError(`${flag} ${dir}: ${at} is a file, not a folder`);
  for (const folder of missing) {
    try {
      fs.mkdirSync(folder);
    } catch (e) {
      throw new InputError(`${flag} ${dir}: cannot create the folder ${folder}: ${fileProblem(e)}`);
    }
  }
}
