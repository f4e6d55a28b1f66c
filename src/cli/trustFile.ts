import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { trustListSchema, type TrustListEntry } from '../config/index.js';
import { OutpostError, errorMessage } from '../errors.js';

/**
 * A `--trust FILE`: the devices' public keys as `outpost keys show` prints them, `[{ name, sign, box? }]`. Read by
 * `outpost collect` (whose items it accepts) and `outpost command` (whose signed answers count).
 */
export function readTrustFile(file: string): TrustListEntry[] {
  let raw: unknown;
  if (!existsSync(file))
    throw new OutpostError('OUTPOST_E_NOINPUT', `--trust ${file} does not exist; write the devices' public keys there (outpost keys show on each device)`);
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OutpostError('OUTPOST_E_CONFIG', `--trust ${file}: ${errorMessage(err).split('\n')[0]}`);
  }
  const parsed = trustListSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new OutpostError(
      'OUTPOST_E_CONFIG',
      `--trust ${file}: [${i.path.join('].')}: ${i.message}; a YAML list of { name, sign, box } (outpost keys show on each device)`,
    );
  }
  return parsed.data;
}
