/** Median of repeated timings: what every bench mode and the optimizer's placement timing report (robust to a noisy shared machine). */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Rounds for reports: `digits` decimals. */
export const rounded = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;
