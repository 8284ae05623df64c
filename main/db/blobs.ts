// Per-token arrays (log-probs, entropies) stored as compact float32 blobs: 4 bytes a token
// instead of ~20 as JSON text. Little-endian, the byte order of every platform the app runs on.

/** A Float32Array as a Buffer for a BLOB column (copies: the view may be of a larger buffer). */
export function float32ToBlob(values: Float32Array | readonly number[]): Buffer {
  const arr = values instanceof Float32Array ? values : Float32Array.from(values);
  return Buffer.from(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength));
}

/** A BLOB column back to a Float32Array (copied into an aligned buffer of its own). */
export function blobToFloat32(blob: Buffer | Uint8Array | null | undefined): Float32Array | null {
  if (blob == null) return null;
  if (blob.byteLength % 4 !== 0) throw new Error(`float32 blob of ${blob.byteLength} bytes is not a multiple of 4`);
  const out = new Float32Array(blob.byteLength / 4);
  new Uint8Array(out.buffer).set(blob);
  return out;
}
