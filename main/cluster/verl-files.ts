// Reading what verl writes, as it writes it. Formats read at verl b178a3cd:
// - the file logger (verl/utils/tracking.py FileLogger): one line per log call,
//   orjson `{"step": N, "data": {"actor/entropy": 0.61, ...}}` (NaN written as null); the file
//   is opened anew ("wb") each time verl starts;
// - the rollout dump (verl/trainer/ppo/ray_trainer.py `_dump_generations`): `<dir>/<step>.jsonl`,
//   one json.dumps line per response with input, output, gts (newer verl), score, step and every
//   key of the reward function's returned dict, written whole before the step's metrics line.
// TTRL's fork (PRIME-RL/TTRL c46b6710, verl/verl/trainer/ppo/ray_trainer.py) writes the same
// dump without gts, and logs its metrics under train/… (label_accuracy, majority_ratio, ...).
import fs from 'node:fs';

/** A malformed file: the message names the file and the line. */
export class ClusterFileError extends Error {
  override name = 'ClusterFileError';
}

export interface Line {
  /** 1-based line number in the file. */
  no: number;
  text: string;
}

/**
 * Follows a JSON Lines file as it grows: each read returns the complete lines added since the
 * last one. A last line without its newline (verl still writing it) is left for a later read.
 * A file that was truncated or rewritten (verl restarted) is read again from its start.
 */
export class JsonlTail {
  private offset = 0;
  private lineNo = 0;
  private head: Buffer | null = null;

  constructor(readonly file: string) {}

  /** The new complete lines; `restarted` when the file was read again from its start. */
  read(): { lines: Line[]; restarted: boolean } {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], restarted: false };
      throw e;
    }
    try {
      const size = fs.fstatSync(fd).size;
      let restarted = false;
      if (size < this.offset || (this.head && !this.sameHead(fd))) {
        this.offset = 0;
        this.lineNo = 0;
        this.head = null;
        restarted = true;
      }
      if (size === this.offset) return { lines: [], restarted };
      const buf = Buffer.alloc(size - this.offset);
      const got = fs.readSync(fd, buf, 0, buf.length, this.offset);
      const chunk = buf.subarray(0, got);
      const end = chunk.lastIndexOf(0x0a);
      if (end < 0) return { lines: [], restarted };
      const text = chunk.subarray(0, end).toString('utf8');
      this.offset += end + 1;
      if (!this.head) this.head = this.readHead(fd);
      const lines: Line[] = [];
      for (const t of text.split('\n')) {
        this.lineNo++;
        if (t.trim() !== '') lines.push({ no: this.lineNo, text: t });
      }
      return { lines, restarted };
    } finally {
      fs.closeSync(fd);
    }
  }

  private readHead(fd: number): Buffer {
    const n = Math.min(this.offset, 256);
    const b = Buffer.alloc(n);
    fs.readSync(fd, b, 0, n, 0);
    return b;
  }

  private sameHead(fd: number): boolean {
    const now = this.readHead(fd);
    return now.length === this.head!.length && now.equals(this.head!);
  }
}

/**
 * JSON.parse, also accepting the NaN and ±Infinity that Python's json.dumps writes (the rollout
 * dump's scores may hold them); they become null. Throws a ClusterFileError naming file:line.
 */
export function parseJsonLine(file: string, line: Line): unknown {
  try {
    return JSON.parse(line.text);
  } catch (e) {
    if (/\bNaN\b|Infinity\b/.test(line.text)) {
      try {
        return JSON.parse(line.text.replace(/([:,[]\s*)(?:NaN|-?Infinity)(?=\s*[,}\]])/g, '$1null'));
      } catch {
        // the original error says more
      }
    }
    throw new ClusterFileError(`${file}:${line.no}: not a JSON line (${(e as Error).message})`);
  }
}

/** One metrics line of verl's file logger. */
export interface MetricsLine {
  step: number;
  /** Numbers only (null where verl logged NaN); other values (text) are left out. */
  data: Record<string, number | null>;
}

export function parseMetricsLine(file: string, line: Line): MetricsLine {
  const v = parseJsonLine(file, line) as { step?: unknown; data?: unknown } | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ClusterFileError(`${file}:${line.no}: expected verl's file-logger line {"step": N, "data": {...}}`);
  if (!Number.isInteger(v.step) || (v.step as number) < 0) throw new ClusterFileError(`${file}:${line.no}: "step" must be an integer ≥ 0, got ${JSON.stringify(v.step)}`);
  if (!v.data || typeof v.data !== 'object' || Array.isArray(v.data)) throw new ClusterFileError(`${file}:${line.no}: "data" must be an object of metrics, got ${JSON.stringify(v.data)}`);
  const data: Record<string, number | null> = {};
  for (const [k, x] of Object.entries(v.data as Record<string, unknown>)) {
    if (typeof x === 'number' || x === null) data[k] = x;
    else if (typeof x === 'boolean') data[k] = x ? 1 : 0;
  }
  return { step: v.step as number, data };
}

/** One response of verl's rollout dump. */
export interface DumpLine {
  input: string;
  output: string;
  score: number | null;
  /** Every other key (gts, step, the reward function's keys). */
  extra: Record<string, unknown>;
}

export function parseDumpLine(file: string, line: Line): DumpLine {
  const v = parseJsonLine(file, line) as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ClusterFileError(`${file}:${line.no}: expected a rollout-dump line {"input": ..., "output": ..., "score": ...}`);
  const { input, output, score, ...extra } = v;
  if (typeof input !== 'string') throw new ClusterFileError(`${file}:${line.no}: "input" must be the prompt text, got ${JSON.stringify(input)?.slice(0, 60)}`);
  if (typeof output !== 'string') throw new ClusterFileError(`${file}:${line.no}: "output" must be the response text, got ${JSON.stringify(output)?.slice(0, 60)}`);
  if (score !== undefined && score !== null && typeof score !== 'number') throw new ClusterFileError(`${file}:${line.no}: "score" must be a number, got ${JSON.stringify(score)}`);
  return { input, output, score: typeof score === 'number' ? score : null, extra };
}

/**
 * A whole rollout dump file, or null when it is not all there yet (missing, or its last line
 * still without a newline: verl writes it in one call, but a copy may be under way).
 */
export function readDumpFile(file: string): DumpLine[] | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (text.length === 0 || !text.endsWith('\n')) return null;
  return text
    .slice(0, -1)
    .split('\n')
    .map((t, i) => ({ no: i + 1, text: t }))
    .filter((l) => l.text.trim() !== '')
    .map((l) => parseDumpLine(file, l));
}
