// What the importer refuses to store as garbage, from byte-level fixtures made here: files not
// in UTF-8 (Latin-1, Windows-1252, UTF-16/32), NUL characters and unpaired surrogates in
// prompts, metadata nested deep enough to overflow the stack, and special files (a FIFO, a link
// to /dev/zero, a file over the size limit). Each refusal names the file, the line and the cause.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_METADATA_DEPTH, loadDataset } from '../../../main/engine/tasks/datasets.ts';
import { MAX_DATASET_BYTES, decodeDatasetBytes, firstInvalidUtf8, readDatasetBytes } from '../../../main/engine/tasks/dataset-file.ts';
import { importDataset, listDatasets, openDatabase } from '../../../main/db/index.ts';
import { tempDir } from '../db/helpers.ts';
import { datasetError } from '../../helpers/datasets.ts';

const tmp = tempDir('autodidact-dataset-file-');
afterAll(() => tmp.remove());

let n = 0;
/** Writes `bytes` to a fresh file with extension `ext` and returns its path. */
function fixture(bytes: Uint8Array | string, ext = 'jsonl'): string {
  const file = tmp.file(`f${++n}.${ext}`);
  fs.writeFileSync(file, bytes);
  return file;
}


const ascii = (s: string) => Buffer.from(s, 'latin1');

describe('encodings', () => {
  // "café" and "naïve" in Latin-1: E9 and EF are single bytes, invalid as UTF-8.
  const latin1 = ascii('{"prompt": "plain"}\n{"prompt": "caf\xe9 na\xefve"}\n');

  it('refuses a Latin-1 file, naming the line, the bytes and the likely encoding', () => {
    const file = fixture(latin1);
    const e = datasetError(() => loadDataset(file));
    expect(e.kind).toBe('encoding');
    expect(e.file).toBe(path.basename(file));
    expect(e.line).toBe(2);
    expect(e.message).toContain(`${path.basename(file)}, line 2: the bytes E9 20 6E 61 at column 16 are not valid UTF-8`);
    expect(e.message).toMatch(/Windows-1252 or Latin-1 \(in Windows-1252, 0xE9 is "é"\)/);
  });

  it('converts Latin-1 and Windows-1252 when the encoding is given', () => {
    expect(loadDataset(fixture(latin1), { encoding: 'latin1' }).items[1].prompt).toBe('café naïve');
    // 0x93/0x94 are curly quotes in Windows-1252 (C1 controls in strict Latin-1).
    const cp1252 = ascii('prompt,answer\n\x93quoted\x94 text,4\n');
    const ds = loadDataset(fixture(cp1252, 'csv'), { encoding: 'windows-1252' });
    expect(ds.items[0].prompt).toBe('“quoted” text');
    expect(decodeDatasetBytes(Uint8Array.from([0x80, 0x81, 0x9f, 0xe9]), 'windows-1252')).toBe('€\u0081Ÿé');
    expect(datasetError(() => loadDataset(fixture(cp1252, 'csv'))).line).toBe(2);
  });

  it('says a UTF-16 or UTF-32 file is in that encoding, with or without a byte-order mark', () => {
    const text = '{"prompt": "2+2?"}\n';
    const le = Buffer.from(text, 'utf16le');
    const be = Buffer.from(le).swap16();
    const cases: [Uint8Array, RegExp][] = [
      [Buffer.concat([Buffer.from([0xff, 0xfe]), le]), /encoding is UTF-16 \(little-endian\) \(byte-order mark FF FE\).*utf-16le/],
      [le, /encoding is UTF-16 \(little-endian\) \(a zero byte after most characters\)/],
      [Buffer.concat([Buffer.from([0xfe, 0xff]), be]), /encoding is UTF-16 \(big-endian\) \(byte-order mark FE FF\).*utf-16be/],
      [Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.from(Uint32Array.from([...text].map((c) => c.charCodeAt(0))).buffer)]), /encoding is UTF-32 \(little-endian\)/],
    ];
    for (const [bytes, message] of cases) {
      const e = datasetError(() => loadDataset(fixture(bytes)));
      expect(e.kind).toBe('encoding');
      expect(e.message).toMatch(message);
    }
    expect(loadDataset(fixture(Buffer.concat([Buffer.from([0xff, 0xfe]), le])), { encoding: 'utf-16le' }).items[0].prompt).toBe('2+2?');
    expect(loadDataset(fixture(be), { encoding: 'utf-16be' }).items[0].prompt).toBe('2+2?');
  });

  it('finds the first invalid UTF-8 sequence: overlong forms, surrogates, truncation', () => {
    expect(firstInvalidUtf8(Buffer.from('ok ✓ 😀'))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xc0, 0xaf]))).toBe(1); // overlong "/"
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xed, 0xa0, 0x80]))).toBe(1); // an encoded surrogate (CESU)
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0xe2, 0x9c]))).toBe(2); // cut short
    expect(firstInvalidUtf8(Uint8Array.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // past U+10FFFF
    // A UTF-8 byte-order mark is not part of the text.
    expect(decodeDatasetBytes(Uint8Array.from([0xef, 0xbb, 0xbf, 0x61]))).toBe('a');
  });
});

