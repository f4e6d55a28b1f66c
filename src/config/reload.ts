import { DERIVED_PATHS, type ResolvedConfig } from './resolve.js';
import { configSchema } from './schema.js';
import { isLivePath, liveSettingPaths } from './schemaWalk.js';

/** Settings a SIGHUP applies without a restart, read from the schema's `live` marks. */
export const LIVE_SETTINGS: readonly string[] = liveSettingPaths(configSchema);

export function isLiveSetting(path: string): boolean {
  return isLivePath(configSchema, path);
}

export interface ReloadPlan {
  /** Changed settings that take effect now. */
  applied: string[];
  /** Changed settings that wait for a restart. */
  needRestart: string[];
  /** What the daemon runs from now on: the new live settings, every restart-only one kept at its running value. */
  effective: ResolvedConfig;
}

/**
 * Compares the new configuration with the one running. Restart-only settings keep their running values until a
 * restart, so /status never shows a value that is not in effect, and reverting one to its running value is no change.
 */
export function planReload(running: Readonly<ResolvedConfig>, next: Readonly<ResolvedConfig>): ReloadPlan {
  const changed = diffPaths({ ...running, keyring: [] }, { ...next, keyring: [] }).filter((p) => !DERIVED_PATHS.some((d) => p === d || p.startsWith(`${d}.`)));
  const applied = changed.filter(isLiveSetting);
  const needRestart = [...changed.filter((p) => !isLiveSetting(p)), ...keyringChanges(running.keyring, next.keyring)];
  const effective = structuredClone(running) as ResolvedConfig;
  for (const path of applied) setPath(effective, path, structuredClone(getPath(next, path)));
  return { applied, needRestart, effective };
}

/**
 * The keyring compared entry by entry name (`keyring.ops (added)`): index paths would name every entry after
 * an inserted one. The keyring is restart-only.
 */
function keyringChanges(running: readonly { name: string }[], next: readonly { name: string }[]): string[] {
  const before = new Map(running.map((k) => [k.name, JSON.stringify(k)]));
  const after = new Map(next.map((k) => [k.name, JSON.stringify(k)]));
  const names = [...new Set([...before.keys(), ...after.keys()])];
  return names.flatMap((n) => {
    const [b, a] = [before.get(n), after.get(n)];
    if (b === a) return [];
    return [`keyring.${n} (${b === undefined ? 'added' : a === undefined ? 'removed' : 'changed'})`];
  });
}

type Key = string | number;

function parsePath(path: string): Key[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]));
}

function getPath(obj: unknown, path: string): unknown {
  return parsePath(path).reduce<unknown>((cur, k) => (cur as Record<Key, unknown> | undefined)?.[k], obj);
}

function setPath(obj: object, path: string, value: unknown): void {
  const keys = parsePath(path);
  const parent = keys.slice(0, -1).reduce<Record<Key, unknown>>((cur, k) => cur[k] as Record<Key, unknown>, obj as Record<Key, unknown>);
  const last = keys[keys.length - 1];
  if (value === undefined) delete parent[last];
  else parent[last] = value;
}

function diffPaths(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return Object.is(a, b) ? [] : [path];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const isArr = Array.isArray(a);
  return [...keys].flatMap((k) =>
    diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], isArr ? `${path}[${k}]` : path ? `${path}.${k}` : k),
  );
}
