import { z } from 'zod';
import { jobsSchema, keyringEntrySchema, telemetrySchema } from './fleetSchema.js';
import { uploadSchema } from './uploadSchema.js';
import { offloadSchema } from './offloadSchema.js';
import { cameraSourceSchema } from './cameraSchema.js';
import { LIVE, idSchema as name } from './schemaParts.js';
import { GOVERNOR_LEVELS, PLACEMENT_NAMES, PRECISIONS, PROVIDERS, RUNGS } from '../vocabulary.js';

/**
 * The one source of truth for every option and its default. `outpost schema` writes the JSON Schema
 * generated from it to config/outpost.schema.json so editors can complete the YAML.
 */

const motionSchema = z.strictObject({
  enabled: z.boolean().default(false),
  threshold: z.number().int().min(1).max(255).default(25).describe('grey-level change that counts a pixel as changed'),
  minArea: z.number().min(0).max(1).default(0.005).describe('fraction of the (unmasked) picture that must change'),
  width: z.number().int().min(16).max(640).default(96).describe('width the frame is shrunk to before comparing'),
  masks: z
    .array(z.tuple([z.number().min(0).max(1), z.number().min(0).max(1), z.number().min(0).max(1), z.number().min(0).max(1)]))
    .default([])
    .describe('regions to ignore, [x0, y0, x1, y1] as fractions of the frame (a clock, a busy road)'),
  maxSkipSeconds: z.number().min(0).default(60).describe('send a frame at least this often even with no motion (0: never)'),
});

const cameraSchema = z.strictObject({
  name,
  source: cameraSourceSchema,
  pipeline: name.default('text').describe('name of the entry under pipelines: that reads this camera'),
  maxFps: z.number().positive().max(120).optional().describe('cap on frames/s sent to the models').meta(LIVE),
  weight: z.number().positive().max(100).default(1).describe('share of the inference engine when cameras compete'),
  motion: motionSchema.prefault({}),
  stallSeconds: z.number().positive().max(3600).default(10).describe('restart a source that delivers nothing for this long'),
  reconnect: z.strictObject({ initialMs: z.number().int().min(10).default(500), maxMs: z.number().int().min(10).default(30_000) }).prefault({}),
  enabled: z.boolean().default(true),
});

const normalisation = z.strictObject({
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  channelOrder: z.enum(['rgb', 'bgr']),
});

const dbDecoder = z.strictObject({
  type: z.literal('db'),
  maxSide: z.number().int().min(32).max(4096).default(960).describe('longest side fed to the detector (multiple of 32)'),
  threshold: z.number().min(0).max(1).default(0.3).describe('probability above which a pixel is text'),
  boxThreshold: z.number().min(0).max(1).default(0.6).describe('mean probability a box needs to be kept'),
  unclipRatio: z.number().min(0).max(10).default(1.6).describe('how far boxes are grown around the shrunk text kernel'),
  minSize: z.number().min(1).default(3).describe('boxes with a shorter side (pixels) are dropped'),
  maxBoxes: z.number().int().min(1).max(1000).default(100),
  mergeGap: z.number().min(0).max(5).default(0.6).describe('join boxes on one row closer than this many line heights (0: never)'),
  normalise: normalisation.default({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'bgr' }),
});

const ctcDecoder = z.strictObject({
  type: z.literal('ctc'),
  dictionary: z.string().min(1).default('builtin:ppocr-keys').describe('one character per line; index 0 is the CTC blank'),
  height: z.number().int().min(8).max(256).default(48),
  maxWidth: z.number().int().min(32).max(4096).default(960),
  batchSize: z.number().int().min(1).max(64).default(8),
  minScore: z.number().min(0).max(1).default(0.5).describe('lines with a lower mean character confidence are dropped'),
  normalise: normalisation.default({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], channelOrder: 'bgr' }),
});

const tensorInput = z.strictObject({
  width: z.number().int().min(8).max(4096).optional().describe("model input width; default: the model's own when fixed"),
  height: z.number().int().min(8).max(4096).optional(),
  resize: z.enum(['fill', 'letterbox']).default('fill').describe('fill stretches; letterbox keeps the aspect and pads'),
  normalise: normalisation.default({ mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'rgb' }),
});

