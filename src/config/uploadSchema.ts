import { z } from 'zod';
import { LIVE, fraction, idSchema as id, selectionRules } from './schemaParts.js';

/** Config `upload:`: what leaves the board, sealed, through a crash-safe outbox, to whom, and how fast. */

const collectorUrl = z.string().regex(/^https?:\/\//, 'http:// or https:// URL of outpost collect');

export const uploadSchema = z.strictObject({
  collector: z.strictObject({
    url: collectorUrl.optional().describe('for transport http'),
    urls: z
      .array(collectorUrl)
      .min(1)
      .max(16)
      .optional()
      .describe('for transport http: several collectors (after url, if both are given); a batch goes to the next when one cannot be reached'),
    key: id.describe('name of the keyring entry (role collector): items are sealed to its box key, its answers checked with its sign key'),
  }),
  transport: z
    .enum(['http', 'mqtt'])
    .default('http')
    .describe("mqtt: publish to <base>/<device>/upload on telemetry.mqtt's broker, for sites where only the broker is reachable"),
  select: selectionRules('all').describe('per camera name (or "*" for the rest): which results become items').meta(LIVE),
  frames: z
    .strictObject({
      include: z.boolean().default(false),
      maxWidth: z.number().int().min(32).max(8192).default(640),
      quality: z.number().int().min(10).max(100).default(80),
    })
    .prefault({})
    .describe('upload the frame as a JPEG beside the result (anonymised first)'),
  anonymise: z
    .strictObject({
      faces: z
        .strictObject({
          model: id.describe('a face detector under models: (an SSD such as UltraFace)'),
          minScore: fraction.default(0.6),
          method: z.enum(['blur', 'pixelate', 'fill']).default('blur'),
          grow: z.number().min(0).max(1).default(0.15).describe('grow each face box by this fraction on every side'),
        })
        .optional(),
      regions: z
        .array(z.tuple([fraction, fraction, fraction, fraction]))
        .default([])
        .describe('[x0, y0, x1, y1] fractions of the frame, always hidden'),
      method: z.enum(['blur', 'pixelate', 'fill']).default('fill').describe('how the fixed regions are hidden'),
    })
    .prefault({}),
  outbox: z
    .strictObject({
      maxBytes: z
        .number()
        .int()
        .min(1 << 20)
        .default(256 << 20),
      maxAgeHours: z.number().positive().default(72).describe('items older than this are dropped (counted), delivered or not'),
      whenFull: z.enum(['drop-oldest', 'refuse-new']).default('drop-oldest'),
    })
    .prefault({}),
  delivery: z
    .strictObject({
      bandwidthKBps: z.number().min(0).default(0).describe('average upload cap in KB/s (0: none)'),
      batchItems: z.number().int().min(1).max(1000).default(50),
      batchBytes: z
        .number()
        .int()
        .min(1024)
        .max(16 << 20)
        .default(1 << 20),
      retry: z.strictObject({ initialMs: z.number().int().min(10).default(1000), maxMs: z.number().int().min(10).default(300_000) }).prefault({}),
      timeoutSeconds: z.number().positive().default(30),
    })
    .prefault({}),
});

export type UploadConfig = z.infer<typeof uploadSchema>;

const key32 = z
  .string()
  .refine(
    (s) => /^[A-Za-z0-9+/]{43}=$/.test(s) && Buffer.from(s, 'base64').toString('base64') === s,
    'must be base64 of 32 bytes (outpost keys show prints it)',
  );

/** `outpost collect --trust FILE`: the devices a collector accepts items from, in the keyring's format (their sign key identifies them). */
export const trustListSchema = z.array(
  z.strictObject({
    name: id.describe('the device id its items carry'),
    sign: key32.describe('the Ed25519 key it signs items with'),
    box: key32.optional(),
    roles: z.array(z.string()).optional(),
  }),
);

export type TrustListEntry = z.infer<typeof trustListSchema>[number];
