import { editDistance } from '../editDistance.js';
import type { z } from 'zod';

/** Small readers over zod 4's internal definitions, used for "did you mean" hints and env overrides. */

type Def = {
  type: string;
  innerType?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  keyType?: Schema;
  valueType?: Schema;
  options?: Schema[];
  in?: Schema;
  entries?: Record<string, string | number>;
};
type Schema = z.ZodType & { _zod: { def: Def } };

function unwrap(schema: Schema): Schema {
  let s = schema;
  for (;;) {
    const def = s._zod.def;
    if (def.innerType && ['default', 'optional', 'nullable', 'prefault', 'readonly', 'catch'].includes(def.type)) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
}

function objectOptions(schema: Schema, data: unknown): Schema[] {
  const s = unwrap(schema);
  const def = s._zod.def;
  if (def.type === 'object') return [s];
  if (def.type === 'union' && def.options) {
    const all = def.options.flatMap((o) => objectOptions(o, data));
    const tag = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).type : undefined;
    const matching = all.filter((o) => {
      const t = o._zod.def.shape?.type;
      return t !== undefined && t.safeParse(tag).success;
    });
    return matching.length > 0 ? matching : all;
  }
  return [];
}

/** The schema at `path`, following the data to pick union members; undefined when the path leaves the schema. */
function schemaAt(root: z.ZodType, path: readonly PropertyKey[], data: unknown): z.ZodType | undefined {
  let s: Schema | undefined = root as Schema;
  let d: unknown = data;
  for (const key of path) {
    if (!s) return undefined;
    const u = unwrap(s);
    const def = u._zod.def;
    const child: unknown = typeof d === 'object' && d !== null ? (d as Record<PropertyKey, unknown>)[key] : undefined;
    if (def.type === 'array' && typeof key === 'number') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else
      s = objectOptions(u, d)
        .map((o) => o._zod.def.shape?.[String(key)])
        .find((x) => x !== undefined);
    d = child;
  }
  return s;
}

/** Keys an object at `path` accepts. */
export function knownKeysAt(root: z.ZodType, path: readonly PropertyKey[], data: unknown): string[] {
  const at = schemaAt(root, path, data);
  const d = path.reduce<unknown>((acc, k) => (typeof acc === 'object' && acc !== null ? (acc as Record<PropertyKey, unknown>)[k] : undefined), data);
  if (!at) return [];
  const keyType = unwrap(at as Schema)._zod.def.keyType;
  if (keyType?._zod.def.entries) return Object.values(keyType._zod.def.entries).map(String); // a record keyed by an enum
  return [...new Set(objectOptions(at as Schema, d).flatMap((o) => Object.keys(o._zod.def.shape ?? {})))];
}

/** Paths of settings that plain objects lead to (arrays and records end the walk): the env-overridable ones. */
export function leafPaths(root: z.ZodType, prefix: string[] = []): { path: string[]; schema: z.ZodType }[] {
  const u = unwrap(root as Schema);
  const shape = u._zod.def.type === 'object' ? u._zod.def.shape : undefined;
  if (!shape) return [{ path: prefix, schema: root }];
  return Object.entries(shape).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Whether a schema, or a wrapper around it (default, optional), carries `.meta({ live: true })`. */
function carriesLive(schema: Schema): boolean {
  let s: Schema | undefined = schema;
  while (s) {
    if ((s.meta() as { live?: boolean } | undefined)?.live) return true;
    const def: Def = s._zod.def;
    s =
      def.innerType && ['default', 'optional', 'nullable', 'prefault', 'readonly', 'catch'].includes(def.type)
        ? def.innerType
        : def.type === 'pipe'
          ? def.in
          : undefined;
  }
  return false;
}

/** The settings marked live in the schema, as `cameras[].maxFps` / `power.policy` paths (everything below a live object is live). */
export function liveSettingPaths(root: z.ZodType, prefix = ''): string[] {
  const s = root as Schema;
  if (prefix && carriesLive(s)) return [prefix];
  const u = unwrap(s);
  const def = u._zod.def;
  if (def.type === 'object' && def.shape) return Object.entries(def.shape).flatMap(([k, v]) => liveSettingPaths(v, prefix ? `${prefix}.${k}` : k));
  if (def.type === 'array' && def.element) return liveSettingPaths(def.element, `${prefix}[]`);
  if (def.type === 'record' && def.valueType) return liveSettingPaths(def.valueType, `${prefix}.*`);
  if (def.type === 'union' && def.options) return [...new Set(def.options.flatMap((o) => liveSettingPaths(o, prefix)))];
  return [];
}

/** Whether a changed setting (`cameras[2].maxFps`, `power.policy.hot.maxFps`) is at or below a live one. */
export function isLivePath(root: z.ZodType, path: string): boolean {
  const p = path.replace(/\[\d+\]/g, '[]');
  return liveSettingPaths(root).some((l) => {
    const re = new RegExp(`^${l.replace(/[.[\]]/g, (c) => `\\${c}`).replace(/\\\.\*/g, '\\.[^.[]+')}(?=$|[.[])`);
    return re.test(p);
  });
}

/** `no camera named "x" (did you mean "y"?); defined: a, b` */
export function refMessage(kind: string, value: string, known: string[]): string {
  const hint = closest(value, known);
  return `no ${kind} named "${value}"${hint ? ` (did you mean "${hint}"?)` : ''}; defined: ${known.join(', ') || 'none'}`;
}
