import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';

export type DropReason = 'full' | 'expired' | 'refused-new' | 'unreadable';
export const DROP_REASONS: readonly DropReason[] = ['full', 'expired', 'refused-new', 'unreadable'];

export interface OutboxLimits {
  maxBytes: number;
  maxAgeMs: number;
  whenFull: 'drop-oldest' | 'refuse-new';
}

export interface OutboxItem {
  seq: number;
  /** when it was enqueued (ms since the epoch) */
  at: number;
  envelope: Buffer;
}

interface Stored {
  at: number;
  env: Buffer;
}

/** Seqs that left the outbox undelivered, not yet told to the collector: [from, to, reason]. */
export type DroppedRange = [number, number, DropReason];

/**
 * A write inside `env.transaction()`: lmdb runs it in the transaction at once and its promise settles with the
 * commit, which the caller awaits through the transaction's own promise (a failed commit rejects that one).
 */
function inTxn(write: Promise<unknown>): void {
  write.catch(() => undefined);
}

/**
 * The crash-safe queue of sealed items (LMDB): each item gets the next sequence number in the same write
 * transaction that stores it, so seqs run from 1 with no gap or repeat whatever kills the process. An item
 * is handed out for delivery only once its commit is flushed to disk, and leaves only when acknowledged.
 * Bounded by bytes and age; every item dropped (oldest on full, too old) is counted and its seq recorded, so
 * the collector can be told which seqs will never come. Items are sealed before they get here. Each outbox has
 * an epoch, made when it is created: items are (device, epoch, seq).
 */
export class Outbox {
  private flushedUpTo = 0;
  private constructor(
    private readonly env: RootDatabase,
    private readonly items: Database<Stored, number>,
    private readonly meta: Database<unknown, string>,
    private readonly limits: OutboxLimits,
  ) {
    this.flushedUpTo = this.nextSeq - 1; // what survived a restart is on disk
  }

  static open(dir: string, limits: OutboxLimits): Outbox {
    mkdirSync(dir, { recursive: true });
    const env = open({ path: dir, compression: false });
    const meta = env.openDB<unknown, string>('meta', {});
    // made once, kept as long as the outbox: a reflashed board (new state dir) starts a new epoch at seq 1
    if (typeof meta.get('epoch') !== 'string') {
      if (meta.get('next') !== undefined) meta.putSync('legacy', true); // made before epochs: its items are version 1
      meta.putSync('epoch', randomBytes(16).toString('hex'));
    }
    return new Outbox(env, env.openDB<Stored, number>('items', { keyEncoding: 'uint32' }), meta, limits);
  }

  /** 32 lowercase hex digits: with the device id and a seq, names an item everywhere. */
  get epoch(): string {
    return this.meta.get('epoch') as string;
  }

  private get nextSeq(): number {
    return (this.meta.get('next') as number | undefined) ?? 1;
  }

  get bytes(): number {
    return (this.meta.get('bytes') as number | undefined) ?? 0;
  }

  get pending(): number {
    return this.items.getCount();
  }

  dropped(): Record<DropReason, number> {
    return { full: 0, expired: 0, 'refused-new': 0, unreadable: 0, ...((this.meta.get('dropped') as Record<DropReason, number> | undefined) ?? {}) };
  }

  /** Ranges of seqs dropped and not yet reported to the collector. */
  unreported(): DroppedRange[] {
    return (this.meta.get('unreported') as DroppedRange[] | undefined) ?? [];
  }

  /**
   * Stores an item sealed for its seq (`seal` gets the seq it will carry). Resolves with the seq once the
   * item is on disk, or null when the outbox is full and refuses new items (counted).
   */
  async enqueue(seal: (seq: number) => Buffer, at: number, opts: { clearsUnreported?: boolean } = {}): Promise<number | null> {
    let seq: number | null = null;
    await this.env.transaction(() => {
      const envelope = seal(this.nextSeq);
      if (envelope.length > this.limits.maxBytes) return this.count('refused-new', 1);
      if (this.bytes + envelope.length > this.limits.maxBytes) {
        if (this.limits.whenFull === 'refuse-new') return this.count('refused-new', 1);
        this.dropWhile((_, bytes) => bytes + envelope.length > this.limits.maxBytes, 'full');
      }
      seq = this.nextSeq;
      inTxn(this.items.put(seq, { at, env: envelope }));
      inTxn(this.meta.put('next', seq + 1));
      inTxn(this.meta.put('bytes', this.bytes + envelope.length));
      if (opts.clearsUnreported) inTxn(this.meta.put('unreported', []));
    });
    await this.env.flushed;
    if (seq !== null) this.flushedUpTo = Math.max(this.flushedUpTo, seq);
    return seq;
  }

