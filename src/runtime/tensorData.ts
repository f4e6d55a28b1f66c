/** A tensor as plain data: what crosses the worker boundary (its buffer is transferred, not copied). */
export type TensorValues = Float32Array | Float64Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | Uint8Array | Int8Array | Uint16Array | Int16Array;

export interface TensorData {
  type: 'float32' | 'float64' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'float16' | 'bool';
  dims: number[];
  data: TensorValues;
}

export type TensorMap = Record<string, TensorData>;

export function float32(data: Float32Array, dims: number[]): TensorData {
  return { type: 'float32', dims, data };
}
