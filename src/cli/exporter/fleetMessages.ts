import { z } from 'zod';
import { DEVICE_ID, GOVERNOR_LEVELS, RUNGS } from '../../vocabulary.js';

/**
 * What the exporter reads of the nodes' `<base>/<device>/status` and `<base>/<device>/telemetry`. Neither is
 * signed (a node signs its answers and uploads, not its figures): whoever the broker lets publish there is
 * believed, so each message is bounded in size before it is parsed, checked field by field, and dropped whole
 * (with a counted reason) when any field it uses is not what a node sends.
 */
export const MAX_MESSAGE_BYTES = 64 << 10;

/** Why a message was not taken: the exporter's `outpost_exporter_messages_ignored_total{reason}`. */
export const IGNORED = ['too-large', 'bad-device-id', 'not-json', 'invalid', 'device-cap'] as const;
export type IgnoredReason = (typeof IGNORED)[number];

const count = z.number().min(0).max(Number.MAX_SAFE_INTEGER);
const name = z.string().max(128);
const few = <T extends z.ZodType>(of: T, most: number) => z.record(name, of).refine((r) => Object.keys(r).length <= most, `at most ${most} entries`);

/** A node label (`node.labels` of its config): a Prometheus label name and a short value. */
const labels = few(z.string().max(128), 16).refine((r) => Object.keys(r).every((k) => /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(k)), 'label names');

const statusSchema = z.object({
  state: z.enum(['online', 'offline']),
  version: z.string().max(64).optional(),
  provider: z.string().max(32).nullable().optional(),
  labels: labels.optional(),
});

/** The retained facts: only the node's labels are read (`node.labels`, published once per connect). */
const factsSchema = z.object({ labels: labels.optional() });
type FactsMessage = z.infer<typeof factsSchema>;

const telemetrySchema = z.object({
  intervalSeconds: z.number().min(0.1).max(86_400).optional(),
  cameras: few(z.object({ fps: z.number().min(0).max(10_000).optional() }), 256).optional(),
  latencyMs: z.object({ total: z.object({ p95: z.number().min(0).max(1e9).nullable().optional() }).optional() }).optional(),
  power: z
    .object({
      governor: z.object({ level: z.enum(GOVERNOR_LEVELS).optional(), temperatureC: z.number().min(-273).max(500).nullable().optional() }).optional(),
    })
    .nullable()
    .optional(),
  precision: z.object({ rung: z.enum(RUNGS).optional() }).optional(),
  upload: z.object({ pending: count.optional(), dropped: few(count, 32).optional(), delivered: count.optional() }).optional(),
  offload: z.object({ peers: few(z.object({ framesPerSecond: z.number().min(0).max(10_000).optional() }), 256).optional() }).optional(),
  labels: labels.optional(),
});

export type StatusMessage = z.infer<typeof statusSchema>;
export type TelemetryMessage = z.infer<typeof telemetrySchema>;

/** A message read: a device's status (null: its retained status was cleared) or telemetry, or why it was not. */
export type FleetMessage =
  | { device: string; kind: 'status'; body: StatusMessage | null }
  | { device: string; kind: 'telemetry'; body: TelemetryMessage }
  | { device: string; kind: 'facts'; body: FactsMessage }
  | { ignored: IgnoredReason };

/** The device and kind of a topic under `prefix` (`<base>/`), or null when the topic is not one the exporter reads. */
export type MessageKind = 'status' | 'telemetry' | 'facts';
const KINDS: readonly string[] = ['status', 'telemetry', 'facts'] satisfies MessageKind[];

export function topicOf(topic: string, prefix: string): { device: string; kind: MessageKind } | null {
  if (!topic.startsWith(prefix)) return null;
  const [device, kind, extra] = topic.slice(prefix.length).split('/');
  if (extra !== undefined || !KINDS.includes(kind)) return null;
  return { device, kind: kind as MessageKind };
}

/** Reads one message of `device`, bounded before it is parsed. */
export function readMessage(device: string, kind: MessageKind, payload: Buffer): FleetMessage {
  if (payload.length > MAX_MESSAGE_BYTES) return { ignored: 'too-large' };
  if (!DEVICE_ID.test(device)) return { ignored: 'bad-device-id' };
  if (kind === 'status' && payload.length === 0) return { device, kind, body: null };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ignored: 'not-json' };
  }
  if (kind === 'status') {
    const s = statusSchema.safeParse(json);
    return s.success ? { device, kind, body: s.data } : { ignored: 'invalid' };
  }
  if (kind === 'facts') {
    const f = factsSchema.safeParse(json);
    return f.success ? { device, kind, body: f.data } : { ignored: 'invalid' };
  }
  const t = telemetrySchema.safeParse(json);
  return t.success ? { device, kind, body: t.data } : { ignored: 'invalid' };
}
