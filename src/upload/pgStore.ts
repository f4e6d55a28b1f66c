import { createHash } from 'node:crypto';
import pg from 'pg';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { StoreBusy, type CollectorStore, type ItemOutcome, type OpenedItem } from './collectorStore.js';
import { SCHEMA_VERSION, schemaVersion } from './pgSchema.js';
import { checkNames, checkSeq, DEFAULT_STORE_LIMITS, itemContent, PayloadError, StoreRefusal, type StoreLimits } from './storeRules.js';

/** How long a batch may wait for a connection, and a statement for the database, before the collector answers busy. */
const CONNECT_TIMEOUT_MS = 3_000;
const STATEMENT_TIMEOUT_MS = 10_000;
/** Connections per collector: batches beyond this wait (bounded by the collector's body limiter). */
const POOL_SIZE = 4;

/** One item checked and ready for its row. */
interface Row {
  index: number;
  seq: number;
  capturedAt: number | null;
  camera: string | null;
  contentType: string;
  result: string;
  frame: Buffer | null;
  envelope: Buffer;
  content: Buffer;
  ranges: [number, number, string][] | null;
  bytes: number;
}

/**
 * The collector's store in PostgreSQL (docs/collector-postgres.md): one row per (device, epoch, seq), each
 * batch in one transaction, so an item is acked only once it is committed. The same seq with the same content
 * is a duplicate (acked, not stored again); with other content a conflict, kept in outpost_conflicts. The device's
 * row is locked for the batch: its quota counts hold with any number of collectors on one database.
 */
