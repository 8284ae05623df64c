// Turning a dataset file's bytes into text, refusing what would be stored as garbage: bytes that
// are not UTF-8 (a Latin-1 or Windows-1252 file would otherwise keep replacement characters in
// its prompts), UTF-16/32 files (which read as text interleaved with NULs), and anything that is
// not a regular file of a sane size (a FIFO blocks the reader forever, a link to /dev/zero never
// ends). A legacy encoding is converted only when the user names it.
import fs from 'node:fs';

/** The encodings a dataset file may be declared in (Node's and every browser's TextDecoder read them). */
export const DATASET_ENCODINGS = ['utf-8', 'windows-1252', 'latin1', 'utf-16le', 'utf-16be'] as const;
export type DatasetEncoding = (typeof DATASET_ENCODINGS)[number];

/**
 * The largest dataset file read from disk (the command line), in bytes. The whole file is
 * parsed in memory, at several times its size. (An upload through the app is capped lower, by
 * MAX_UPLOAD_BYTES in the contract, to fit one WebSocket message.)
 */
export const MAX_DATASET_BYTES = 512 * 1024 * 1024;

/** Why a file could not be read as text; `line` is 1-based, null when the problem is the whole file. */
export class DatasetFileError extends Error {
  constructor(
    readonly line: number | null,
    readonly kind: 'io' | 'not-a-file' | 'too-large' | 'encoding',
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'DatasetFileError';
  }
}

const MiB = (n: number) => `${(n / (1024 * 1024)).toFixed(n < 1024 * 1024 ? 2 : 0)} MiB`;

/**
 * Reads a dataset file's bytes: a regular file only (links are followed first), at most
 * `maxBytes`. The file is opened without blocking and checked through its descriptor, so a FIFO
 * or a device put in its place between a check and the read is refused too.
 */
export function readDatasetBytes(filePath: string, maxBytes = MAX_DATASET_BYTES): Uint8Array {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = fs.openSync(filePath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot open it (${code ?? String(e)})`;
    throw new DatasetFileError(null, 'io', why);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new DatasetFileError(null, 'io', 'is a folder, not a file');
    if (!st.isFile()) {
      const what = st.isFIFO() ? 'a named pipe (FIFO)' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a regular file';
      throw new DatasetFileError(null, 'not-a-file', `is ${what}, not a regular file; only regular files are imported`);
    }
    if (st.size > maxBytes) {
      throw new DatasetFileError(null, 'too-large', `the file is ${MiB(st.size)}, more than the ${MiB(maxBytes)} a dataset file may have; split it into smaller files`);
    }
    // Read to the end, but never past the limit: the file may grow while it is read.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(st.size - total, 64 * 1024), maxBytes + 1 - total));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) {
        throw new DatasetFileError(null, 'too-large', `the file grew past the ${MiB(maxBytes)} a dataset file may have while it was read`);
      }
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof DatasetFileError) throw e;
    throw new DatasetFileError(null, 'io', `cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  } finally {
    fs.closeSync(fd);
  }
}

/** A byte-order mark, or the NUL pattern ASCII text has in UTF-16/32: the file's real encoding. */
function wideEncoding(b: Uint8Array): { name: string; how: string } | null {
  if (b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) return { name: 'UTF-32 (little-endian)', how: 'byte-order mark FF FE 00 00' };
  if (b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) return { name: 'UTF-32 (big-endian)', how: 'byte-order mark 00 00 FE FF' };
  if (b[0] === 0xff && b[1] === 0xfe) return { name: 'UTF-16 (little-endian)', how: 'byte-order mark FF FE' };
  if (b[0] === 0xfe && b[1] === 0xff) return { name: 'UTF-16 (big-endian)', how: 'byte-order mark FE FF' };
  // Without a mark: ASCII characters stored as 2 or 4 bytes leave zeros in fixed positions.
  const n = Math.min(b.length, 4096) & ~3;
  if (n < 4) return null;
  const zeros = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) if (b[i] === 0) zeros[i & 3]++;
  const quads = n / 4;
  const most = (z: number) => z >= 0.9 * quads;
  const few = (z: number) => z < 0.1 * quads;
  if (few(zeros[0]) && most(zeros[1]) && most(zeros[2]) && most(zeros[3])) return { name: 'UTF-32 (little-endian)', how: 'three zero bytes after every character' };
  if (most(zeros[0]) && most(zeros[1]) && most(zeros[2]) && few(zeros[3])) return { name: 'UTF-32 (big-endian)', how: 'three zero bytes before every character' };
  const even = zeros[0] + zeros[2];
  const odd = zeros[1] + zeros[3];
  const pairs = n / 2;
  if (odd >= 0.3 * pairs && even < 0.05 * pairs) return { name: 'UTF-16 (little-endian)', how: 'a zero byte after most characters' };
  if (even >= 0.3 * pairs && odd < 0.05 * pairs) return { name: 'UTF-16 (big-endian)', how: 'a zero byte before most characters' };
  return null;
}

