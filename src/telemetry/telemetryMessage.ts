/**
 * What of /status changes between two telemetry messages and what does not. The facts (versions, provider
 * attempts, sensor inventory, thresholds, built variants) go once, retained, on `<base>/<device>/facts`; the
 * telemetry carries the figures, without nulls or empty lists, with latencies in whole ms and without the per-step
 * breakdown (on /status and /metrics): under 1 KB for the demo config, where /status as it is was 4.4 KB every
 * interval (38 MB a day on a cellular plan at 10 s).
 */
const FACT_PATHS: readonly (readonly string[])[] = [
  ['version'],
  ['config'],
  ['labels'],
  ['ortVersion'],
  ['providerAttempts'],
  ['power', 'governor', 'thresholds'],
  ['power', 'sensors', 'board'],
  ['power', 'sensors', 'missing'],
  ['power', 'policy'],
  ['precision', 'variants'],
  ['mqtt', 'url'],
  ['service', 'notify'],
  ['service', 'watchdogSeconds'],
];

/** Left out of telemetry, still on /status: the same value twice, or detail a fleet view does not need every interval. */
const OMITTED: readonly (readonly string[])[] = [
  ['power', 'sensors', 'powerState'],
  ['latencyMs', 'decode'],
  ['latencyMs', 'preprocess'],
  ['latencyMs', 'post'],
  ['memory'],
  ['imageCacheBytes'],
];

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Splits a status into its facts (nested as in /status) and the rest, neither changing `status`. */
export function splitStatus(status: Json): { facts: Json; figures: Json } {
  const figures = structuredClone(status);
  const facts: Json = {};
  for (const path of FACT_PATHS) {
    const parent = parentOf(figures, path);
    const last = path[path.length - 1];
    if (!isObject(parent) || !(last in parent)) continue;
    const into = path.slice(0, -1).reduce<Json>((at, k) => (at[k] = isObject(at[k]) ? at[k] : {}) as Json, facts);
    into[last] = parent[last];
    delete parent[last];
  }
  for (const path of OMITTED) {
    const parent = parentOf(figures, path);
    if (isObject(parent)) delete parent[path[path.length - 1]];
  }
  return { facts, figures: compact(figures) as Json };
}

const parentOf = (obj: Json, path: readonly string[]): unknown => path.slice(0, -1).reduce<unknown>((at, k) => (isObject(at) ? at[k] : undefined), obj);

const isEmpty = (v: unknown) => v === null || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);

/** Nulls and empty lists dropped (absent means unknown or none), latencies and delays in whole ms. */
function compact(v: unknown, key = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => compact(x));
  if (isObject(v))
    return Object.fromEntries(
      Object.entries(v)
        .map(([k, x]) => [k, compact(x, k === 'latencyMs' || k === 'eventLoopDelayMs' ? 'ms' : key)])
        .filter(([, x]) => !isEmpty(x)),
    );
  return key === 'ms' && typeof v === 'number' ? Math.round(v) : v;
}
