/**
 * A log call for refusals: at most one line per `everyMs`, each saying how many were left out since the last
 * (the refusals themselves are counted in full by the caller's metric).
 */
export function rateLimitedLog<A extends unknown[]>(log: (...args: [...A, number]) => void, everyMs = 1000): (...args: A) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (...args: A) => {
    const now = performance.now();
    if (now - last < everyMs) return void suppressed++;
    last = now;
    log(...args, suppressed);
    suppressed = 0;
  };
}
