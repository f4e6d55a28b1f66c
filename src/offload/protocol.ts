import { z } from 'zod';
import { decoderFiles, stageSchema, type StageConfig } from '../config/index.js';
import type { PipelineOutput } from '../types.js';
import { refusalsOf } from '../refusals.js';

/**
 * The offload protocol: one HTTP request per frame, POST /v1/run, its body a sealed envelope (crypto/envelope)
 * from the requester's X25519 key to the server's; the answer sealed back the same way. The shared key of
 * each pair is agreed once (box.before, cached) and every message has a fresh random nonce.
 */

/**
 * A stage as the peer must run it: the config of the requester's stage with every file named by its sha256
 * (the ONNX model, a CTC dictionary, a labels file), so a peer only ever reads files it has itself.
 */
export type StageSpec = Omit<StageConfig, 'model'> & { model: string };

const SHA256 = /^[0-9a-f]{64}$/;
const stageSpecSchema = stageSchema
  .extend({ model: z.string().regex(SHA256, 'a model is named by the sha256 of its file') })
  .refine((s) => decoderFiles(s.decoder).every(({ file }) => SHA256.test(file)), 'a dictionary or labels file is named by the sha256 of its file');
const stageSpecsSchema = z.array(stageSpecSchema).min(1).max(4);

const box = z.tuple([z.number(), z.number(), z.number(), z.number()]);
const label = z.string().max(256);
const classScore = z.strictObject({ classIndex: z.number().int(), label, score: z.number() });
const regionsSchema = z
  .strictObject({
    lines: z
      .array(
        z.strictObject({
          text: z.string().max(4096),
          score: z.number(),
          box,
          words: z
            .array(z.strictObject({ text: z.string().max(4096), score: z.number(), box }))
            .max(256)
            .optional(),
        }),
      )
      .max(1000)
      .optional(),
    detections: z
      .array(
        z.strictObject({
          box,
          score: z.number(),
          label,
          classIndex: z.number().int(),
          text: z.string().max(4096).optional(),
          classes: z.array(classScore).max(100).optional(),
        }),
      )
      .max(1000)
      .optional(),
  })
  .nullable();

/** Checks the regions a request carries for stages on crops; throws a one-line reason. */
export function parseRegions(regions: unknown): PipelineOutput | null {
  const r = regionsSchema.safeParse(regions ?? null);
  if (!r.success) throw new Error(`regions: ${r.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  return r.data;
}

/** Checks stages that arrived from a peer; throws a one-line reason. */
export function parseStageSpecs(stages: unknown): StageSpec[] {
  const r = stageSpecsSchema.safeParse(stages);
  if (!r.success) throw new Error(`stages: ${r.error.issues.map((i) => `${i.path.join('.') || '(list)'} ${i.message}`).join('; ')}`);
  return r.data;
}

/** The sha256 of every file a stage needs. */
export function filesOf(stage: StageSpec): string[] {
  return [stage.model, ...decoderFiles(stage.decoder).map((f) => f.file)];
}

/** Sealed inside a request, with the frame's JPEG as payload. */
export interface RunRequest {
  purpose: 'offload-run';
  /** the requester's device id (its keyring name on the server) */
  sender: string;
  messageId: string;
  /** ms since the epoch, the requester's clock */
  sentAt: number;
  /** the requester's pipeline, for logs */
  pipeline: string;
  stages: StageSpec[];
  /** what the stages before these found (boxes, text): for stages on crops; null for a range that starts at the frame */
  regions: PipelineOutput | null;
}

/** Sealed inside an answer (no payload). */
export interface RunAnswer {
  purpose: 'offload-result';
  messageId: string;
  output: PipelineOutput;
  /** inference time on the peer, and all its time on the frame (decoding to the decoded answer, wall clock) */
  inferMs: number;
  processMs: number;
}

/** Sealed inside a file sent to a peer that lacks it (`serve.acceptModels`), the file as payload. */
export interface FileRequest {
  purpose: 'offload-file';
  sender: string;
  messageId: string;
  sentAt: number;
  sha256: string;
}

/** A refusal's JSON body; the detail and what is missing only to a key the server trusts. */
export interface Refusal {
  reason: OffloadRefusal;
  detail?: string;
  /** the sha256 of files it lacks, and whether it takes them (POST /v1/files) */
  missing?: string[];
  send?: boolean;
}

/** Why the server refused a request, and the HTTP status that says so (from the one table, refusals.ts). */
export const OFFLOAD_REFUSALS = refusalsOf([
  'garbage',
  'cannot-open',
  'unknown-key',
  'wrong-sender',
  'expired',
  'replayed',
  'too-large',
  'unknown-model',
  'busy',
  'rate-limited',
  'timed-out',
  'too-many',
  'not-accepted',
  'aborted',
  'failed',
]);
export type OffloadRefusal = keyof typeof OFFLOAD_REFUSALS;
