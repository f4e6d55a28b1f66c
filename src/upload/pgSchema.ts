import type { Pool } from 'pg';

/**
 * The collector's tables in PostgreSQL, one migration per schema version, applied in order inside one
 * transaction under an advisory lock (several collectors starting at once migrate once). Never edit a
 * released migration: add the next one.
 */
const MIGRATIONS: readonly string[] = [
  // 1: items, drop notices, conflicts, devices
  `CREATE TABLE outpost_devices (
     device text PRIMARY KEY,
     first_seen timestamptz NOT NULL DEFAULT now(),
     last_seen timestamptz NOT NULL DEFAULT now(),
     current_epoch text NOT NULL,
     items bigint NOT NULL DEFAULT 0,
     bytes bigint NOT NULL DEFAULT 0
   );
   CREATE TABLE outpost_items (
     device text NOT NULL,
     epoch text NOT NULL,
     seq bigint NOT NULL CHECK (seq >= 1),
     captured_at timestamptz,
     camera text,
     content_type text NOT NULL,
     result jsonb,
     frame bytea,
     envelope_sha256 bytea NOT NULL,
     content_sha256 bytea NOT NULL,
     stored_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (device, epoch, seq)
   );
   CREATE INDEX outpost_items_device_time ON outpost_items (device, captured_at);
   CREATE INDEX outpost_items_camera_time ON outpost_items (camera, captured_at);
   CREATE INDEX outpost_items_result ON outpost_items USING gin (result jsonb_path_ops);
   CREATE INDEX outpost_items_text ON outpost_items USING gin (to_tsvector('simple'::regconfig, result));
   CREATE TABLE outpost_drop_ranges (
     device text NOT NULL,
     epoch text NOT NULL,
     seq bigint NOT NULL,
     idx int NOT NULL,
     from_seq bigint NOT NULL,
     to_seq bigint NOT NULL,
     reason text NOT NULL,
     PRIMARY KEY (device, epoch, seq, idx),
     FOREIGN KEY (device, epoch, seq) REFERENCES outpost_items ON DELETE CASCADE
   );
   CREATE TABLE outpost_conflicts (
     device text NOT NULL,
     epoch text NOT NULL,
     seq bigint NOT NULL,
     content_sha256 bytea NOT NULL,
     envelope_sha256 bytea NOT NULL,
     content_type text NOT NULL,
     result jsonb,
     frame bytea,
     received_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (device, epoch, seq, content_sha256)
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Any number for pg_advisory_xact_lock, the same in every collector: "outpost" in ASCII. */
const MIGRATE_LOCK = 0x6f7574706f7374;

/** Brings the schema up to SCHEMA_VERSION; idempotent. Returns the versions it applied. */
export async function migrate(pool: Pool): Promise<{ from: number; to: number }> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS outpost_schema_version (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const from = await versionIn(client);
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v - 1]);
      await client.query('INSERT INTO outpost_schema_version (version) VALUES ($1)', [v]);
    }
    await client.query('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined); // the connection may be gone: the error that matters is err
    throw err;
  } finally {
    client.release();
  }
}

/** The schema version in the database: 0 when the collector never migrated it. */
export async function schemaVersion(pool: Pool | { query: Pool['query'] }): Promise<number> {
  const t = await pool.query<{ t: string | null }>("SELECT to_regclass('outpost_schema_version') AS t");
  return t.rows[0].t ? versionIn(pool) : 0;
}

async function versionIn(q: { query: Pool['query'] }): Promise<number> {
  const r = await q.query<{ v: number | null }>('SELECT max(version) AS v FROM outpost_schema_version');
  return r.rows[0].v ?? 0;
}
