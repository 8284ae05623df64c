// The safetensors file format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__?}, then the raw
// tensor bytes. Reading goes tensor by tensor through a file handle, so a checkpoint is never
// held in memory twice (once as file bytes, once as float32); half-precision tensors are
// widened chunk by chunk, or (`keepHalf`, for weights only ever read as float16) kept as float16
// bits: F16 read straight into them, BF16 converted chunk by chunk.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToFloat16Bits } from '../graph/dtype.ts';
import { parseJsonText } from './json-text.ts';

export interface Float32Tensor {
  shape: number[];
  data: Float32Array;
}

/** A tensor held as IEEE float16 bit patterns (an onnxruntime 'float16' tensor's data). */
export interface Float16Tensor {
  shape: number[];
  half: Uint16Array;
}

/** A weight as the loader holds it: float32, or float16 where `keepHalf` asked for it. */
export type WeightTensor = Float32Tensor | Float16Tensor;

/**
 * Which half-precision tensors are kept as float16 instead of widened to float32. 'none': none
 * (every tensor read as float32). 'f16': F16
 * tensors, exactly as stored (BF16 ones are widened, so float32 master weights made from them
 * keep every stored value). 'f16+bf16': BF16 ones too, converted to float16 once (weights only
 * ever read as float16; see bfloat16ToFloat16 for values float16 cannot hold).
 */
export type KeepHalf = 'none' | 'f16' | 'f16+bf16';

/** Element types this reader widens to float32. */
export type SafetensorsFloatDType = 'F32' | 'F16' | 'BF16' | 'F64';

