import { editDistance } from '../editDistance.js';

export { editDistance };

/** 1 - normalised edit distance, spaces ignored: 1 is a perfect read, 0 nothing right. */
export function characterAccuracy(expected: string, read: string): number {
  const e = expected.replace(/\s+/g, '');
  const r = read.replace(/\s+/g, '');
  if (e.length === 0) return r.length === 0 ? 1 : 0;
  return Math.max(0, 1 - editDistance(e, r) / Math.max(e.length, r.length));
}
