// Reading JSON Lines input files with errors that name the file and line.
import fs from 'node:fs/promises';

export interface JsonlRecord<T> {
  /** 1-based line number in the file. */
  line: number;
  value: T;
}

/** A problem with one line of an input file; the message starts with FILE:LINE. */
export class InputError extends Error {
  override name = 'InputError';
}

/**
 * Every non-blank line of `file` (or stdin for "-"), parsed and checked by `check`, which returns
 * the value or throws a message. Blank lines are skipped; line numbers count them.
 */
export async function readJsonl<T>(file: string, check: (v: unknown) => T): Promise<JsonlRecord<T>[]> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${file}: no such file` : `${file}: ${(e as Error).message}`);
  }
  const name = file === '-' ? '<stdin>' : file;
  const out: JsonlRecord<T>[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (e) {
      throw new InputError(`${name}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    try {
      out.push({ line: i + 1, value: check(json) });
    } catch (e) {
      throw new InputError(`${name}:${i + 1}: ${(e as Error).message}`);
    }
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Write a line to stdout, waiting when the pipe is full (a consumer like `head` reads slowly). */
export async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(line + '\n')) await new Promise((r) => process.stdout.once('drain', r));
}
