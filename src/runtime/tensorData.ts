import type { TensorData } from '../types.js';

export type { TensorData, TensorMap, TensorValues } from '../types.js';

export function float32(data: Float32Array, dims: number[]): TensorData {
  return { type: 'float32', dims, data };
}