export class PgItemStore implements CollectorStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;
  private readonly limits: StoreLimits;
  /** highest seq stored per device and epoch (the base of the seq window), looked up again before a refusal */
  private readonly highest = new Map<string, number>();

  constructor(
    url: string,
    private readonly log: Logger,
    limits: Partial<StoreLimits> = {},
  ) {
    this.limits = { ...DEFAULT_STORE_LIMITS, ...limits };
    this.pool = new pg.Pool({
      connectionString: url,
      max: POOL_SIZE,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS + 2_000,
      idleTimeoutMillis: 30_000,
    });
    // a connection the server closed (a restart), idle or in use: logged; its batch answers busy, the next connects again
    const lost = (err: Error) => this.log.warn({ err: errorMessage(err) }, 'a database connection was lost');
    this.pool.on('error', lost);
    this.pool.on('connect', (client) => client.on('error', lost));
  }

  get database(): pg.Pool {
    return this.pool;
  }

  /** Null when the schema is the one this collector writes; else what to do. */
  async schemaProblem(): Promise<string | null> {
    const v = await schemaVersion(this.pool);
    if (v === SCHEMA_VERSION) return null;
    return v < SCHEMA_VERSION
      ? `the database holds schema version ${v}; this collector writes ${SCHEMA_VERSION}: run outpost collect --migrate --store URL`
      : `the database holds schema version ${v}, newer than this collector's ${SCHEMA_VERSION}: upgrade the collector`;
  }

  async putAll(device: string, items: readonly OpenedItem[]): Promise<ItemOutcome[]> {
    const outcomes: ItemOutcome[] = [];
    const rows: Row[] = [];
    const epoch = items[0]?.header.epoch;
    items.forEach((item, index) => {
      try {
        // a batch is of one epoch (the collector refuses others): its rows share the device's lock and seq window
        if (item.header.epoch !== epoch) throw new StoreRefusal('bad-header', `epoch ${String(item.header.epoch).slice(0, 40)} in a batch of epoch ${epoch}`);
        rows.push(toRow(device, item, index));
      } catch (err) {
        outcomes[index] = err instanceof Error ? err : new Error(String(err));
      }
    });
    if (rows.length > 0) await this.storeRows(device, epoch, rows, outcomes);
    return outcomes;
  }

  /**
   * The batch in one transaction. When the database refuses what an item holds (a capture time past its range,
   * say), the batch would fail on every retry: its items go one by one instead, and the one refused alone
   * is answered bad-payload, so one poisoned item never holds up the rest.
   */
  private async storeRows(device: string, epoch: string, rows: Row[], outcomes: ItemOutcome[]): Promise<void> {
    try {
      await this.transaction(device, epoch, rows, outcomes);
    } catch (err) {
      const refused = err instanceof StoreBusy && isContentRefusal(err.cause);
      if (!refused) throw err;
      if (rows.length === 1) return void (outcomes[rows[0].index] = new PayloadError(`the database refused the item: ${errorMessage(err.cause)}`));
      for (const row of rows) await this.storeRows(device, epoch, [row], outcomes);
    }
  }

  /** The rows in one transaction; anything the database says short of COMMIT is "busy" (nothing acked). */
  private async transaction(device: string, epoch: string, rows: Row[], outcomes: ItemOutcome[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new StoreBusy(`the database cannot be reached (${errorMessage(err)})`);
    }
    const decided: ItemOutcome[] = [];
    let top = 0;
    try {
      await client.query('BEGIN');
      const usage = await client.query<{ items: string; bytes: string }>(
        `INSERT INTO outpost_devices (device, current_epoch) VALUES ($1, $2)
         ON CONFLICT (device) DO UPDATE SET last_seen = now(), current_epoch = EXCLUDED.current_epoch RETURNING items, bytes`,
        [device, epoch],
      );
      const there = await storedShas(client, device, epoch, rows);
      const { fresh, conflicts } = await this.sort(client, device, epoch, rows, there, usage.rows[0], decided);
      const inserted = await insertItems(client, device, epoch, fresh);
      // the device's row lock keeps other collectors out of its seqs: a row not inserted means the check above is wrong
      if (fresh.some((r) => !inserted.has(r.seq))) throw new Error(`a seq of ${device} was stored by someone else during the batch`);
      await insertConflicts(client, device, epoch, conflicts);
      await insertRanges(client, device, epoch, fresh);
      top = Math.max(0, ...fresh.map((r) => r.seq));
      await client.query('COMMIT');
      client.release();
    } catch (err) {
      client.release(true); // a connection in an unknown state is not reused
      throw new StoreBusy(`the database did not commit the batch (${errorMessage(err)})`, err);
    }
    for (const [i, o] of decided.entries()) if (o !== undefined) outcomes[i] = o;
    this.highest.set(`${device}/${epoch}`, Math.max(this.highest.get(`${device}/${epoch}`) ?? 0, top));
  }

  /**
   * Each row: refused (outside the seq window, over the quota), a duplicate (the same content is stored), a
   * conflict (other content is), or new. `there` holds the contents stored under the batch's seqs; the quota
   * counts what will be written (new rows and conflicts), never a duplicate.
   */
  private async sort(
    client: pg.PoolClient,
    device: string,
    epoch: string,
    rows: Row[],
    there: Map<number, Buffer>,
    usage: { items: string; bytes: string },
    decided: ItemOutcome[],
  ): Promise<{ fresh: Row[]; conflicts: Row[] }> {
    const highest = await this.highestOf(client, device, epoch, Math.max(...rows.map((r) => r.seq)));
    let [items, bytes] = [Number(usage.items), Number(usage.bytes)];
    const fresh: Row[] = [];
    const conflicts: Row[] = [];
    for (const r of rows) {
      try {
        checkSeq(device, r.seq, highest, this.limits.seqWindow);
        const stored = there.get(r.seq);
        if (stored?.equals(r.content)) {
          decided[r.index] = 'duplicate';
          continue;
        }
        if (items + 1 > this.limits.quotaItems || bytes + r.bytes > this.limits.quotaBytes)
          throw new StoreRefusal(
            'quota',
            `${device} holds ${items} items, ${bytes} bytes; the quota is ${this.limits.quotaItems} items, ${this.limits.quotaBytes} bytes (collect --quota-items/--quota-bytes)`,
          );
        items += 1;
        bytes += r.bytes;
        decided[r.index] = stored ? 'conflict' : 'stored';
        if (stored) conflicts.push(r);
        else fresh.push(r);
        there.set(r.seq, stored ?? r.content); // a seq twice in this batch is judged against the first
      } catch (err) {
        decided[r.index] = err as Error;
      }
    }
    return { fresh, conflicts };
  }

  /** The epoch's highest stored seq: from memory, or the database when unknown or the batch goes past the window. */
  private async highestOf(client: pg.PoolClient, device: string, epoch: string, top: number): Promise<number> {
    const known = this.highest.get(`${device}/${epoch}`);
    if (known !== undefined && top <= known + this.limits.seqWindow) return known;
    const r = await client.query<{ h: string | null }>('SELECT max(seq) AS h FROM outpost_items WHERE device = $1 AND epoch = $2', [device, epoch]);
    const h = Number(r.rows[0].h ?? 0);
    this.highest.set(`${device}/${epoch}`, h);
    return h;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Checks an item before the transaction: names, content (parts, JSON, drop ranges), and what it is made of. */
function toRow(device: string, item: OpenedItem, index: number): Row {
  const h = item.header;
  checkNames(device, h.epoch);
  checkSeq(device, h.seq, 0, Number.MAX_SAFE_INTEGER); // an integer ≥ 1; the window is checked in the transaction
  const c = itemContent(device, h, item.payload);
  const result = JSON.stringify(c.result);
  // PostgreSQL's jsonb cannot hold U+0000: such an item would fail its whole batch again and again
  if (result.includes('\\u0000')) throw new PayloadError('the result holds a U+0000 character, which PostgreSQL cannot store');
  const hash = createHash('sha256').update(JSON.stringify({ header: h, result: c.result }));
  if (c.jpeg) hash.update(c.jpeg);
  return {
    index,
    seq: h.seq,
    capturedAt: Number.isFinite(h.capturedAt) ? h.capturedAt : null,
    camera: typeof h.camera === 'string' ? h.camera : null,
    contentType: h.contentType,
    result,
    frame: c.jpeg,
    envelope: item.envelopeSha256,
    content: hash.digest(),
    ranges: c.ranges,
    bytes: item.payload.length,
  };
}

/** Inserts the rows whose (device, epoch, seq) is free and adds them to the device's counts (one round trip); returns the seqs inserted. */
async function insertItems(client: pg.PoolClient, device: string, epoch: string, rows: Row[]): Promise<Set<number>> {
  if (rows.length === 0) return new Set();
  const r = await client.query<{ seq: string }>(
    `WITH ins AS (
       INSERT INTO outpost_items (device, epoch, seq, captured_at, camera, content_type, result, frame, envelope_sha256, content_sha256)
       SELECT $1, $2, u.seq, to_timestamp(u.at / 1000.0), u.camera, u.ct, u.result::jsonb, u.frame, u.env, u.sha
       FROM unnest($3::bigint[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[], $10::bytea[])
         AS u(seq, at, camera, ct, result, frame, env, sha)
       ON CONFLICT DO NOTHING RETURNING seq
     ), firsts AS (
       SELECT DISTINCT ON (s) s, n FROM unnest($3::bigint[], $11::bigint[]) WITH ORDINALITY AS x(s, n, o) ORDER BY s, o
     ), counted AS (
       UPDATE outpost_devices SET items = items + (SELECT count(*) FROM ins),
         bytes = bytes + (SELECT coalesce(sum(n), 0) FROM firsts WHERE s IN (SELECT seq FROM ins))
       WHERE device = $1
     )
     SELECT seq FROM ins`,
    [
      device,
      epoch,
      rows.map((x) => x.seq),
      rows.map((x) => x.capturedAt),
      rows.map((x) => x.camera),
      rows.map((x) => x.contentType),
      rows.map((x) => x.result),
      rows.map((x) => x.frame),
      rows.map((x) => x.envelope),
      rows.map((x) => x.content),
      rows.map((x) => x.bytes),
    ],
  );
  return new Set(r.rows.map((x) => Number(x.seq)));
}

/** What is stored under the batch's seqs: seq → content sha256. */
async function storedShas(client: pg.PoolClient, device: string, epoch: string, rows: Row[]): Promise<Map<number, Buffer>> {
  const r = await client.query<{ seq: string; content_sha256: Buffer }>(
    'SELECT seq, content_sha256 FROM outpost_items WHERE device = $1 AND epoch = $2 AND seq = ANY($3::bigint[])',
    [device, epoch, rows.map((x) => x.seq)],
  );
  return new Map(r.rows.map((x) => [Number(x.seq), x.content_sha256]));
}

/** Other content under stored seqs, kept aside (the same conflict delivered again is kept once) and counted in the device's quota. */
async function insertConflicts(client: pg.PoolClient, device: string, epoch: string, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  await client.query(
    `WITH ins AS (
       INSERT INTO outpost_conflicts (device, epoch, seq, content_sha256, envelope_sha256, content_type, result, frame)
       SELECT $1, $2, u.seq, u.sha, u.env, u.ct, u.result::jsonb, u.frame
       FROM unnest($3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::bytea[]) AS u(seq, sha, env, ct, result, frame)
       ON CONFLICT DO NOTHING RETURNING octet_length(result::text) + coalesce(octet_length(frame), 0) AS n
     )
     UPDATE outpost_devices SET items = items + (SELECT count(*) FROM ins), bytes = bytes + (SELECT coalesce(sum(n), 0) FROM ins) WHERE device = $1`,
    [
      device,
      epoch,
      rows.map((r) => r.seq),
      rows.map((r) => r.content),
      rows.map((r) => r.envelope),
      rows.map((r) => r.contentType),
      rows.map((r) => r.result),
      rows.map((r) => r.frame),
    ],
  );
}

/** The ranges of the drop notices just stored, one row each (verify reads them in SQL). */
async function insertRanges(client: pg.PoolClient, device: string, epoch: string, rows: Row[]): Promise<void> {
  const ranges = rows.flatMap((r) => (r.ranges ?? []).map(([from, to, reason], idx) => ({ seq: r.seq, idx, from, to, reason })));
  if (ranges.length === 0) return;
  await client.query(
    `INSERT INTO outpost_drop_ranges (device, epoch, seq, idx, from_seq, to_seq, reason)
     SELECT $1, $2, u.seq, u.idx, u.f, u.t, u.reason FROM unnest($3::bigint[], $4::int[], $5::bigint[], $6::bigint[], $7::text[]) AS u(seq, idx, f, t, reason)`,
    [device, epoch, ranges.map((x) => x.seq), ranges.map((x) => x.idx), ranges.map((x) => x.from), ranges.map((x) => x.to), ranges.map((x) => x.reason)],
  );
}

/** SQLSTATE classes that say the data was refused, not the database away: 22 data exception, 54 program limit exceeded. */
function isContentRefusal(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|54)/.test(code);
}
