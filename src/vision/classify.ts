import type { ClassScore } from '../types.js';

/** Numerically stable softmax. */
export function softmax(logits: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** A row that already sums to 1 with no negatives is taken as probabilities. */
function looksLikeProbabilities(row: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    if (row[i] < 0) return false;
    sum += row[i];
  }
  return Math.abs(sum - 1) < 1e-3;
}

/** Top-k classes of each row of [batch, classes] logits or probabilities. */
export function topK(data: Float32Array, batch: number, classes: number, k: number, labels: readonly string[], applySoftmax: 'auto' | boolean): ClassScore[][] {
  const out: ClassScore[][] = [];
  for (let b = 0; b < batch; b++) {
    const row = data.subarray(b * classes, (b + 1) * classes);
    const probs = applySoftmax === true || (applySoftmax === 'auto' && !looksLikeProbabilities(row)) ? softmax(row) : row;
    const idx = Array.from({ length: classes }, (_, i) => i)
      .sort((x, y) => probs[y] - probs[x])
      .slice(0, k);
    out.push(idx.map((i) => ({ classIndex: i, label: labels[i] ?? `class${i}`, score: probs[i] })));
  }
  return out;
}
