/** The quantization arithmetic of ONNX Runtime's quantizer (REFERENCE §1), in float64 then cast to float32. */

const MIN_SCALE = 1.17549435e-38;

/** Round half to even, as numpy's rint. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Symmetric int8: scale = max|w| / 127 (/ 64 with reduce_range), zero point 0. */
export function symmetricScale(values: ArrayLike<number>, reduceRange: boolean): number {
  let a = 0;
  for (let i = 0; i < values.length; i++) a = Math.max(a, Math.abs(values[i]));
  const scale = Math.fround(a / (reduceRange ? 64 : 127));
  return scale < MIN_SCALE ? 1 : scale;
}

export function quantizeSymmetric(values: ArrayLike<number>, scale: number, out: Int8Array, offset = 0, stride = 1): void {
  for (let i = 0; i < values.length; i++) out[offset + i * stride] = Math.max(-128, Math.min(127, roundHalfEven(values[i] / scale)));
}

/** Asymmetric uint8 for activations: the range always includes 0 so that 0 is exact. */
export function asymmetricParams(rmin: number, rmax: number): { scale: number; zeroPoint: number } {
  const lo = Math.min(rmin, 0);
  const hi = Math.max(rmax, 0);
  const scale = Math.fround((hi - lo) / 255);
  if (scale < MIN_SCALE) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: Math.max(0, Math.min(255, roundHalfEven(-lo / scale))) };
}

/** Per-channel symmetric weights along `axis` of a tensor with `dims`: one scale per channel. */
export function quantizePerChannel(values: Float32Array, dims: number[], axis: number, reduceRange: boolean): { q: Int8Array; scales: Float32Array } {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const q = new Int8Array(values.length);
  const scales = new Float32Array(channels);
  const chunk = new Float32Array(outer * inner);
  for (let c = 0; c < channels; c++) {
    let k = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) chunk[k++] = values[(o * channels + c) * inner + i];
    const s = symmetricScale(chunk, reduceRange);
    scales[c] = s;
    k = 0;
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) q[(o * channels + c) * inner + i] = Math.max(-128, Math.min(127, roundHalfEven(chunk[k++] / s)));
  }
  return { q, scales };
}
