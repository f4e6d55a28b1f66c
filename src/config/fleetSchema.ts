import { z } from 'zod';
import { LIVE, idSchema as id, selectionRules } from './schemaParts.js';
import { BROKER_URL, KEY_ROLES } from '../vocabulary.js';

/** Config sections for a node in a fleet: the keys it trusts, its MQTT link, and its scheduled jobs. */

/** base64 of exactly 32 bytes (re-encoding must give the same text: no junk Buffer.from would skip). */
const key32 = (what: string) =>
  z
    .string()
    .refine(
      (s) => /^[A-Za-z0-9+/]{43}=$/.test(s) && Buffer.from(s, 'base64').toString('base64') === s,
      `must be ${what}: base64 of 32 bytes (outpost keys show prints it)`,
    );

export const keyringEntrySchema = z.strictObject({
  name: id.describe('who this is: a person, a collector, or a peer node (its device id)'),
  sign: key32('an Ed25519 public key').optional().describe('verifies commands and announcements signed with this key'),
  box: key32('an X25519 public key').optional().describe('seals uploads, snapshots and offloaded frames to this key'),
  roles: z.array(z.enum(KEY_ROLES)).min(1).describe('operator: may command this node; peer: may offload to it; collector: receives its uploads'),
});

/** A topic level made of safe characters only: never a wildcard (+, #), never empty, never a `$` system topic. */
const topicBase = z
  .string()
  .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'levels of letters, digits, "-" and "_" separated by "/" (no wildcards, no leading "$")');

export const mqttSchema = z.strictObject({
  url: z.string().regex(BROKER_URL, 'a broker URL: mqtt://host:1883, mqtts://host:8883, ws://host/mqtt or wss://…'),
  username: z.string().optional(),
  password: z.string().optional().describe('use !file /path to keep it out of the config'),
  ca: z.string().optional().describe('CA certificate file (PEM) for mqtts:// and wss://'),
  cert: z.string().optional().describe('client certificate file (PEM)'),
  key: z.string().optional().describe('client key file (PEM)'),
  baseTopic: topicBase.default('outpost'),
  deviceId: id.optional().describe('default: node.name'),
  keepalive: z.number().int().min(5).max(3600).default(30).describe('seconds'),
  telemetryIntervalSeconds: z.number().min(1).max(3600).default(10).meta(LIVE),
  events: selectionRules('change').describe('per camera name (or "*" for the rest): which results are published on <base>/<device>/events').meta(LIVE),
  homeAssistant: z.boolean().default(false).describe('publish Home Assistant discovery so the node shows up as a device'),
  offlineQueue: z.number().int().min(0).max(100_000).default(1000).describe('telemetry and events kept while the broker is away (oldest dropped, counted)'),
  reconnect: z
    .strictObject({ initialMs: z.number().int().min(100).default(1000), maxMs: z.number().int().min(100).default(60_000) })
    .prefault({})
    .describe('exponential backoff with jitter between connection attempts'),
  commandWindowSeconds: z.number().int().min(5).max(3600).default(120).describe("how far a signed command's issued-at may be from this clock"),
});

export const telemetrySchema = z.strictObject({ mqtt: mqttSchema.optional().describe('absent: no MQTT at all') });

const job = (schedule: string, what: string) =>
  z
    .strictObject({
      enabled: z.boolean().default(true),
      schedule: z.string().default(schedule).describe(`cron expression (node-cron: [sec] min hour day month weekday), ${what}`),
    })
    .prefault({});

export const jobsSchema = z.strictObject({
  rebenchmark: job('0 3 * * 0', 'default Sundays at 03:00').describe(
    "re-time every model's variants into autotune.json; skipped while the governor's policy pauses optional jobs",
  ),
  stateCleanup: job('30 4 * * *', 'default daily at 04:30').describe('remove variant folders of models no longer configured and stale ORT cache entries'),
});

export type MqttConfig = z.infer<typeof mqttSchema>;
export type KeyringEntryConfig = z.infer<typeof keyringEntrySchema>;
export type JobsConfig = z.infer<typeof jobsSchema>;
