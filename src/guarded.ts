/**
 * A timer or event callback that can never throw to the top: what it throws (sync or async) goes to `onError`,
 * itself guarded, so a sampling failure (EMFILE in `process.memoryUsage` …) costs one sample, not the daemon.
 */
export function guarded<A extends unknown[]>(fn: (...args: A) => unknown, onError: (err: unknown) => void): (...args: A) => void {
  const report = (err: unknown) => {
    try {
      onError(err);
    } catch {
      /* the error reporter failed too: nothing more to do here */
    }
  };
  return (...args: A) => {
    try {
      const r = fn(...args);
      if (r instanceof Promise) r.catch(report);
    } catch (err) {
      report(err);
    }
  };
}