  /** The oldest items on disk, up to a count and a byte budget (at least one, whatever its size). */
  oldest(maxItems: number, maxBytes: number): OutboxItem[] {
    const out: OutboxItem[] = [];
    let bytes = 0;
    for (const { key, value } of this.items.getRange({ end: this.flushedUpTo + 1 })) {
      if (out.length >= maxItems || (out.length > 0 && bytes + value.env.length > maxBytes)) break;
      out.push({ seq: key, at: value.at, envelope: value.env });
      bytes += value.env.length;
    }
    return out;
  }

  /** The collector has these: they leave. Resolves with how many were still here. */
  async ack(seqs: readonly number[]): Promise<number> {
    let removed = 0;
    await this.env.transaction(() => {
      let freed = 0;
      for (const seq of seqs) {
        const v = this.items.get(seq);
        if (!v) continue;
        freed += v.env.length;
        removed++;
        inTxn(this.items.remove(seq));
      }
      inTxn(this.meta.put('bytes', Math.max(0, this.bytes - freed)));
    });
    return removed;
  }

  /** Whether this outbox was made before epochs and its items still need `migrate`. */
  get legacy(): boolean {
    return this.meta.get('legacy') === true;
  }

  /**
   * An outbox made before epochs: each item resealed (`reseal` gets the old envelope and its new seq; null when it
   * cannot be read, dropped and counted) and renumbered from 1 in this outbox's epoch, in one transaction.
   * Drops not yet reported were in the old numbering: returned, for the log.
   */
  async migrate(reseal: (envelope: Buffer, seq: number) => Buffer | null): Promise<{ resealed: number; unreadable: number; forgotten: DroppedRange[] }> {
    const result = { resealed: 0, unreadable: 0, forgotten: this.unreported() };
    await this.env.transaction(() => {
      const old = [...this.items.getRange({ snapshot: true })];
      let bytes = 0;
      for (const { key, value } of old) {
        inTxn(this.items.remove(key));
        const env = reseal(value.env, result.resealed + 1);
        if (!env) {
          result.unreadable++;
          continue;
        }
        inTxn(this.items.put(++result.resealed, { at: value.at, env }));
        bytes += env.length;
      }
      inTxn(this.meta.put('next', result.resealed + 1));
      inTxn(this.meta.put('bytes', bytes));
      inTxn(this.meta.put('unreported', []));
      inTxn(this.meta.remove('legacy'));
      if (result.unreadable > 0) this.count('unreadable', result.unreadable);
    });
    await this.env.flushed;
    this.flushedUpTo = result.resealed;
    return result;
  }

  /** Drops what has waited longer than maxAgeMs (counted, seqs recorded). */
  async sweep(now: number): Promise<number> {
    let n = 0;
    await this.env.transaction(() => {
      n = this.dropWhile((first) => now - first.value.at > this.limits.maxAgeMs, 'expired');
    });
    return n;
  }

  async close(): Promise<void> {
    await this.env.close();
  }

  /** Within a write transaction: removes the oldest items while `more` says so; returns how many. */
  private dropWhile(more: (first: { key: number; value: Stored }, bytesNow: number) => boolean, reason: DropReason): number {
    let n = 0;
    let bytes = this.bytes;
    const ranges = this.unreported();
    const doomed: number[] = [];
    for (const entry of this.items.getRange({ snapshot: true })) {
      if (!more(entry, bytes)) break;
      bytes -= entry.value.env.length;
      doomed.push(entry.key);
    }
    for (const key of doomed) {
      inTxn(this.items.remove(key));
      const last = ranges.at(-1);
      if (last && last[1] === key - 1 && last[2] === reason) last[1] = key;
      else ranges.push([key, key, reason]);
      n++;
    }
    if (n === 0) return 0;
    inTxn(this.meta.put('bytes', Math.max(0, bytes)));
    inTxn(this.meta.put('unreported', ranges.slice(-1000))); // bounded: a board that drops forever still keeps the newest
    this.count(reason, n);
    return n;
  }

  private count(reason: DropReason, n: number): void {
    const d = this.dropped();
    d[reason] += n;
    inTxn(this.meta.put('dropped', d));
  }
}
