import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Files peers sent this node to run their stages with (`offload.serve.acceptModels`): each stored once under
 * its sha256 after the bytes were checked against it, bounded by bytes (least recently used leave first,
 * counted). Survives restarts: the folder is the index.
 */
export class PeerFileCache {
  private readonly sizes = new Map<string, number>();
  evicted = 0;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const found = readdirSync(dir)
      .filter((f) => SHA256.test(f))
      .map((f) => ({ f, s: statSync(join(dir, f)) }))
      .sort((a, b) => a.s.mtimeMs - b.s.mtimeMs);
    for (const { f, s } of found) this.sizes.set(f, s.size);
  }

  shas(): string[] {
    return [...this.sizes.keys()];
  }

  /** The file for a sha256, marked as just used; undefined when not here. */
  path(sha: string): string | undefined {
    if (!this.sizes.has(sha)) return undefined;
    const size = this.sizes.get(sha)!;
    this.sizes.delete(sha);
    this.sizes.set(sha, size); // newest use last
    const file = join(this.dir, sha);
    const now = new Date();
    utimesSync(file, now, now);
    return file;
  }

  /** Stores bytes that must hash to `sha`; throws (nothing stored) when they do not or they can never fit. */
  put(sha: string, bytes: Uint8Array): string {
    if (!SHA256.test(sha)) throw new Error('a file is named by its sha256 (64 hex digits)');
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha) throw new Error(`the bytes hash to ${actual.slice(0, 12)}…, not ${sha.slice(0, 12)}…`);
    if (bytes.length > this.maxBytes) throw new Error(`${bytes.length} bytes is more than offload.serve.modelCacheBytes (${this.maxBytes})`);
    if (this.sizes.has(sha)) return this.path(sha)!;
    while (this.total() + bytes.length > this.maxBytes) this.evictOldest();
    const file = join(this.dir, sha);
    writeFileSync(`${file}.tmp`, bytes, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    this.sizes.set(sha, bytes.length);
    return file;
  }

  private total(): number {
    let sum = 0;
    for (const s of this.sizes.values()) sum += s;
    return sum;
  }

  private evictOldest(): void {
    const [oldest] = this.sizes.keys();
    this.sizes.delete(oldest);
    unlinkSync(join(this.dir, oldest));
    this.evicted++;
  }
}
