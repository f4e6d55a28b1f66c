import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { countWithin, mergeRanges, missingRanges, rangeSize, runsOf, type SeqRange } from './seqRanges.js';
import { TEMP_MARK } from './storeFiles.js';
import { isEpochName, parseDropNotice } from './storeRules.js';
import { listNames } from './storeUsage.js';

export interface EpochReport {
  epoch: string;
  /** when its first item was stored (the lowest seq's file), ISO; epochs are listed in this order */
  startedAt: string | null;
  /** seqs stored (results and drop notices) */
  items: number;
  highest: number;
  /** seqs the device told us it dropped (outbox full, too old), by reason */
  dropped: Record<string, number>;
  /** [from, to] runs of seqs that are neither stored nor told dropped: lost */
  missing: SeqRange[];
  /** seqs delivered a second time with other content, kept in conflicts/ */
  conflicts: number;
  /** drop notices that could not be read (their seqs count as missing) */
  unreadableNotices: number;
}

export interface DeviceReport {
  device: string;
  epochs: EpochReport[];
}

const MARKER = /^([1-9]\d{0,15})\.(json|dropped\.json)$/;

/**
 * What `outpost collect --verify` says of OUT: per device and epoch, what is stored, told dropped, missing and in
 * conflict. Gaps come from merged runs of seqs, never by walking seq by seq: a notice of 3e8 drops costs one run.
 * Leftovers of a crash (temp files, a .jpg without its .json) are not items. Null when OUT does not exist.
 */
export function verifyItems(out: string): DeviceReport[] | null {
  if (!existsSync(out)) return null;
  return listNames(out)
    .filter((d) => statSync(join(out, d), { throwIfNoEntry: false })?.isDirectory())
    .sort()
    .map((device) => ({
      device,
      epochs: listNames(join(out, device))
        .filter(isEpochName)
        .map((epoch) => verifyEpoch(join(out, device, epoch), device, epoch))
        .filter((e) => e.items > 0 || e.conflicts > 0) // a crash's leftovers alone are no epoch
        .sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '')),
    }))
    .filter((d) => d.epochs.length > 0);
}

function verifyEpoch(dir: string, device: string, epoch: string): EpochReport {
  const seqs: number[] = [];
  const told: [number, number, string][] = [];
  let unreadableNotices = 0;
  for (const name of listNames(dir)) {
    const m = MARKER.exec(name);
    if (!m) continue;
    const seq = Number(m[1]);
    seqs.push(seq);
    if (m[2] !== 'dropped.json') continue;
    try {
      for (const r of parseDropNotice(device, seq, readFileSync(join(dir, name))).ranges) told.push(r);
    } catch {
      unreadableNotices++;
    }
  }
  seqs.sort((a, b) => a - b);
  const highest = told.reduce((h, r) => Math.max(h, r[1]), seqs.at(-1) ?? 0);
  const dropped: Record<string, number> = {};
  for (const reason of new Set(told.map((r) => r[2]))) {
    const runs = mergeRanges(told.filter((r) => r[2] === reason).map(([a, b]) => [a, b]));
    dropped[reason] = rangeSize(runs) - runs.reduce((n, [a, b]) => n + countWithin(seqs, a, b), 0);
  }
  const covered = mergeRanges([...runsOf(seqs), ...told.map(([a, b]): SeqRange => [a, b])]);
  return {
    epoch,
    startedAt: seqs.length ? startedAt(dir, seqs[0]) : null,
    items: seqs.length,
    highest,
    dropped,
    missing: missingRanges(covered, highest),
    conflicts: listNames(join(dir, 'conflicts')).filter((n) => n.endsWith('.json') && !n.includes(TEMP_MARK)).length,
    unreadableNotices,
  };
}

function startedAt(dir: string, seq: number): string | null {
  const st = statSync(join(dir, `${seq}.json`), { throwIfNoEntry: false }) ?? statSync(join(dir, `${seq}.dropped.json`), { throwIfNoEntry: false });
  return st ? st.mtime.toISOString() : null;
}
