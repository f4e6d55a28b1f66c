import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DROPPED_TYPE, type ItemHeader } from './batch.js';

/**
 * Items on disk, one file each, written once: OUT/<device>/<seq>.json (+ <seq>.jpg when the frame came along);
 * a device's drop notice is <seq>.dropped.json. Each file is written to a temporary name and hard-linked into
 * place, which fails if the name exists: two collectors sharing OUT, or a batch delivered twice, store an item once.
 */
export class ItemStore {
  constructor(private readonly out: string) {}

  put(device: string, h: ItemHeader, payload: Buffer): 'stored' | 'duplicate' {
    const dir = join(this.out, device);
    mkdirSync(dir, { recursive: true });
    if (h.contentType === DROPPED_TYPE)
      return this.once(join(dir, `${h.seq}.dropped.json`), Buffer.from(JSON.stringify({ ...JSON.parse(payload.toString('utf8')), header: h }, null, 2)));
    const parts = h.parts ?? [{ type: 'application/json', bytes: payload.length }];
    let at = 0;
    let jsonBytes: Buffer | null = null;
    for (const part of parts) {
      const bytes = payload.subarray(at, at + part.bytes);
      at += part.bytes;
      if (part.type === 'image/jpeg') this.once(join(dir, `${h.seq}.jpg`), bytes);
      else jsonBytes = bytes;
    }
    // the JSON last: its presence says the item is whole
    const record = { header: h, result: jsonBytes ? JSON.parse(jsonBytes.toString('utf8')) : null };
    return this.once(join(dir, `${h.seq}.json`), Buffer.from(JSON.stringify(record, null, 2)));
  }

  private once(file: string, bytes: Buffer): 'stored' | 'duplicate' {
    if (existsSync(file)) return 'duplicate';
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    writeFileSync(tmp, bytes);
    try {
      linkSync(tmp, file);
      return 'stored';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'duplicate';
      throw err;
    } finally {
      unlinkSync(tmp);
    }
  }
}

export interface DeviceReport {
  device: string;
  items: number;
  highest: number;
  /** seqs the device said it dropped (outbox full, too old), by reason */
  dropped: Record<string, number>;
  /** [from, to] runs of seqs that are neither stored nor declared dropped: lost */
  gaps: [number, number][];
}

/** What `outpost collect --verify` says of OUT: per device, the highest seq and every gap. */
export function verifyItems(out: string): DeviceReport[] {
  if (!existsSync(out)) return [];
  return readdirSync(out, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((device) => {
      const dir = join(out, device);
      const names = readdirSync(dir);
      const have = new Set<number>();
      const declared = new Map<number, string>();
      for (const n of names) {
        const m = /^(\d+)\.(json|dropped\.json)$/.exec(n);
        if (!m) continue;
        have.add(Number(m[1]));
        if (m[2] === 'dropped.json') {
          const ranges = (JSON.parse(readFileSync(join(dir, n), 'utf8')) as { ranges: [number, number, string][] }).ranges;
          for (const [from, to, reason] of ranges) for (let s = from; s <= to; s++) declared.set(s, reason);
        }
      }
      const highest = Math.max(0, ...have, ...declared.keys());
      const gaps: [number, number][] = [];
      const dropped: Record<string, number> = {};
      for (let s = 1; s <= highest; s++) {
        if (have.has(s)) continue;
        const why = declared.get(s);
        if (why) dropped[why] = (dropped[why] ?? 0) + 1;
        else if (gaps.length && gaps[gaps.length - 1][1] === s - 1) gaps[gaps.length - 1][1] = s;
        else gaps.push([s, s]);
      }
      return { device, items: have.size, highest, dropped, gaps };
    });
}
