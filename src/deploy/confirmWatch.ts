import type { Gates } from './document.js';
import type { Pending, RollbackReason } from './deployState.js';

/** What the board can see of itself while a new config proves itself. */
export interface HealthSignals {
  brokerConnected(): boolean;
  /** null: the board uploads nothing */
  collectorReachable(): boolean | null;
}

const MIN_FRAMES_FOR_RATES = 10;
const LATENCY_SAMPLES = 256;

/**
 * The confirm window's gates, checked once a second: results that stop, an error rate or a latency past its
 * threshold, the broker or collector lost when it was reachable before, and the deadline (confirmed then, or
 * rolled back when the operator had to confirm and did not).
 */
export class ConfirmWatch {
  private results = 0;
  private failed = 0;
  private readonly latencies: number[] = [];
  private lastResultAt: number;
  private lastBrokerAt: number;
  private lastCollectorAt: number;

  constructor(
    private readonly pending: Pending,
    private readonly signals: HealthSignals,
    startedAt: number,
  ) {
    [this.lastResultAt, this.lastBrokerAt, this.lastCollectorAt] = [startedAt, startedAt, startedAt];
  }

  private get gates(): Gates {
    return this.pending.doc.gates;
  }

  result(latencyMs: number, at: number): void {
    this.results++;
    this.lastResultAt = at;
    if (this.latencies.length >= LATENCY_SAMPLES) this.latencies.shift();
    this.latencies.push(latencyMs);
  }

  failure(): void {
    this.failed++;
  }

  /** A reason to roll back, 'confirmed' when the window passed, or null to keep watching. */
  verdict(now: number, operatorConfirmed: boolean): { reason: RollbackReason; detail: string } | 'confirmed' | null {
    const g = this.gates;
    const before = this.pending.before ?? { broker: false, collector: false, results: false };
    if (this.signals.brokerConnected()) this.lastBrokerAt = now;
    const collector = this.signals.collectorReachable();
    if (collector !== false) this.lastCollectorAt = now;
    const away = g.unreachableSeconds * 1000;
    if (before.broker && now - this.lastBrokerAt > away)
      return { reason: 'broker-unreachable', detail: `no broker connection for ${g.unreachableSeconds} s (it was connected before)` };
    if (before.collector && now - this.lastCollectorAt > away)
      return { reason: 'collector-unreachable', detail: `no delivery to the collector for ${g.unreachableSeconds} s (it was reachable before)` };
    if (before.results && now - this.lastResultAt > g.maxSilenceSeconds * 1000)
      return { reason: 'results-stopped', detail: `no result for ${g.maxSilenceSeconds} s (there were results before)` };
    const frames = this.results + this.failed;
    if (frames >= MIN_FRAMES_FOR_RATES && this.failed / frames > g.maxErrorRate)
      return { reason: 'error-rate', detail: `${this.failed} of ${frames} frames failed; the gate is ${g.maxErrorRate}` };
    const median = this.medianLatency();
    if (g.maxLatencyMs !== undefined && median !== null && median > g.maxLatencyMs)
      return { reason: 'latency', detail: `median latency ${Math.round(median)} ms; the gate is ${g.maxLatencyMs} ms` };
    if (operatorConfirmed) return 'confirmed';
    if (now < (this.pending.deadline ?? 0)) return null;
    if (g.requireConfirm) return { reason: 'not-confirmed', detail: `not confirmed within ${g.confirmSeconds} s (outpost deploy confirm ${this.pending.id})` };
    return 'confirmed';
  }

  private medianLatency(): number | null {
    if (this.latencies.length < MIN_FRAMES_FOR_RATES / 2) return null;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }
}