describe('text no database reader should get', () => {
  it('refuses a NUL character in a prompt or an answer, from a CSV byte or a JSON escape', () => {
    const csv = fixture(ascii('prompt,answer\nfine,1\nbad\x00prompt,2\n'), 'csv');
    const e = datasetError(() => loadDataset(csv));
    expect([e.kind, e.line]).toEqual(['bad-text', 3]);
    expect(e.message).toMatch(/the prompt field "prompt" holds a NUL character \(U\+0000\) at character 4/);
    const json = fixture('{"prompt": "q", "answer": "4\\u0000"}\n');
    expect(datasetError(() => loadDataset(json)).message).toMatch(/line 1: the answer field "answer" holds a NUL character/);
  });

  it('refuses an unpaired surrogate (no UTF-8 form), keeps a proper pair', () => {
    const e = datasetError(() => loadDataset(fixture('{"prompt": "ok"}\n{"prompt": "x\\ud800y"}\n')));
    expect([e.kind, e.line]).toEqual(['bad-text', 2]);
    expect(e.message).toMatch(/unpaired surrogate \(\\uD800\) at character 2/);
    expect(datasetError(() => loadDataset(fixture('{"prompt": "\\udc00"}\n'))).message).toMatch(/\\uDC00/);
    expect(loadDataset(fixture('{"prompt": "\\ud83d\\ude00"}\n')).items[0].prompt).toBe('😀');
  });
});

describe('deeply nested metadata', () => {
  const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

  it('refuses a field nested past the limit, naming the line and field, instead of overflowing the stack', () => {
    const file = fixture(`{"prompt": "shallow", "meta": {"a": [1]}}\n{"prompt": "deep", "meta": ${nested(8000)}}\n`);
    const e = datasetError(() => loadDataset(file));
    expect([e.kind, e.line]).toEqual(['too-deep', 2]);
    expect(e.message).toContain(`the field "meta" nests more than ${MAX_METADATA_DEPTH} levels`);
    expect(loadDataset(fixture(`{"prompt": "p", "meta": ${nested(MAX_METADATA_DEPTH)}}\n`)).items).toHaveLength(1);
  });

  it('the database refuses such metadata from any caller with a DatabaseError naming the item', () => {
    const db = openDatabase(':memory:');
    try {
      let deep: unknown = [];
      for (let i = 0; i < 20_000; i++) deep = [deep];
      expect(() => importDataset(db, { name: 'deep' }, [{ prompt: 'a' }, { prompt: 'b', metadata: { deep } }])).toThrow(
        /Dataset item 1: its metadata nests too deeply to store/,
      );
      expect(listDatasets(db)).toEqual([]);
      expect(db.sql.prepare('SELECT count(*) AS n FROM dataset_items').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});

describe('special files', () => {
  it('refuses a FIFO at once instead of waiting for a writer', () => {
    const fifo = tmp.file('pipe.jsonl');
    execFileSync('mkfifo', [fifo]);
    const e = datasetError(() => loadDataset(fifo));
    expect(e.kind).toBe('not-a-file');
    expect(e.message).toBe(`${fifo}: is a named pipe (FIFO), not a regular file; only regular files are imported`);
  });

  it('follows a link, and refuses one to a device (/dev/zero never ends)', () => {
    const zero = tmp.file('zero.jsonl');
    fs.symlinkSync('/dev/zero', zero);
    expect(datasetError(() => loadDataset(zero)).message).toMatch(/is a character device, not a regular file/);
    const link = tmp.file('link.jsonl');
    fs.symlinkSync(fixture('{"prompt": "via a link"}\n'), link);
    expect(loadDataset(link).items[0].prompt).toBe('via a link');
  });

  it('refuses a file over the size limit before reading it', () => {
    // Sparse: the size is there, the blocks are not, so the test writes nothing.
    const huge = tmp.file('huge.jsonl');
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, MAX_DATASET_BYTES + 1);
    const e = datasetError(() => loadDataset(huge));
    expect(e.kind).toBe('too-large');
    expect(e.message).toMatch(/the file is 512 MiB, more than the 512 MiB a dataset file may have/);
    expect(() => readDatasetBytes(fixture('x'.repeat(100)), 99)).toThrow(/more than the 0\.00 MiB/);
    expect(readDatasetBytes(fixture('x'.repeat(99)), 99)).toHaveLength(99);
  });
});
