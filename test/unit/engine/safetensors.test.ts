// The safetensors reader and writer: round trips, half-precision decoding against known bit
// patterns, and the errors a damaged file gets.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float16BitsToFloat32 } from '../../../main/engine/graph/dtype.ts';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../../main/engine/nn/safetensors.ts';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'autodidact-st-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A safetensors file with raw tensor bytes of any dtype, laid out by hand. */
async function writeRaw(file: string, tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Promise<void> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const headerBuf = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBuf.length));
  await fs.writeFile(file, Buffer.concat([len, headerBuf, ...tensors.map((t) => Buffer.from(t.bytes))]));
}

const u16 = (bits: number[]) => new Uint8Array(new Uint16Array(bits).buffer);

describe('safetensors', () => {
  it('round-trips float32 tensors and metadata, with 8-byte aligned data', async () => {
    const file = path.join(dir, 'round.safetensors');
    const a = { shape: [2, 3], data: new Float32Array([1, -2.5, 3.25, 1e-30, -0, 65504.5]) };
    const b = { shape: [] as number[], data: new Float32Array([Math.PI]) };
    const c = { shape: [0, 4], data: new Float32Array(0) };
    await writeSafetensors(file, [['layer.a', a], ['b', b], ['empty', c]], { format: 'pt', note: 'x' });

    const header = await readSafetensorsHeader(file);
    expect(header.metadata).toEqual({ format: 'pt', note: 'x' });
    expect([...header.entries.keys()]).toEqual(['layer.a', 'b', 'empty']);
    const bytes = await fs.readFile(file);
    expect((8 + Number(bytes.readBigUInt64LE(0))) % 8).toBe(0);

    const got = await readSafetensors(file);
    expect(got.get('layer.a')).toEqual(a);
    expect(got.get('b')!.data[0]).toBe(Math.fround(Math.PI));
    expect(got.get('b')!.shape).toEqual([]);
    expect(got.get('empty')).toEqual(c);
    expect((await fs.readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('reads only the tensors the filter selects', async () => {
    const file = path.join(dir, 'filter.safetensors');
    await writeRaw(file, [
      { name: 'keep', dtype: 'F32', shape: [2], bytes: new Uint8Array(new Float32Array([1, 2]).buffer) },
      { name: 'steps', dtype: 'I64', shape: [1], bytes: new Uint8Array(new BigInt64Array([7n]).buffer) },
    ]);
    const got = await readSafetensors(file, (name) => name === 'keep');
    expect([...got.keys()]).toEqual(['keep']);
    await expect(readSafetensors(file)).rejects.toThrow(/filter\.safetensors: tensor "steps" has dtype I64/);
  });

  it('widens F16, BF16 and F64 exactly', async () => {
    const file = path.join(dir, 'half.safetensors');
    const f16Bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x7c00, 0x8000];
    const f16Want = [1, -2, 65504, 2 ** -24, 2 ** -14, 0.333251953125, Infinity, -0];
    const bf16Bits = [0x3f80, 0xc040, 0x4049, 0x0001, 0xff80, 0x7f7f];
    const bf16Want = [1, -3, 3.140625, 2 ** -133, -Infinity, 3.3895313892515355e38];
    await writeRaw(file, [
      { name: 'h', dtype: 'F16', shape: [2, 4], bytes: u16(f16Bits) },
      { name: 'b', dtype: 'BF16', shape: [6], bytes: u16(bf16Bits) },
      { name: 'd', dtype: 'F64', shape: [2], bytes: new Uint8Array(new Float64Array([0.1, -1e300]).buffer) },
    ]);
    const got = await readSafetensors(file);
    expect(got.get('h')!.shape).toEqual([2, 4]);
    expect([...got.get('h')!.data]).toEqual(f16Want);
    expect(Object.is(got.get('h')!.data[7], -0)).toBe(true);
    expect([...got.get('b')!.data]).toEqual(bf16Want);
    expect([...got.get('d')!.data]).toEqual([Math.fround(0.1), -Infinity]);
  });

  it('widens a half-precision tensor larger than one read chunk', async () => {
    const file = path.join(dir, 'big.safetensors');
    const n = 8 * 1024 * 1024 + 5; // one element past the 16 MiB chunk, plus a few
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = (i * 2654435761) >>> 16;
    await writeRaw(file, [{ name: 'w', dtype: 'F16', shape: [n], bytes: new Uint8Array(bits.buffer) }]);
    const w = (await readSafetensors(file)).get('w')!.data;
    for (const i of [0, 1, 8 * 1024 * 1024 - 1, 8 * 1024 * 1024, n - 1]) {
      expect(Object.is(w[i], Math.fround(float16BitsToFloat32(bits[i]))) || (Number.isNaN(w[i]) && Number.isNaN(float16BitsToFloat32(bits[i])))).toBe(true);
    }
    await fs.rm(file);
  });

  it('names the file and tensor when the file is truncated', async () => {
    const file = path.join(dir, 'cut.safetensors');
    await writeSafetensors(file, [
      ['first', { shape: [4], data: new Float32Array(4) }],
      ['second', { shape: [8], data: new Float32Array(8) }],
    ]);
    const { size } = await fs.stat(file);
    await fs.truncate(file, size - 4);
    await expect(readSafetensors(file)).rejects.toThrow(/cut\.safetensors: tensor "second" .*truncated/);
    await fs.truncate(file, 20);
    await expect(readSafetensorsHeader(file)).rejects.toThrow(/cut\.safetensors: bad safetensors header length/);
  });

  it('rejects a header that is not JSON, a missing file and inconsistent offsets', async () => {
    const bad = path.join(dir, 'bad.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(5n);
    await fs.writeFile(bad, Buffer.concat([len, Buffer.from('{oops')]));
    await expect(readSafetensorsHeader(bad)).rejects.toThrow(/bad\.safetensors: the safetensors header is not valid JSON/);
    await expect(readSafetensors(path.join(dir, 'nope.safetensors'))).rejects.toThrow(/not found: .*nope\.safetensors/);
    const odd = path.join(dir, 'odd.safetensors');
    await writeRaw(odd, [{ name: 'x', dtype: 'F32', shape: [3], bytes: new Uint8Array(8) }]);
    await expect(readSafetensorsHeader(odd)).rejects.toThrow(/odd\.safetensors: tensor "x": data_offsets span 8 bytes but shape \[3\] of F32 needs 12/);
  });

  it('refuses tensors whose data does not match their shape, leaving the old file intact', async () => {
    const file = path.join(dir, 'keep.safetensors');
    await writeSafetensors(file, [['a', { shape: [1], data: new Float32Array([5]) }]]);
    await expect(writeSafetensors(file, [['a', { shape: [2, 2], data: new Float32Array(3) }]])).rejects.toThrow(/tensor "a" has shape \[2, 2\]/);
    expect((await readSafetensors(file)).get('a')!.data[0]).toBe(5);
  });
});
