/** A tensor as plain data: what crosses the worker boundary (its buffer is transferred, not copied). */
export type TensorValues = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;

export interface TensorData {
  type: 'float32' | 'int32' | 'int64' | 'uint8' | 'int8' | 'float16';
  dims: number[];
  data: TensorValues;
}

export type TensorMap = Record<string, TensorData>;

export function float32(data: Float32Array, dims: number[]): TensorData {
  return { type: 'float32', dims, data };
}
