import type { TensorProto } from './onnxModel.js';

/** TensorProto.DataType */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

export type TypedValues =
  Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** ONNX data type → ORT's tensor type name, and how its raw bytes read. */
const TYPES: Record<number, { ort: string; make: (b: ArrayBuffer) => TypedValues; size: number }> = {
  [DataType.FLOAT]: { ort: 'float32', make: (b) => new Float32Array(b), size: 4 },
  [DataType.UINT8]: { ort: 'uint8', make: (b) => new Uint8Array(b), size: 1 },
  [DataType.INT8]: { ort: 'int8', make: (b) => new Int8Array(b), size: 1 },
  [DataType.UINT16]: { ort: 'uint16', make: (b) => new Uint16Array(b), size: 2 },
  [DataType.INT16]: { ort: 'int16', make: (b) => new Int16Array(b), size: 2 },
  [DataType.INT32]: { ort: 'int32', make: (b) => new Int32Array(b), size: 4 },
  [DataType.INT64]: { ort: 'int64', make: (b) => new BigInt64Array(b), size: 8 },
  [DataType.BOOL]: { ort: 'bool', make: (b) => new Uint8Array(b), size: 1 },
  [DataType.FLOAT16]: { ort: 'float16', make: (b) => new Uint16Array(b), size: 2 },
  [DataType.DOUBLE]: { ort: 'float64', make: (b) => new Float64Array(b), size: 8 },
  [DataType.UINT32]: { ort: 'uint32', make: (b) => new Uint32Array(b), size: 4 },
  [DataType.UINT64]: { ort: 'uint64', make: (b) => new BigUint64Array(b), size: 8 },
};

export function ortTypeName(dataType: number): string | undefined {
  return TYPES[dataType]?.ort;
}

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map(Number);
}

export function elementCount(t: TensorProto): number {
  return dimsOf(t).reduce((a, b) => a * b, 1);
}

/** The tensor's values as a typed array (a copy, aligned), whichever field holds them. */
export function tensorValues(t: TensorProto): TypedValues {
  const dt = t.data_type ?? 0;
  const spec = TYPES[dt];
  if (!spec) throw new Error(`tensor ${t.name ?? ''}: data type ${dt} is not supported here`);
  if (t.data_location === 1) throw new Error(`tensor ${t.name ?? ''}: its data is external and was not loaded`);
  if (t.raw_data) {
    const copy = new ArrayBuffer(t.raw_data.length);
    new Uint8Array(copy).set(t.raw_data);
    return spec.make(copy);
  }
  const n = elementCount(t);
  const out = spec.make(new ArrayBuffer(n * spec.size));
  const src: ArrayLike<number | bigint> =
    dt === DataType.FLOAT
      ? (t.float_data ?? [])
      : dt === DataType.DOUBLE
        ? (t.double_data ?? [])
        : dt === DataType.INT64
          ? (t.int64_data ?? [])
          : dt === DataType.UINT64 || dt === DataType.UINT32
            ? (t.uint64_data ?? [])
            : (t.int32_data ?? []);
  for (let i = 0; i < Math.min(n, src.length); i++) {
    const v = src[i];
    (out as unknown as (number | bigint)[])[i] = out instanceof BigInt64Array || out instanceof BigUint64Array ? BigInt(v) : Number(v);
  }
  return out;
}

/** Float values of a float/double/int tensor, as float32 (for quantization math). */
export function floatValues(t: TensorProto): Float32Array {
  const v = tensorValues(t);
  if (v instanceof Float32Array) return v;
  return Float32Array.from(v as ArrayLike<number>, Number);
}

export function makeTensor(name: string, dataType: number, dims: number[], values: TypedValues): TensorProto {
  return { name, data_type: dataType, dims, raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}