const labels = z
  .union([z.array(z.string()), z.string().min(1)])
  .default([])
  .describe('class names: a list, or a file with one name per line');

const detectorFields = {
  scoreThreshold: z.number().min(0).max(1),
  iouThreshold: z.number().min(0).max(1),
  maxDetections: z.number().int().min(1).max(1000).default(100),
  classAgnostic: z.boolean().default(false).describe('suppress overlapping boxes across classes too'),
  labels,
};

const ssdDecoder = z.strictObject({
  type: z.literal('ssd'),
  input: tensorInput.default({ resize: 'fill', normalise: { mean: [0.498, 0.498, 0.498], std: [0.502, 0.502, 0.502], channelOrder: 'rgb' } }),
  ...detectorFields,
  scoreThreshold: detectorFields.scoreThreshold.default(0.7),
  iouThreshold: detectorFields.iouThreshold.default(0.3),
});

const yoloDecoder = z.strictObject({
  type: z.literal('yolo'),
  layout: z.enum(['auto', 'v5', 'v8']).default('auto').describe('v5: [1,N,5+C]; v8/v11: [1,4+C,N]; auto tells them apart by shape'),
  input: tensorInput.default({ resize: 'letterbox', normalise: { mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'rgb' } }),
  ...detectorFields,
  scoreThreshold: detectorFields.scoreThreshold.default(0.25),
  iouThreshold: detectorFields.iouThreshold.default(0.45),
});

const classifyDecoder = z.strictObject({
  type: z.literal('classify'),
  input: tensorInput.default({ resize: 'fill', normalise: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'rgb' } }),
  topK: z.number().int().min(1).max(100).default(5),
  labels,
  softmax: z
    .union([z.literal('auto'), z.boolean()])
    .default('auto')
    .describe('auto: applied unless the output already sums to 1'),
  batchSize: z.number().int().min(1).max(64).default(8),
});

export const DETECTOR_TYPES = ['db', 'ssd', 'yolo'] as const;

export const stageSchema = z.strictObject({
  name,
  model: name.describe('name of the entry under models:'),
  input: z.enum(['frame', 'crops']).default('frame').describe("the whole frame, or crops of the previous stage's boxes"),
  decoder: z.discriminatedUnion('type', [dbDecoder, ctcDecoder, ssdDecoder, yoloDecoder, classifyDecoder]),
});

const pipelineSchema = z.strictObject({
  stages: z.array(stageSchema).min(1).max(4),
});

const modelOptimizeSchema = z.strictObject({
  enabled: z.boolean().default(false).describe("build variants in the background on first start (state dir, keyed by the model's sha256)"),
  precisions: z.array(z.enum(PRECISIONS)).min(1).default(['fp32', 'int8-dynamic', 'int8-static']),
  calibration: z.string().optional().describe('folder of frames to calibrate on (default: demo-camera frames)'),
  calibrationFrames: z.number().int().min(1).max(1000).default(32),
  heldOut: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(24)
    .describe('frames kept out of calibration for the fidelity guard (topped up from calibration frames to at least 24)'),
  normalise: z.enum(['imagenet', 'imagenet-bgr', 'half', 'ultraface', 'unit']).default('imagenet'),
  size: z
    .string()
    .regex(/^\d+x\d+$/)
    .default('640x480')
    .describe('input size for models with free dimensions'),
  minCosine: z.number().min(0).max(1).default(0.99),
  minTask: z.number().min(0).max(1).default(0.95),
  placements: z
    .array(z.enum(PLACEMENT_NAMES))
    .min(1)
    .optional()
    .describe('int8-static: the float/int8 placements to time (default: all); a slow board may limit the search'),
});

const modelSchema = z.strictObject({
  file: z.string().min(1).describe('an .onnx file, a folder written by `outpost optimize` (manifest.json), or builtin:ppocrv4-det / builtin:ppocrv4-rec'),
  optimize: modelOptimizeSchema.prefault({}),
});