export interface SafetensorsEntry {
  name: string;
  /** The dtype string as stored (may be one this reader cannot widen, e.g. I64). */
  dtype: string;
  shape: number[];
  /** Byte range within the file (absolute, header included). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

const BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
};

// Real headers are a few hundred KB at most; anything far larger means a corrupt length field.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Read and validate the header of a safetensors file without touching tensor data. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await openForRead(file);
  try {
    return await readHeader(fh, file);
  } finally {
    await fh.close();
  }
}

async function openForRead(file: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`safetensors file not found: ${file}`);
    throw new Error(`cannot open safetensors file ${file}: ${err.message}`);
  }
}

async function readHeader(fh: fs.FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat();
  if (size < 8) throw new Error(`${file}: not a safetensors file (only ${size} bytes, the header length alone takes 8)`);
  const lenBuf = Buffer.alloc(8);
  await readExactly(fh, lenBuf, 0, file, 'the header length');
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES || headerLen > size - 8) {
    throw new Error(`${file}: bad safetensors header length ${headerLen} (file has ${size} bytes); the file is truncated or not safetensors`);
  }
  const headerBuf = Buffer.alloc(headerLen);
  await readExactly(fh, headerBuf, 8, file, 'the header');
  const json = parseJsonText(headerBuf.toString('utf8'), `${file}: the safetensors header`);
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${file}: the safetensors header is not a JSON object`);

  const dataStart = 8 + headerLen;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(raw, file);
      continue;
    }
    const entry = parseEntry(name, raw, file);
    const begin = dataStart + entry.offsets[0];
    const end = dataStart + entry.offsets[1];
    if (end > size) {
      throw new Error(`${file}: tensor "${name}" needs bytes up to ${end} but the file has only ${size}; the file is truncated (re-download or re-save it)`);
    }
    entries.set(name, { name, dtype: entry.dtype, shape: entry.shape, begin, end });
  }
  return { file, entries, metadata };
}

function parseMetadata(raw: unknown, file: string): Record<string, string> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: "__metadata__" in the header must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new Error(`${file}: "__metadata__.${k}" must be a string`);
    out[k] = v;
  }
  return out;
}

function parseEntry(name: string, raw: unknown, file: string): { dtype: string; shape: number[]; offsets: [number, number] } {
  const where = `${file}: tensor "${name}"`;
  if (!raw || typeof raw !== 'object') throw new Error(`${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string') throw new Error(`${where}: header entry has no dtype`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${where}: bad shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
    throw new Error(`${where}: bad data_offsets ${JSON.stringify(offsets)}`);
  }
  const bytes = BYTES[dtype];
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  if (bytes !== undefined && offsets[1] - offsets[0] !== numel * bytes) {
    throw new Error(`${where}: data_offsets span ${offsets[1] - offsets[0]} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${numel * bytes}`);
  }
  return { dtype, shape: shape as number[], offsets: offsets as [number, number] };
}

async function readExactly(fh: fs.FileHandle, into: Uint8Array, position: number, file: string, what: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const { bytesRead } = await fh.read(into, done, into.byteLength - done, position + done);
    if (bytesRead === 0) throw new Error(`${file}: unexpected end of file while reading ${what}; the file is truncated`);
    done += bytesRead;
  }
}

// Half-precision tensors are read and widened in pieces of this many bytes.
const CHUNK_BYTES = 16 * 1024 * 1024;

// float16 -> float32 through a 64 K lookup table: exact, and much faster than per-element math.
let f16Table: Float32Array | null = null;
function float16Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = float16BitsToFloat32(h);
  }
  return f16Table;
}

/** float16 bits as float32 values (exact), into `out` (default a new array). */
export function widenFloat16(bits: Uint16Array, out: Float32Array | Float64Array = new Float32Array(bits.length), offset = 0): Float32Array | Float64Array {
  const table = float16Table();
  for (let i = 0; i < bits.length; i++) out[offset + i] = table[bits[i]];
  return out;
}

// bfloat16 -> float16 bits through a 64 K table, rounding to nearest even (as a float32 -> float16
// Cast does): exact for |x| in [2^-14, 65504] (bfloat16's 8 significant bits fit in float16's 11),
// rounded below that (float16's subnormals; under 2^-25 to zero).
let bf16Table: Uint16Array | null = null;
function bfloat16ToFloat16Table(): Uint16Array {
  if (!bf16Table) {
    bf16Table = new Uint16Array(65536);
    for (let b = 0; b < 65536; b++) bf16Table[b] = float32ToFloat16Bits(bfloat16BitsToFloat32(b));
  }
  return bf16Table;
}

/**
 * bfloat16 bits `src` as float16 bits into `out` at `offset`. A finite value beyond float16's
 * range (|x| > 65504, which would round to infinity) is refused naming the tensor: a model with
 * such a weight cannot be run in float16 faithfully, and a silent infinity (or clamp) would
 * change its outputs; fp32 precision reads it exactly. Infinities and NaNs stay what they are.
 */
export function bfloat16ToFloat16(src: Uint16Array, out: Uint16Array, offset: number, where: string): void {
  const table = bfloat16ToFloat16Table();
  for (let i = 0; i < src.length; i++) {
    const b = src[i];
    const h = table[b];
    if ((h & 0x7fff) === 0x7c00 && (b & 0x7f80) !== 0x7f80) {
      throw new Error(
        `${where} holds ${bfloat16BitsToFloat32(b)} (element ${offset + i}), beyond float16's range (±65504), so it cannot be held in float16 for precision "mixed"; set precision to "fp32" to run this checkpoint`,
      );
    }
    out[offset + i] = h;
  }
}

async function readEntry(fh: fs.FileHandle, e: SafetensorsEntry, file: string, keepHalf: KeepHalf): Promise<WeightTensor> {
  const numel = e.shape.reduce((a, b) => a * b, 1);
  const what = `tensor "${e.name}"`;
  if (keepHalf !== 'none' && e.dtype === 'F16') {
    // The stored bits are the float16 values: no conversion, no float32 copy.
    const half = new Uint16Array(numel);
    await readExactly(fh, new Uint8Array(half.buffer), e.begin, file, what);
    return { shape: [...e.shape], half };
  }
  if (keepHalf === 'f16+bf16' && e.dtype === 'BF16') {
    const half = new Uint16Array(numel);
    const chunkElems = CHUNK_BYTES / 2;
    const buf = new Uint16Array(Math.min(chunkElems, numel));
    for (let start = 0; start < numel; start += chunkElems) {
      const n = Math.min(chunkElems, numel - start);
      await readExactly(fh, new Uint8Array(buf.buffer, 0, n * 2), e.begin + start * 2, file, what);
      bfloat16ToFloat16(buf.subarray(0, n), half, start, `${file}: ${what}`);
    }
    return { shape: [...e.shape], half };
  }
  const out = new Float32Array(numel);
  switch (e.dtype) {
    case 'F32':
      // Straight into the result's memory (little-endian hosts only, which is every target).
      await readExactly(fh, new Uint8Array(out.buffer), e.begin, file, what);
      break;
    case 'F16':
    case 'BF16': {
      const table = e.dtype === 'F16' ? float16Table() : null;
      const chunkElems = CHUNK_BYTES / 2;
      const buf = new Uint16Array(Math.min(chunkElems, numel));
      for (let start = 0; start < numel; start += chunkElems) {
        const n = Math.min(chunkElems, numel - start);
        const bytes = new Uint8Array(buf.buffer, 0, n * 2);
        await readExactly(fh, bytes, e.begin + start * 2, file, what);
        if (table) {
          for (let i = 0; i < n; i++) out[start + i] = table[buf[i]];
        } else {
          for (let i = 0; i < n; i++) out[start + i] = bfloat16BitsToFloat32(buf[i]);
        }
      }
      break;
    }
    case 'F64': {
      const chunkElems = CHUNK_BYTES / 8;
      const buf = new Float64Array(Math.min(chunkElems, numel));
      for (let start = 0; start < numel; start += chunkElems) {
        const n = Math.min(chunkElems, numel - start);
        await readExactly(fh, new Uint8Array(buf.buffer, 0, n * 8), e.begin + start * 8, file, what);
        for (let i = 0; i < n; i++) out[start + i] = buf[i];
      }
      break;
    }
    default:
      throw new Error(`${file}: tensor "${e.name}" has dtype ${e.dtype}; only F32, F16, BF16 and F64 tensors can be loaded`);
  }
  return { shape: [...e.shape], data: out };
}

/**
 * Read the tensors of a safetensors file as float32 (F16, BF16 and F64 are converted).
 * `filter` selects tensors by name; unselected tensors are never read, so they may have any
 * dtype. Pass an already-read `header` to skip parsing it again.
 */
export async function readSafetensors(
  file: string,
  filter?: (name: string, entry: SafetensorsEntry) => boolean,
  header?: SafetensorsHeader,
): Promise<Map<string, Float32Tensor>> {
  return (await readTensors(file, filter, header)) as Map<string, Float32Tensor>;
}

/** readSafetensors, with the half-precision tensors `keepHalf` names held as float16 bits. */
export async function readSafetensorsKeepingHalf(
  file: string,
  keepHalf: KeepHalf,
  filter?: (name: string, entry: SafetensorsEntry) => boolean,
  header?: SafetensorsHeader,
): Promise<Map<string, WeightTensor>> {
  return readTensors(file, filter, header, keepHalf);
}

async function readTensors(
  file: string,
  filter?: (name: string, entry: SafetensorsEntry) => boolean,
  header?: SafetensorsHeader,
  keepHalf: KeepHalf = 'none',
): Promise<Map<string, WeightTensor>> {
  const fh = await openForRead(file);
  try {
    const h = header ?? (await readHeader(fh, file));
    const out = new Map<string, WeightTensor>();
    for (const e of h.entries.values()) {
      if (filter && !filter(e.name, e)) continue;
      out.set(e.name, await readEntry(fh, e, file, keepHalf));
    }
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * Write float32 tensors as a safetensors file. The data goes to a temporary file next to
 * `file` that is renamed over it only when complete, so a crash never leaves a torn file.
 */
export async function writeSafetensors(
  file: string,
  tensors: Iterable<[string, Float32Tensor]>,
  metadata?: Record<string, string>,
): Promise<void> {
  const list: [string, Float32Tensor][] = [];
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error(`${file}: "__metadata__" cannot be a tensor name`);
    if (name in header) throw new Error(`${file}: tensor "${name}" given twice`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0) || numel !== t.data.length) {
      throw new Error(`${file}: tensor "${name}" has shape [${t.shape.join(', ')}] (${numel} values) but ${t.data.length} values`);
    }
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
    list.push([name, t]);
  }
  // Pad the header with spaces so tensor data starts 8-byte aligned (as the reference writer does).
  let headerText = JSON.stringify(header);
  const headerBytes = Buffer.byteLength(headerText, 'utf8');
  headerText += ' '.repeat((8 - ((8 + headerBytes) % 8)) % 8);
  const headerBuf = Buffer.from(headerText, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));

  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await fs.open(tmp, 'w');
  try {
    await writeAll(fh, lenBuf);
    await writeAll(fh, headerBuf);
    for (const [, t] of list) await writeAll(fh, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    await fh.sync();
    await fh.close();
    await fs.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    // A full disk is the usual reason: say so, and what to do (the run resumes from its last checkpoint).
    const full = (e as NodeJS.ErrnoException).code === 'ENOSPC';
    const why = full ? `the disk is full (${(e as Error).message}); free some space (older runs' checkpoints under the data folder's runs/ are the largest files) and resume the run` : (e as Error).message;
    throw Object.assign(new Error(`could not write ${file}: ${why}`), { code: (e as NodeJS.ErrnoException).code });
  }
}

/** Write all of `bytes` at the current position (a single write may be partial). */
async function writeAll(fh: fs.FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const n = Math.min(CHUNK_BYTES, bytes.byteLength - done);
    const { bytesWritten } = await fh.write(bytes, done, n);
    done += bytesWritten;
  }
}
