/** Levenshtein distance over code points (config's "did you mean", OCR character accuracy). */
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
