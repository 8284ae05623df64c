// Element types the graph builder knows, and how each maps to ONNX and to JS typed arrays.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;

export type DType = 'float32' | 'float64' | 'float16' | 'int32' | 'int64' | 'bool';

export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'float16'
      ? Uint16Array
      : D extends 'int32'
        ? Int32Array
        : D extends 'int64'
          ? BigInt64Array
          : Uint8Array;

export const ONNX_ELEM_TYPE: Record<DType, number> = {
  float32: T.FLOAT,
  float64: T.DOUBLE,
  float16: T.FLOAT16,
  int32: T.INT32,
  int64: T.INT64,
  bool: T.BOOL,
};

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
};

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16';
}

/** Little-endian bytes of `values` stored as `dtype` (the layout of ONNX raw_data). */
export function encodeValues(values: ArrayLike<number> | ArrayLike<bigint>, dtype: DType): Uint8Array {
  const n = values.length;
  const buf = new ArrayBuffer(n * BYTES_PER_ELEMENT[dtype]);
  const dv = new DataView(buf);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (dtype) {
      case 'float32':
        dv.setFloat32(i * 4, Number(v), true);
        break;
      case 'float64':
        dv.setFloat64(i * 8, Number(v), true);
        break;
      case 'float16':
        dv.setUint16(i * 2, float32ToFloat16Bits(Number(v)), true);
        break;
      case 'int32':
        dv.setInt32(i * 4, Number(v), true);
        break;
      case 'int64':
        dv.setBigInt64(i * 8, BigInt(v), true);
        break;
      case 'bool':
        dv.setUint8(i, v ? 1 : 0);
        break;
    }
  }
  return new Uint8Array(buf);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The first element of `data` that is finite but rounds to ±infinity in float16 (|x| ≥ 65520:
 * beyond 65504, float16's largest, by more than half its last step), or −1. Infinities and NaNs
 * are not counted: float16 holds them.
 */
export function float16OverflowIndex(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if ((x >= 65520 || x <= -65520) && Number.isFinite(x)) return i;
  }
  return -1;
}

/** IEEE half-precision bits of a number, rounding to nearest even. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  if ((half & 0x7c00) === 0x7c00) e = 0x1f;
  return sign | half;
}

/** The number a half-precision bit pattern stands for. */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The number a bfloat16 bit pattern stands for (the top half of a float32). */
export function bfloat16BitsToFloat32(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}
