/**
 * Nonces seen within the freshness window, so a captured message cannot be replayed while it is still fresh.
 * Bounded: entries leave when they are older than the window could accept, and when full the oldest goes
 * (counted). Only messages that already passed their signature check reach it.
 */
export class NonceCache {
  private readonly seen = new Map<string, number>(); // nonce → when it stops mattering
  evicted = 0;

  constructor(
    private readonly maxEntries = 10_000,
    private readonly keepMs = 2 * 120_000,
  ) {}

  /** true when the nonce is new (and is now remembered); false for a replay. */
  admit(nonce: string, now: number): boolean {
    this.prune(now);
    if (this.seen.has(nonce)) return false;
    if (this.seen.size >= this.maxEntries) {
      this.seen.delete(this.seen.keys().next().value!);
      this.evicted++;
    }
    this.seen.set(nonce, now + this.keepMs);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until > now) break; // insertion order is expiry order
      this.seen.delete(nonce);
    }
  }
}
