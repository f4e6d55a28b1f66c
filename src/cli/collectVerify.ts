import { OutpostError } from '../errors.js';
import { verifyItems, type EpochReport } from '../upload/index.js';

/** Missing runs printed per epoch; the JSON has them all. */
const SHOWN_RUNS = 20;

/** `outpost collect --verify`: per device and epoch what is stored, told dropped, missing, in conflict; exit 1 on a gap or conflict. */
export function verifyCommand(out: string, json: boolean | undefined): void {
  const devices = verifyItems(out);
  if (!devices) throw new OutpostError('OUTPOST_E_NOINPUT', `--out ${out} does not exist; name the folder outpost collect stores into`);
  if (json) process.stdout.write(JSON.stringify({ out, devices }, null, 2) + '\n');
  else {
    if (devices.length === 0) process.stdout.write(`${out}: no items yet\n`);
    for (const d of devices) d.epochs.forEach((e, i) => process.stdout.write(`${d.device}/${e.epoch}: ${i > 0 ? newEpoch(e) : ''}${describe(e)}\n`));
  }
  if (devices.some((d) => d.epochs.some((e) => e.missing.length > 0 || e.conflicts > 0))) process.exitCode = 1;
}

const newEpoch = (e: EpochReport) => `a new epoch (a new outbox: seqs start again at 1) since ${e.startedAt ?? 'an unknown time'}; `;

function describe(e: EpochReport): string {
  const dropped = Object.entries(e.dropped).map(([why, n]) => `${n} dropped (${why})`);
  const runs = e.missing.slice(0, SHOWN_RUNS).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  if (e.missing.length > SHOWN_RUNS) runs.push(`… ${e.missing.length - SHOWN_RUNS} more runs (--json lists them)`);
  return [
    `${e.items} items, seq 1..${e.highest}`,
    ...dropped,
    runs.length ? `MISSING ${runs.join(', ')}` : 'nothing missing',
    ...(e.conflicts ? [`${e.conflicts} CONFLICTING (other content under a stored seq, kept in conflicts/)`] : []),
    ...(e.unreadableNotices ? [`${e.unreadableNotices} unreadable drop notices`] : []),
  ].join(', ');
}
