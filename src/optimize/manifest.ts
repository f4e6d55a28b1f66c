import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { OutpostError, errorMessage } from '../errors.js';
import { PRECISIONS, PROVIDERS, RUNGS } from '../vocabulary.js';

export const MANIFEST = 'manifest.json';
export const AUTOTUNE = 'autotune.json';

const fidelitySchema = z.object({
  frames: z.number().int().min(0),
  heldOut: z.number().int().min(0).optional(),
  framesWanted: z.number().int().min(0).optional(),
  cosine: z.number(),
  maxAbs: z.number(),
  task: z.object({ kind: z.string(), metric: z.string(), value: z.number(), low95: z.number().optional() }).nullable(),
});

const variantSchema = z.object({
  precision: z.enum(PRECISIONS),
  file: z.string(),
  sha256: z.string(),
  bytes: z.number().int().min(0),
  quantized: z.record(z.string(), z.number()),
  skipped: z.record(z.string(), z.string()),
  fidelity: fidelitySchema.nullable(),
  accepted: z.boolean(),
  reason: z.string().nullable(),
  /** int8-static: the float/int8 placement chosen by timing each on this board (one thread, median ms per run). */
  placement: z.object({ chosen: z.string(), msPerRun: z.record(z.string(), z.number()) }).optional(),
});

const manifestSchema = z.object({
  source: z.object({ file: z.string(), sha256: z.string(), bytes: z.number().int().min(0) }),
  createdAt: z.string(),
  ortVersion: z.string(),
  variants: z.array(variantSchema),
});

const tunedSchema = z.object({ precision: z.enum(PRECISIONS), file: z.string(), provider: z.enum(PROVIDERS), threads: z.number().int().min(0).optional() });

/** What autotune.json holds that the runtime reads: per rung the measured fastest variant (extra report fields are kept but not needed). */
const autotuneSchema = z.object({ rungs: z.record(z.enum(RUNGS), tunedSchema.nullable()) }).passthrough();

export type Manifest = z.infer<typeof manifestSchema>;
export type VariantEntry = z.infer<typeof variantSchema>;
export type Autotune = z.infer<typeof autotuneSchema>;
export type TunedVariant = z.infer<typeof tunedSchema>;

/** Reads and checks a JSON file we wrote: a corrupt or hand-broken one is an error naming the file and the field, never a bare SyntaxError. */
function readChecked<T>(file: string, schema: z.ZodType<T>, fix: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OutpostError('OUTPOST_E_MODEL', `cannot read ${file} (${errorMessage(err)}); ${fix}`, { cause: err });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OutpostError('OUTPOST_E_MODEL', `${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}; ${fix}`);
  }
  return parsed.data;
}

export function readManifest(dir: string): Manifest {
  return readChecked(join(dir, MANIFEST), manifestSchema, `run outpost optimize again to rebuild ${dir}`);
}

export function readAutotune(dir: string): Autotune {
  return readChecked(join(dir, AUTOTUNE), autotuneSchema, `delete it or run outpost bench models ${dir} again`);
}