/** The offset of the first byte that does not start a valid UTF-8 sequence (overlong forms and surrogates included), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    const need = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (need === 0 || i + need >= n) return i;
    // The second byte's range excludes overlong forms (E0, F0), surrogates (ED) and > U+10FFFF (F4).
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (b[i + 1] < lo || b[i + 1] > hi) return i;
    for (let k = 2; k <= need; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}

function lineAt(b: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset; i++) {
    if (b[i] === 0x0a) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: offset - start + 1 };
}

// Windows-1252's characters at 0x80–0x9F (the rest of its bytes are the code points, as in
// Latin-1); the five bytes it leaves undefined stay the C1 controls, as the WHATWG decoder has them.
const CP1252_80_9F = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008DŽ\u008F\u0090‘’“”•–—˜™š›œ\u009DžŸ';

/**
 * Windows-1252, and Latin-1 read as it (as every browser does: real "Latin-1" files are nearly
 * always Windows-1252, whose 0x80–0x9F are printable where Latin-1 has controls). Done here
 * because Node 20's TextDecoder('windows-1252') decodes as plain Latin-1.
 */
function decodeWindows1252(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .toString('latin1')
    .replace(/[\x80-\x9f]/g, (c) => CP1252_80_9F[c.charCodeAt(0) - 0x80]);
}

const hex = (x: number) => x.toString(16).toUpperCase().padStart(2, '0');

/**
 * The text of a dataset file's bytes. Without `encoding` the file must be UTF-8 (a UTF-8
 * byte-order mark is dropped); anything else is refused with the line and the bytes at fault,
 * and what the file's encoding probably is. With `encoding`, the bytes are converted from it.
 */
export function decodeDatasetBytes(bytes: Uint8Array, encoding?: DatasetEncoding): string {
  if (encoding === 'windows-1252' || encoding === 'latin1') return decodeWindows1252(bytes);
  if (encoding !== undefined && encoding !== 'utf-8') {
    try {
      return new TextDecoder(encoding, { fatal: true }).decode(bytes);
    } catch {
      throw new DatasetFileError(null, 'encoding', `the file is not valid ${encoding} (${encoding.startsWith('utf-16') ? 'an odd number of bytes, or an unpaired surrogate' : 'undecodable bytes'})`);
    }
  }
  const wide = wideEncoding(bytes);
  if (wide) {
    const declare = wide.name.startsWith('UTF-16') ? `; import it with the encoding ${wide.name.includes('little') ? 'utf-16le' : 'utf-16be'}, or save it as UTF-8` : '; save it as UTF-8';
    throw new DatasetFileError(null, 'encoding', `the file's encoding is ${wide.name} (${wide.how}), not UTF-8${declare}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const { line, column } = lineAt(bytes, Math.max(at, 0));
    const shown = Array.from(bytes.subarray(at, Math.min(at + 4, bytes.length)), (x) => hex(x)).join(' ');
    // A stray byte above 0x7F among ASCII is what Latin-1 and Windows-1252 files look like.
    const asLegacy = decodeWindows1252(bytes.subarray(at, at + 1));
    const example = /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(asLegacy) ? ` (in Windows-1252, 0x${hex(bytes[at])} is "${asLegacy}")` : '';
    throw new DatasetFileError(
      line,
      'encoding',
      `the bytes ${shown} at column ${column} are not valid UTF-8; the file is probably in a legacy encoding such as Windows-1252 or Latin-1${example}: import it with its encoding (windows-1252 or latin1), or save it as UTF-8`,
    );
  }
}

/**
 * The first whole lines of a file's bytes within `max` bytes, for a preview: cut after the last
 * line feed of the first `max` bytes (in UTF-16, after a whole LF code unit), or empty when a
 * first line alone is longer. `partial` says the bytes went on past it.
 */
export function leadingLines(bytes: Uint8Array, max: number, encoding?: DatasetEncoding): { bytes: Uint8Array; partial: boolean } {
  if (bytes.length <= max) return { bytes, partial: false };
  let end = 0;
  if (encoding === 'utf-16le' || encoding === 'utf-16be') {
    const [lo, hi] = encoding === 'utf-16le' ? [0x0a, 0] : [0, 0x0a];
    for (let i = (max & ~1) - 2; i >= 0; i -= 2) {
      if (bytes[i] === lo && bytes[i + 1] === hi) {
        end = i + 2;
        break;
      }
    }
  } else {
    end = bytes.subarray(0, max).lastIndexOf(0x0a) + 1;
  }
  return { bytes: bytes.subarray(0, end), partial: true };
}
