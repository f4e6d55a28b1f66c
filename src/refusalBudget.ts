/**
 * How many refusals may be logged and answered: the first `limit` in each interval; past that they are only
 * counted, and one summary line per interval says how many were held back and why. A flood of junk then costs
 * a bounded number of log lines and replies, whatever its rate.
 */
export class RefusalBudget {
  private windowStart = 0;
  private used = 0;
  private suppressed = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly summarise: (suppressed: number, byReason: Record<string, number>, seconds: number) => void,
    private readonly now: () => number,
    private readonly limit = 20,
    private readonly intervalMs = 10_000,
  ) {}

  /** true: log and answer this refusal; false: it is counted in the next summary. */
  take(reason: string): boolean {
    const now = this.now();
    if (now - this.windowStart >= this.intervalMs) {
      this.flush();
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used < this.limit) {
      this.used++;
      return true;
    }
    this.suppressed.set(reason, (this.suppressed.get(reason) ?? 0) + 1);
    // the summary comes at the end of the interval even when the flood has stopped by then
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, this.windowStart + this.intervalMs - now)).unref();
    return false;
  }

  /** Writes the pending summary, if any, and stops its timer. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.suppressed.size === 0) return;
    const byReason = Object.fromEntries(this.suppressed);
    this.suppressed = new Map();
    this.summarise(
      Object.values(byReason).reduce((a, b) => a + b, 0),
      byReason,
      this.intervalMs / 1000,
    );
  }
}
