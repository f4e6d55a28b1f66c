/** Resolves after `ms`, or at once (false) when the signal aborts; the timer never outlives the wait. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Paces a loop at `fps`, absorbing the time the body took (no drift, no catch-up bursts). */
export class FramePacer {
  private next = 0;
  constructor(private readonly fps: number) {}

  async wait(signal: AbortSignal): Promise<boolean> {
    const now = performance.now();
    const interval = 1000 / this.fps;
    this.next = this.next === 0 || this.next < now - interval ? now : this.next;
    const delay = this.next - now;
    this.next += interval;
    return delay > 0 ? sleep(delay, signal) : !signal.aborted;
  }
}