const runtimeSchema = z.strictObject({
  providers: z
    .union([z.literal('auto'), z.array(z.enum(PROVIDERS)).min(1)])
    .default('auto')
    .describe(
      'ORT execution providers in order of preference; auto: every accelerator this build has, then cpu. Each is proven by a session; autotune.json picks per model',
    ),
  providerOptions: z
    .partialRecord(z.enum(PROVIDERS), z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])))
    .default({})
    .describe(
      'options passed to a provider as they are (deviceId, backendPath, preferredLayout …); `outpost doctor` says which ones this onnxruntime-node build reads',
    ),
  threads: z.number().int().min(0).max(256).default(0).describe('intraOpNumThreads; 0 means one per core'),
  cacheOptimizedGraphs: z.boolean().default(true).describe("keep ORT's optimized graph in the state directory"),
  cpuMemArena: z
    .boolean()
    .default(false)
    .describe("ORT's CPU arena: about 20 % more frames/s when the CPU is the limit, 130-150 MB more RSS on the demo (outpost bench memory)"),
  deviceId: z.number().int().min(0).default(0),
  inflightFrames: z.number().int().min(1).max(8).default(2).describe('frames in flight at once: 2 overlaps decode and post-processing with inference'),
});

const statusAuthSchema = z
  .union([
    z.literal('none'),
    z.strictObject({ token: z.string().min(16, 'a status token has at least 16 characters (openssl rand -hex 16)') }),
    z.strictObject({ tokenFile: z.string().describe('file holding the token (first line)') }),
  ])
  .optional()
  .describe(
    "who may read the status page when it listens beyond loopback: a token (Bearer header, ?token= or the cookie the page sets), or 'none' to allow anyone who can reach it",
  );

const statusSchema = z.strictObject({
  enabled: z.boolean().default(true),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8787),
  auth: statusAuthSchema,
  allowedHosts: z
    .array(z.string().min(1))
    .max(64)
    .default([])
    .describe('host names the page may be reached by, besides localhost, IP addresses, status.host and node.name (a DNS-rebinding guard)'),
  staleAfterSeconds: z.number().positive().default(10).describe('/healthz turns 503 when no frame finished for this long').meta(LIVE),
  liveStreamBytes: z
    .number()
    .int()
    .min(16 << 10)
    .default(1 << 20)
    .describe('a live page stream is reset after sending this much (a reading page reconnects): bounds what a page that never reads holds'),
});

const loggingSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').meta(LIVE),
  format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  results: z.boolean().default(true).describe('log every result at info level').meta(LIVE),
});

const levelPolicy = z.strictObject({
  precision: z.enum(RUNGS).describe("precision rung: the optimizer's variant to run at this level"),
  maxFps: z.number().positive().max(120).optional().describe('cap on frames/s per camera at this level'),
  offloadBias: z.number().min(0).max(1).describe('0: keep work local; 1: send every frame a peer can take'),
  pauseOptionalJobs: z.boolean(),
  threads: z
    .number()
    .int()
    .min(0)
    .max(256)
    .optional()
    .describe('intra-op threads at this level (1 about halves CPU per frame: no cross-core sync); default runtime.threads'),
});

const DEFAULT_POLICY = {
  nominal: { precision: 'fp32' as const, offloadBias: 0, pauseOptionalJobs: false },
  warm: { precision: 'int8' as const, offloadBias: 0.25, pauseOptionalJobs: false },
  hot: { precision: 'int8' as const, maxFps: 1, offloadBias: 0.75, pauseOptionalJobs: true, threads: 1 },
  critical: { precision: 'int8' as const, maxFps: 0.2, offloadBias: 1, pauseOptionalJobs: true, threads: 1 },
};

const thresholdsSchema = z.strictObject({ warm: z.number().min(20).max(130), hot: z.number().min(20).max(130), critical: z.number().min(20).max(130) });

