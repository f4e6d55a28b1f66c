/**
 * A moving average that weighs the newest sample by `weight` (0.2: about the last five count), for latencies
 * that must follow a change without jumping at one outlier. The first sample is taken as it is.
 */
export function movingAverage(old: number | null | undefined, sample: number, weight = 0.2): number {
  return old === null || old === undefined ? sample : old * (1 - weight) + sample * weight;
}
