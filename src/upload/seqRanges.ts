/** Inclusive runs of seqs, [from, to]. Gaps are computed on runs, never by expanding them. */
export type SeqRange = [number, number];

/** Sorted, overlapping or touching runs joined: O(n log n) in the number of runs, whatever their lengths. */
export function mergeRanges(ranges: readonly SeqRange[]): SeqRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: SeqRange[] = [];
  for (const [from, to] of sorted) {
    const last = out.at(-1);
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else out.push([from, to]);
  }
  return out;
}

/** Sorted distinct seqs as runs. */
export function runsOf(seqs: readonly number[]): SeqRange[] {
  return mergeRanges(seqs.map((s) => [s, s]));
}

/** The parts of [1, upTo] that no run covers; `covered` must be merged. */
export function missingRanges(covered: readonly SeqRange[], upTo: number): SeqRange[] {
  const out: SeqRange[] = [];
  let next = 1;
  for (const [from, to] of covered) {
    if (from > next) out.push([next, Math.min(from - 1, upTo)]);
    next = Math.max(next, to + 1);
    if (next > upTo) break;
  }
  if (next <= upTo) out.push([next, upTo]);
  return out.filter(([a, b]) => a <= b);
}

/** How many seqs merged runs hold. */
export function rangeSize(ranges: readonly SeqRange[]): number {
  return ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);
}

/** How many of the sorted seqs fall inside [from, to] (binary search: no scan of the run). */
export function countWithin(sortedSeqs: readonly number[], from: number, to: number): number {
  return lowerBound(sortedSeqs, to + 1) - lowerBound(sortedSeqs, from);
}

function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
