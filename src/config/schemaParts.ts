import { z } from 'zod';
import { DEVICE_ID, DEVICE_ID_RULE, SELECTION_MODES } from '../vocabulary.js';

/** The pieces several config sections are built of, spelt once. */

/** Marks a setting SIGHUP applies without a restart (it shows as `"live": true` in the JSON Schema too). */
export const LIVE = { live: true } as const;

/** A name: node, device, camera, model, pipeline or keyring entry (vocabulary.ts). */
export const idSchema = z.string().regex(DEVICE_ID, DEVICE_ID_RULE);

export const fraction = z.number().min(0).max(1);

const selection = z.strictObject({
  mode: z.enum(SELECTION_MODES).describe('all: every result; change: when the text or labels change; threshold: a score at or above minScore'),
  minScore: fraction.default(0.5),
});

/** Per camera name (or "*" for the rest): which results go out, `fallback` for a config that says nothing. */
export const selectionRules = (fallback: z.infer<typeof selection>['mode']) =>
  z.record(z.union([idSchema, z.literal('*')]), selection).default({ '*': { mode: fallback, minScore: 0.5 } });
