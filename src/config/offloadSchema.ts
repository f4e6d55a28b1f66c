import { z } from 'zod';
import { idSchema as id } from './schemaParts.js';

/** Config `offload:`: serving frames for peers, and sending heavy frames to them. */

export const offloadSchema = z.strictObject({
  serve: z
    .strictObject({
      enabled: z.boolean().default(false),
      host: z.string().default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(8788),
      maxQueue: z.number().int().min(1).max(256).default(4).describe('requests running or waiting at once; past it: 503, counted'),
      maxBodyBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 << 20)
        .default(8 << 20),
      advertise: z
        .string()
        .regex(/^https?:\/\//, 'http://host:port')
        .optional()
        .describe('the URL peers reach this server at (default: http://<first LAN IPv4>:<port>)'),
      /** announce this server over MQTT (telemetry.mqtt) every interval */
      announceSeconds: z.number().min(1).max(3600).default(30),
      acceptModels: z
        .boolean()
        .default(false)
        .describe('take a model (or dictionary, labels file) it lacks from a peer, checked against its sha256, kept in the state dir'),
      modelCacheBytes: z
        .number()
        .int()
        .min(1 << 20)
        .default(512 << 20)
        .describe('bound on the files taken from peers; the least recently used leave first'),
      maxPixels: z
        .number()
        .int()
        .min(1)
        .max(1 << 28)
        .default(16_000_000)
        .describe("a peer's frame with more pixels (read from its JPEG or PNG header, before decoding) is refused: 413"),
      maxCrops: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(100)
        .describe('regions a crop stage may run on per request (sent, or a detector asked for more boxes): past it, 413'),
      runTimeoutMs: z
        .number()
        .int()
        .min(1)
        .max(600_000)
        .default(10_000)
        .describe("a peer's frame still running after this is answered 504 and its result dropped (its work still counts in the queue)"),
      maxRequestsPerSecond: z
        .number()
        .min(0.1)
        .max(10_000)
        .default(30)
        .describe('per peer and address, sustained (a burst of twice as many), counted before a request is opened; past it: 429'),
    })
    .prefault({}),
  peers: z
    .array(z.strictObject({ name: id.describe('a keyring entry with role peer (its keys)'), url: z.string().regex(/^https?:\/\//, 'http://host:8788') }))
    .default([])
    .describe('peers to use without a broker; announced ones are added when telemetry.mqtt is set'),
  stages: z
    .record(id, z.array(id).min(1))
    .default({})
    .describe('per pipeline, the stages a peer may run, in order: the heavy detector, the recogniser on crops, or all of them'),
  placement: z
    .strictObject({
      marginMs: z.number().min(0).default(10).describe('a peer must beat running here by this much'),
      timeoutMs: z.number().int().min(50).default(2000).describe('then the frame runs here (still answered once)'),
      maxInflightPerPeer: z.number().int().min(1).max(64).default(2),
    })
    .prefault({}),
  breaker: z
    .strictObject({ failures: z.number().int().min(1).default(3), restSeconds: z.number().min(1).default(30) })
    .prefault({})
    .describe('a peer that fails this many times in a row rests, then must pass a known-answer probe'),
  probeSeconds: z.number().min(1).max(86_400).default(60).describe('how often each peer is asked a frame whose answer is known'),
  windowSeconds: z.number().min(1).max(600).default(30).describe("how far a request's time may be from the server's clock"),
});

export type OffloadConfig = z.infer<typeof offloadSchema>;
