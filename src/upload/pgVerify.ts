import type pg from 'pg';
import type { SeqRange } from './seqRanges.js';
import type { DeviceReport, EpochReport } from './storeVerify.js';

/** Per device and epoch: items, highest seq (stored or told dropped), when the epoch's first item was stored. */
const EPOCHS = `
  SELECT e.device, e.epoch, e.items, greatest(e.top, coalesce(d.top, 0)) AS highest, e.started,
         (SELECT count(*) FROM outpost_conflicts c WHERE c.device = e.device AND c.epoch = e.epoch) AS conflicts
  FROM (SELECT device, epoch, count(*) AS items, max(seq) AS top, min(stored_at) AS started FROM outpost_items GROUP BY device, epoch) e
  LEFT JOIN (SELECT device, epoch, max(to_seq) AS top FROM outpost_drop_ranges GROUP BY device, epoch) d USING (device, epoch)
  ORDER BY e.device, e.started`;

/**
 * Gaps: runs of stored seqs (seq - row_number() is constant along a run) and told-dropped ranges are spans; a
 * running max of the spans' ends, ordered by start, shows where nothing reaches: a gap. No seq is expanded.
 */
const GAPS = `
  WITH spans AS (
    SELECT device, epoch, min(seq) AS f, max(seq) AS t
    FROM (SELECT device, epoch, seq, seq - row_number() OVER (PARTITION BY device, epoch ORDER BY seq) AS run FROM outpost_items) s
    GROUP BY device, epoch, run
    UNION ALL
    SELECT device, epoch, from_seq, to_seq FROM outpost_drop_ranges
  ), reach AS (
    SELECT device, epoch, f, max(t) OVER (PARTITION BY device, epoch ORDER BY f, t ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM spans
  )
  SELECT device, epoch, coalesce(before, 0) + 1 AS gap_from, f - 1 AS gap_to FROM reach
  WHERE f > coalesce(before, 0) + 1 ORDER BY device, epoch, gap_from`;

/** Told dropped, by reason: each reason's ranges merged (touching ones joined), less the seqs stored inside them after all. */
const DROPPED = `
  WITH r AS (
    SELECT device, epoch, reason, from_seq AS f, to_seq AS t,
           max(to_seq) OVER (PARTITION BY device, epoch, reason ORDER BY from_seq, to_seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM outpost_drop_ranges
  ), g AS (
    SELECT *, sum(CASE WHEN f > coalesce(before, 0) + 1 THEN 1 ELSE 0 END) OVER (PARTITION BY device, epoch, reason ORDER BY f, t) AS grp FROM r
  ), m AS (
    SELECT device, epoch, reason, min(f) AS f, max(t) AS t FROM g GROUP BY device, epoch, reason, grp
  )
  SELECT m.device, m.epoch, m.reason,
         sum(m.t - m.f + 1 - (SELECT count(*) FROM outpost_items i WHERE i.device = m.device AND i.epoch = m.epoch AND i.seq BETWEEN m.f AND m.t)) AS n
  FROM m GROUP BY m.device, m.epoch, m.reason`;

/** What `outpost collect --verify --store postgres://…` says: the folder store's report, computed in SQL. */
export async function verifyPg(db: pg.Pool): Promise<DeviceReport[]> {
  const [epochs, gaps, dropped] = await Promise.all([db.query(EPOCHS), db.query(GAPS), db.query(DROPPED)]);
  const key = (r: { device: string; epoch: string }) => `${r.device}/${r.epoch}`;
  const missing = new Map<string, SeqRange[]>();
  for (const g of gaps.rows) missing.set(key(g), [...(missing.get(key(g)) ?? []), [Number(g.gap_from), Number(g.gap_to)]]);
  const told = new Map<string, Record<string, number>>();
  for (const d of dropped.rows) told.set(key(d), { ...told.get(key(d)), [d.reason]: Number(d.n) });
  const devices = new Map<string, EpochReport[]>();
  for (const e of epochs.rows) {
    const report: EpochReport = {
      epoch: e.epoch,
      startedAt: (e.started as Date).toISOString(),
      items: Number(e.items),
      highest: Number(e.highest),
      dropped: told.get(key(e)) ?? {},
      missing: missing.get(key(e)) ?? [],
      conflicts: Number(e.conflicts),
      unreadableNotices: 0, // a notice that does not hold up is refused before it is stored
    };
    devices.set(e.device, [...(devices.get(e.device) ?? []), report]);
  }
  return [...devices]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) // as the folder store lists them, not by the database's collation
    .map(([device, list]) => ({ device, epochs: list }));
}
