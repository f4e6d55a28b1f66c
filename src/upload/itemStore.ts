import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ItemHeader } from './batch.js';
import { ensureDir, readIfPresent, removeIfPresent, writeOnce, writeReplacing } from './storeFiles.js';
import { checkNames, checkSeq, DEFAULT_STORE_LIMITS, itemFiles, StoreRefusal, type ItemFiles, type StoreLimits } from './storeRules.js';
import { highestIn, scanDevice, type DeviceUsage } from './storeUsage.js';

export { StoreRefusal, PayloadError, DEFAULT_STORE_LIMITS, type StoreLimits, type StoreRefusalReason } from './storeRules.js';

export type PutOutcome = 'stored' | 'duplicate' | 'conflict';

/** How often a refusal may make the store look at the disk again (another collector sharing OUT, files moved away). */
const RESCAN_MS = 60_000;

/**
 * Items on disk, each written once: OUT/<device>/<epoch>/<seq>.json (+ <seq>.jpg when the frame came along); a
 * drop notice is <seq>.dropped.json. Everything is checked before the first byte is written, so a refused item
 * leaves no file. The JPEG goes first (replacing any orphan a crash left), the JSON last, hard-linked into place:
 * its presence says the item is whole, and the link fails if another collector sharing OUT got there first.
 * The same (device, epoch, seq) with other content is a conflict: kept aside in conflicts/, never over the first.
 * Files are 0640 in 0750 folders; each device has a quota of bytes and items.
 */
export class ItemStore {
  private readonly usage = new Map<string, DeviceUsage>();
  private readonly limits: StoreLimits;

  constructor(
    private readonly out: string,
    limits: Partial<StoreLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_STORE_LIMITS, ...limits };
  }

  /** Throws StoreRefusal for an item it will not keep, PayloadError for one it cannot read, an errno error when our disk fails. */
  put(device: string, h: ItemHeader, payload: Buffer): PutOutcome {
    checkNames(device, h.epoch);
    const dir = join(this.out, device, h.epoch);
    const usage = this.usageOf(device);
    checkSeq(device, h.seq, this.highest(usage, dir, h.epoch, h.seq), this.limits.seqWindow);
    const files = itemFiles(device, h, payload);
    const existing = this.compare(dir, h.seq, files);
    if (existing === 'same') return 'duplicate';
    if (existing === 'other') return this.keepAside(device, dir, h.seq, files);
    this.reserve(device, usage, files);
    let committed: boolean;
    try {
      ensureDir(this.out, dir);
      if (files.jpeg) writeReplacing(join(dir, `${h.seq}.jpg`), files.jpeg);
      else removeIfPresent(join(dir, `${h.seq}.jpg`)); // a crash's orphan must not stand in for this item's frame
      committed = writeOnce(join(dir, files.marker.name), files.marker.bytes);
    } catch (err) {
      this.release(usage, files);
      throw err;
    }
    if (!committed) {
      this.release(usage, files); // another collector sharing OUT committed this seq a moment ago
      return this.compare(dir, h.seq, files) === 'same' ? 'duplicate' : this.keepAside(device, dir, h.seq, files);
    }
    usage.highest.set(h.epoch, Math.max(usage.highest.get(h.epoch) ?? 0, h.seq));
    return 'stored';
  }

  private usageOf(device: string): DeviceUsage {
    let u = this.usage.get(device);
    if (!u) this.usage.set(device, (u = scanDevice(join(this.out, device), this.now())));
    return u;
  }

  /** The epoch's highest seq; looked up again on disk before a seq past the window is refused (another collector may have stored more). */
  private highest(usage: DeviceUsage, dir: string, epoch: string, seq: number): number {
    const known = usage.highest.get(epoch) ?? 0;
    if (!(seq > known + this.limits.seqWindow) || this.now() - usage.scannedAt < RESCAN_MS) return known;
    usage.scannedAt = this.now();
    const onDisk = Math.max(known, highestIn(dir));
    usage.highest.set(epoch, onDisk);
    return onDisk;
  }

  /** What is stored under this seq already: nothing, the same bytes, or something else. */
  private compare(dir: string, seq: number, files: ItemFiles): 'none' | 'same' | 'other' {
    const names = [`${seq}.json`, `${seq}.dropped.json`];
    const found = names.map((n) => ({ n, bytes: readIfPresent(join(dir, n)) })).find((f) => f.bytes);
    if (!found) return 'none';
    if (found.n !== files.marker.name || !found.bytes!.equals(files.marker.bytes)) return 'other';
    const jpeg = readIfPresent(join(dir, `${seq}.jpg`));
    return (jpeg === null && files.jpeg === null) || (jpeg && files.jpeg && jpeg.equals(files.jpeg)) ? 'same' : 'other';
  }

  /** A second, different item under a stored seq: kept in conflicts/<seq>-<sha256 prefix>, counted, never over the first. */
  private keepAside(device: string, dir: string, seq: number, files: ItemFiles): 'conflict' {
    const hash = createHash('sha256').update(files.marker.bytes);
    if (files.jpeg) hash.update(files.jpeg);
    const aside = join(dir, 'conflicts');
    const base = join(aside, `${seq}-${hash.digest('hex').slice(0, 16)}`);
    if (readIfPresent(`${base}.json`)) return 'conflict'; // this very conflict, delivered again
    const usage = this.usageOf(device);
    this.reserve(device, usage, files);
    ensureDir(this.out, aside);
    if (files.jpeg) writeReplacing(`${base}.jpg`, files.jpeg);
    if (!writeOnce(`${base}.json`, files.marker.bytes)) this.release(usage, files);
    return 'conflict';
  }

  /** Counts the item against the device's quota, or refuses it (the device keeps it and tries again later). */
  private reserve(device: string, usage: DeviceUsage, files: ItemFiles): void {
    const bytes = files.marker.bytes.length + (files.jpeg?.length ?? 0);
    const over = () => usage.items + 1 > this.limits.quotaItems || usage.bytes + bytes > this.limits.quotaBytes;
    if (over() && this.now() - usage.scannedAt >= RESCAN_MS) {
      // files may have been moved away since the last count
      const fresh = scanDevice(join(this.out, device), this.now());
      Object.assign(usage, { bytes: fresh.bytes, items: fresh.items, scannedAt: fresh.scannedAt });
    }
    if (over())
      throw new StoreRefusal(
        'quota',
        `${device} holds ${usage.items} items, ${usage.bytes} bytes; the quota is ${this.limits.quotaItems} items, ${this.limits.quotaBytes} bytes (collect --quota-items/--quota-bytes)`,
      );
    usage.items += 1;
    usage.bytes += bytes;
  }

  private release(usage: DeviceUsage, files: ItemFiles): void {
    usage.items -= 1;
    usage.bytes -= files.marker.bytes.length + (files.jpeg?.length ?? 0);
  }
}
