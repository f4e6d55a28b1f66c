import { z } from 'zod';
import { DEVICE_ID } from '../vocabulary.js';

/** A deployment message (signed JSON) larger than this is refused before it is parsed: well under MQTT's 256 KiB cap. */
export const MAX_DEPLOYMENT_BYTES = 128 * 1024;
/** A full config file a deployment may carry. */
export const MAX_CONFIG_BYTES = 64 * 1024;
/** The largest file (a model) a deployment may fetch. */
export const MAX_FILE_BYTES = 512 * 1024 ** 2;

/**
 * Files sent over the broker go as retained chunks of this size on `<base>/files/<sha256>/<index>`: well under
 * the 256 KiB a node takes in one MQTT message (and Mosquitto's default limits), each chunk pinned by its own sha256.
 */
export const CHUNK_BYTES = 128 * 1024;

export const DEPLOYMENT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** A file's name: one plain level (it is stored under the state folder by its sha256; the name is what the config refers to). */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const fileSchema = z
  .strictObject({
    name: z.string().regex(FILE_NAME, 'one plain name (letters, digits, ".", "-", "_"); no folders, no ".."'),
    sha256: z.string().regex(SHA256, '64 lowercase hex digits'),
    size: z.number().int().min(1).max(MAX_FILE_BYTES),
    /** where to fetch it; or */
    url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    /** the sha256 of each CHUNK_BYTES chunk published on the broker by `outpost deploy create` */
    chunks: z
      .array(z.string().regex(SHA256))
      .max(Math.ceil(MAX_FILE_BYTES / CHUNK_BYTES))
      .optional(),
    /** the config's model this file becomes (models.<model>.file); it is shadow-run before it serves */
    model: z.string().regex(DEVICE_ID).optional(),
  })
  .refine((f) => (f.url === undefined) !== (f.chunks === undefined), 'give url or chunks (one of them)')
  .refine((f) => !f.chunks || f.chunks.length === Math.ceil(f.size / CHUNK_BYTES), `chunks: one sha256 per ${CHUNK_BYTES} bytes of size`);

export const gatesSchema = z.strictObject({
  /** how long the board watches itself after applying before the deployment counts as confirmed */
  confirmSeconds: z
    .number()
    .min(1)
    .max(7 * 86400)
    .default(600),
  /** confirmed only by `outpost deploy confirm` within the window; else rolled back */
  requireConfirm: z.boolean().default(false),
  /** results stop: none for this long while there were results before */
  maxSilenceSeconds: z.number().min(1).default(30),
  /** failed frames / (results + failed frames) over the window */
  maxErrorRate: z.number().min(0).max(1).default(0.5),
  /** median capture-to-result latency of the window's results */
  maxLatencyMs: z.number().min(1).optional(),
  /** the broker (or the collector) unreachable this long when it was reachable before */
  unreachableSeconds: z.number().min(1).default(20),
  /** share of shadow-run frames whose answers agree with the serving model's */
  minAgreement: z.number().min(0).max(1).default(0.9),
  /** how many real frames the shadow run compares on */
  shadowFrames: z.number().int().min(1).max(64).default(8),
});

export const deploymentSchema = z.strictObject({
  id: z.string().regex(DEPLOYMENT_ID, 'letters, digits, ".", "-" and "_" (at most 64)'),
  targets: z
    .strictObject({ devices: z.array(z.string().regex(DEVICE_ID)).max(10_000).optional(), labels: z.record(z.string(), z.string()).optional() })
    .refine((t) => t.devices || t.labels, 'name devices or labels'),
  config: z.union([z.strictObject({ file: z.string().max(MAX_CONFIG_BYTES) }), z.strictObject({ patch: z.record(z.string(), z.unknown()) })]).optional(),
  files: z.array(fileSchema).max(16).default([]),
  gates: gatesSchema.prefault({}),
});

export type Deployment = z.infer<typeof deploymentSchema>;
export type Gates = z.infer<typeof gatesSchema>;
export type DeployFile = z.infer<typeof fileSchema>;

/** Whether a board with this id and these labels is one a deployment targets. */
export function targets(d: Pick<Deployment, 'targets'>, device: string, labels: Readonly<Record<string, string>>): boolean {
  if (d.targets.devices && !d.targets.devices.includes(device)) return false;
  return Object.entries(d.targets.labels ?? {}).every(([k, v]) => labels[k] === v);
}

/** `--to cam-01,cam-02` (device ids) or `--to site=north,camera=door` (labels): the document's targets. */
export function parseSelector(selector: string): Deployment['targets'] {
  const parts = selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const labels = parts.filter((p) => p.includes('='));
  if (labels.length === 0) return { devices: parts };
  if (labels.length !== parts.length) throw new Error(`--to ${selector}: either device ids or key=value labels, not both`);
  return { labels: Object.fromEntries(labels.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)])) };
}
