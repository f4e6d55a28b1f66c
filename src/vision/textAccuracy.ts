import { editDistance } from '../editDistance.js';

export { editDistance };

/** 1 - normalised edit distance, spaces ignored: 1 is a perfect read, 0 nothing right. */
export function characterAccuracy(expected: string, read: string): number {
  return similarity(expected.replace(/\s+/g, ''), read.replace(/\s+/g, ''));
}

/**
 * 1 - normalised edit distance with the word breaks counted (runs of white space as one space): two readings
 * agree only if they split the words alike, since "VALVE39" does not match a parts list's "VALVE 39".
 */
export function textAgreement(a: string, b: string): number {
  const words = (s: string) => s.trim().replace(/\s+/g, ' ');
  return similarity(words(a), words(b));
}

function similarity(e: string, r: string): number {
  if (e.length === 0) return r.length === 0 ? 1 : 0;
  return Math.max(0, 1 - editDistance(e, r) / Math.max(e.length, r.length));
}
