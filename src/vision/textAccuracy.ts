/** Levenshtein distance over code points. */
export function editDistance(a: string, b: string): number {
  const A = [...a];
  const B = [...b];
  const row = Array.from({ length: B.length + 1 }, (_, j) => j);
  for (let i = 1; i <= A.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= B.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (A[i - 1] === B[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[B.length];
}

/** 1 - normalised edit distance, spaces ignored: 1 is a perfect read, 0 nothing right. */
export function characterAccuracy(expected: string, read: string): number {
  const e = expected.replace(/\s+/g, '');
  const r = read.replace(/\s+/g, '');
  if (e.length === 0) return r.length === 0 ? 1 : 0;
  return Math.max(0, 1 - editDistance(e, r) / Math.max(e.length, r.length));
}
