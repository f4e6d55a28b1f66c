import type { PipelineOutput } from '../types.js';
import type { StageSpec } from './protocol.js';

/** A message id longer than this is refused before it is remembered (the client sends 16 characters). */
export const MAX_MESSAGE_ID = 64;

/**
 * Token buckets per (peer, address): `perSecond` sustained, bursts of twice that. Taken before an envelope is
 * opened, so they bound the CPU a peer's requests cost. At most `maxBuckets`: the least recently used leave first
 * (a full bucket again next time), counted in `evicted`.
 */
export class PeerRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  evicted = 0;

  constructor(
    private readonly perSecond: () => number,
    private readonly maxBuckets = 4096,
  ) {}

  /** Takes a token for `who` at `now` (ms); false when its bucket is empty. */
  take(who: string, now: number): boolean {
    const rate = this.perSecond();
    const burst = Math.max(1, 2 * rate);
    const b = this.buckets.get(who) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.delete(who); // re-inserted last: the map's order is least recently used first
    this.buckets.set(who, b);
    if (this.buckets.size > this.maxBuckets) {
      this.buckets.delete(this.buckets.keys().next().value!);
      this.evicted++;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** The most boxes a detector stage may produce, or 0 for a stage that produces none. */
function boxesOf(stage: StageSpec): number {
  const d = stage.decoder;
  if (d.type === 'db') return d.maxBoxes;
  if (d.type === 'ssd' || d.type === 'yolo') return d.maxDetections;
  return 0;
}

/**
 * Why a request would run a crop stage on more than `maxCrops` regions, or null: the regions it sends, or a
 * detector in its stages allowed more boxes than that ahead of a crop stage. Judged before any work starts.
 */
export function tooManyCrops(stages: StageSpec[], regions: PipelineOutput | null, maxCrops: number): string | null {
  if (!stages.some((s) => s.input === 'crops')) return null;
  const sent = (regions?.lines?.length ?? 0) + (regions?.detections?.length ?? 0);
  if (sent > maxCrops) return `${sent} regions sent for crop stages, more than the ${maxCrops} this peer runs (offload.serve.maxCrops)`;
  const detector = stages.find((s, i) => boxesOf(s) > maxCrops && stages.slice(i + 1).some((later) => later.input === 'crops'));
  return detector
    ? `stage ${detector.name} may find ${boxesOf(detector)} boxes for a crop stage, more than the ${maxCrops} this peer runs (offload.serve.maxCrops): ask with fewer`
    : null;
}

/** Rejects with `onTimeout()` when `work` has not settled within `ms`; `work` itself is left to finish (its rejection handled). */
export function within<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
