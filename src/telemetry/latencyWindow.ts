/** The last `capacity` samples in a ring buffer; percentiles over that window (bounded memory). */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;

  constructor(capacity = 512) {
    this.samples = new Float64Array(capacity);
  }

  add(value: number): void {
    this.samples[this.next] = value;
    this.next = (this.next + 1) % this.samples.length;
    this.count = Math.min(this.count + 1, this.samples.length);
  }

  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const sorted = this.samples.slice(0, this.count).sort();
    const idx = Math.min(this.count - 1, Math.max(0, Math.ceil((p / 100) * this.count) - 1));
    return sorted[idx];
  }

  get size(): number {
    return this.count;
  }
}
