import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { removeIfPresent, TEMP_MARK } from './storeFiles.js';
import { isEpochName } from './storeRules.js';

/** What a device holds in OUT: counted from the folder on first use, then kept up to date as items are stored. */
export interface DeviceUsage {
  bytes: number;
  items: number;
  /** highest committed seq per epoch: the base of the seq window */
  highest: Map<string, number>;
  scannedAt: number;
}

/** Temp files older than this are a crash's leftovers (a write in progress takes milliseconds). */
const STALE_TEMP_MS = 10 * 60_000;

const MARKER = /^([1-9]\d{0,15})\.(json|dropped\.json)$/;

/** Walks OUT/<device>: bytes and items held, each epoch's highest seq; deletes stale temp files on the way. */
export function scanDevice(dir: string, now: number): DeviceUsage {
  const usage: DeviceUsage = { bytes: 0, items: 0, highest: new Map(), scannedAt: now };
  for (const epoch of listNames(dir).filter(isEpochName)) {
    const e = join(dir, epoch);
    usage.highest.set(epoch, highestIn(e));
    for (const sub of [e, join(e, 'conflicts')])
      for (const name of listNames(sub)) {
        const st = lstatSync(join(sub, name), { throwIfNoEntry: false });
        if (!st?.isFile()) continue;
        if (name.includes(TEMP_MARK)) {
          if (now - st.mtimeMs > STALE_TEMP_MS) removeIfPresent(join(sub, name));
          continue;
        }
        usage.bytes += st.size;
        if (name.endsWith('.json')) usage.items++;
      }
  }
  return usage;
}

/** The highest committed seq in an epoch's folder (names only: no file is read). */
export function highestIn(epochDir: string): number {
  let highest = 0;
  for (const name of listNames(epochDir)) {
    const m = MARKER.exec(name);
    if (m) highest = Math.max(highest, Number(m[1]));
  }
  return highest;
}

export function listNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
