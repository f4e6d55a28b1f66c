import { join } from 'node:path';
import { OutpostError } from '../errors.js';
import type { OutpostConfig } from './schema.js';
import type { UploadConfig } from './uploadSchema.js';

/** The collector's public keys (base64) from its keyring entry: `sign` checks its answers, items are sealed to `box`. */
export interface CollectorKeys {
  box: string;
  sign: string;
}

type Collector = UploadConfig['collector'] & { keys: CollectorKeys };

/** `upload:` once checked: the collector's keys found, and its urls (`url` first, then `urls`) when the transport is http. */
export type ResolvedUploadConfig = Omit<UploadConfig, 'transport' | 'collector'> &
  ({ transport: 'http'; collector: Collector & { urls: [string, ...string[]] } } | { transport: 'mqtt'; collector: Collector });

/**
 * The configuration as the loader returns it: what its checks guaranteed is required here (the keys folder, the
 * collector's keys), and what is derived (the device id) is worked out once, in this file.
 */
export type ResolvedConfig = Omit<OutpostConfig, 'node' | 'upload'> & {
  node: OutpostConfig['node'] & { keysDir: string; deviceId: string };
  upload?: ResolvedUploadConfig;
};

/** Fields worked out here, never written in the file: a reload compares settings, not these. */
export const DERIVED_PATHS = ['node.deviceId', 'upload.collector.keys'] as const;

/** The name this node goes by on the broker, to peers and to the collector. */
export const deviceIdOf = (cfg: Pick<OutpostConfig, 'node' | 'telemetry'>): string => cfg.telemetry.mqtt?.deviceId ?? cfg.node.name;

/**
 * A checked configuration, resolved. The loader's checks (networkChecks.ts) make the errors below unreachable
 * from a file; a config built in code without them is told what it lacks.
 */
export function resolveConfig(cfg: OutpostConfig): ResolvedConfig {
  const node = { ...cfg.node, keysDir: cfg.node.keysDir ?? join(cfg.node.stateDir, 'keys'), deviceId: deviceIdOf(cfg) };
  return { ...cfg, node, upload: cfg.upload && resolveUpload(cfg.upload, cfg.keyring) };
}

function resolveUpload(up: UploadConfig, keyring: OutpostConfig['keyring']): ResolvedUploadConfig {
  const entry = keyring.find((k) => k.name === up.collector.key);
  if (!entry?.box || !entry.sign) throw unresolved('upload.collector.key', `keyring entry ${up.collector.key} with a box and a sign key`);
  const collector = { ...up.collector, keys: { box: entry.box, sign: entry.sign } };
  if (up.transport === 'mqtt') return { ...up, transport: 'mqtt', collector };
  const [first, ...rest] = [...new Set([...(up.collector.url ? [up.collector.url] : []), ...(up.collector.urls ?? [])])];
  if (!first) throw unresolved('upload.collector.url', "the collector's url or urls (transport http)");
  return { ...up, transport: 'http', collector: { ...collector, urls: [first, ...rest] } };
}

const unresolved = (path: string, what: string) => new OutpostError('OUTPOST_E_CONFIG', `${path}: needs ${what}`);
