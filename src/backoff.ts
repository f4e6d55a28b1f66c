/**
 * Exponential backoff with jitter, for every retry loop (camera reconnects, the broker link, operator tools,
 * uploads): each delay is drawn in [½, 1] of the current step, which then doubles up to `maxMs`; a success
 * resets it. The jitter keeps a fleet that lost the same server from coming back in step.
 */
export class Backoff {
  private stepMs: number;

  constructor(
    private readonly limits: { readonly initialMs: number; readonly maxMs: number },
    private readonly random: () => number = Math.random,
  ) {
    this.stepMs = limits.initialMs;
  }

  /** The delay before the next attempt (whole ms); the step after it doubles. */
  next(): number {
    const delay = Math.round(this.stepMs * (0.5 + this.random() * 0.5));
    this.stepMs = Math.min(this.limits.maxMs, this.stepMs * 2);
    return delay;
  }

  /** After a success: the next failure waits the initial step again. */
  reset(): void {
    this.stepMs = this.limits.initialMs;
  }

  /** Waits the longest from now on (until a reset): two clients taking turns should not flap quickly. */
  slowest(): void {
    this.stepMs = this.limits.maxMs;
  }
}