const powerSchema = z.strictObject({
  enabled: z.boolean().default(true),
  sysfsRoot: z.string().min(1).default('/').describe('folder that stands for / when reading sensors (fixture trees)'),
  intervalSeconds: z.number().min(0.1).max(600).default(5),
  thresholds: thresholdsSchema.optional().describe('°C where each level starts; default: from trip points, else per board family').meta(LIVE),
  hysteresis: z.number().min(0).max(30).default(5).describe('°C below a threshold before stepping back down').meta(LIVE),
  dwellSeconds: z
    .strictObject({ up: z.number().min(0).default(10), down: z.number().min(0).default(60) })
    .prefault({})
    .describe('how long a new level must hold before it is taken (critical is taken at once)')
    .meta(LIVE),
  trend: z
    .strictObject({ enabled: z.boolean().default(true), lookaheadSeconds: z.number().min(1).default(60), minRisePerMinute: z.number().min(0).default(2) })
    .prefault({})
    .describe('step up early when the temperature, rising this fast, would cross the next threshold within the lookahead')
    .meta(LIVE),
  lowBatteryPercent: z.number().min(0).max(100).default(20).describe('a discharging battery below this is battery-low').meta(LIVE),
  powerStates: z
    .strictObject({
      battery: z.enum(GOVERNOR_LEVELS).default('warm'),
      'battery-low': z.enum(GOVERNOR_LEVELS).default('hot'),
      undervoltage: z.enum(GOVERNOR_LEVELS).default('hot'),
    })
    .prefault({})
    .describe('the least level each power state imposes')
    .meta(LIVE),
  policy: z
    .strictObject({
      nominal: levelPolicy.default(DEFAULT_POLICY.nominal),
      warm: levelPolicy.default(DEFAULT_POLICY.warm),
      hot: levelPolicy.default(DEFAULT_POLICY.hot),
      critical: levelPolicy.default(DEFAULT_POLICY.critical),
    })
    .prefault({})
    .meta(LIVE),
});

export const configSchema = z.strictObject({
  node: z
    .strictObject({
      name: name.default('outpost'),
      stateDir: z.string().min(1).default('/var/lib/outpost'),
      keysDir: z.string().min(1).optional().describe("this node's key pair (outpost keys generate); default <stateDir>/keys"),
      labels: z
        .record(name, z.string().max(64))
        .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels')
        .optional()
        .describe('labels a deployment selects boards by (`outpost deploy create --to site=north`), such as { site: north, camera: door }'),
    })
    .prefault({}),
  keyring: z.array(keyringEntrySchema).default([]).describe('the one list of keys this node trusts, each with its roles'),
  telemetry: telemetrySchema.prefault({}),
  upload: uploadSchema.optional().describe('absent: nothing leaves the board'),
  offload: offloadSchema.optional().describe('absent: every frame runs here and no peer is served'),
  jobs: jobsSchema.prefault({}),
  cameras: z.array(cameraSchema).max(32).default([]),
  models: z.record(name, modelSchema).default({}),
  pipelines: z.record(name, pipelineSchema).default({}),
  runtime: runtimeSchema.prefault({}),
  status: statusSchema.prefault({}),
  logging: loggingSchema.prefault({}),
  power: powerSchema.prefault({}),
});

export type OutpostConfig = z.infer<typeof configSchema>;

/** A one-stage face pipeline (an SSD detector such as UltraFace) with every default filled: what anonymising runs. */
export function faceDetectorPipeline(model: string, minScore: number): z.infer<typeof pipelineSchema> {
  return pipelineSchema.parse({ stages: [{ name: 'faces', model, decoder: { type: 'ssd', scoreThreshold: minScore, labels: ['background', 'face'] } }] });
}
export type CameraConfig = OutpostConfig['cameras'][number];
export type CameraSourceConfig = CameraConfig['source'];
export type MotionConfig = CameraConfig['motion'];
export type PipelineConfig = OutpostConfig['pipelines'][string];
export type StageConfig = PipelineConfig['stages'][number];
export type DbDecoderConfig = Extract<StageConfig['decoder'], { type: 'db' }>;
export type CtcDecoderConfig = Extract<StageConfig['decoder'], { type: 'ctc' }>;
export type SsdDecoderConfig = Extract<StageConfig['decoder'], { type: 'ssd' }>;
export type YoloDecoderConfig = Extract<StageConfig['decoder'], { type: 'yolo' }>;
export type ClassifyDecoderConfig = Extract<StageConfig['decoder'], { type: 'classify' }>;
export type TensorInputConfig = SsdDecoderConfig['input'];
export type RuntimeConfig = OutpostConfig['runtime'];
export type ModelConfig = OutpostConfig['models'][string];
export type PowerConfig = OutpostConfig['power'];
export type LevelPolicy = PowerConfig['policy']['nominal'];

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
