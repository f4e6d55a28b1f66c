import { OutpostError, errorMessage } from '../errors.js';
import { redactUrl } from '../mqtt/index.js';
import { PgItemStore, verifyItems, verifyPg, type DeviceReport, type EpochReport } from '../upload/index.js';
import { createLogger } from '../log.js';

/** Missing runs printed per epoch; the JSON has them all. */
const SHOWN_RUNS = 20;

/** `outpost collect --verify`: per device and epoch what is stored, told dropped, missing, in conflict; exit 1 on a gap or conflict. */
export async function verifyCommand(where: { out: string } | { url: string }, json: boolean | undefined): Promise<void> {
  const out = 'out' in where ? where.out : redactUrl(where.url);
  const devices = 'out' in where ? verifyItems(where.out) : await verifyStore(where.url);
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

/** The report computed in SQL by the database of --store. */
async function verifyStore(url: string): Promise<DeviceReport[]> {
  const store = new PgItemStore(url, createLogger({ level: 'warn', format: 'auto' }));
  try {
    const problem = await store.schemaProblem().catch((err: unknown) => {
      throw new OutpostError('OUTPOST_E_UNREACHABLE', `cannot read ${redactUrl(url)} (${errorMessage(err)}); is PostgreSQL running there?`);
    });
    if (problem) throw new OutpostError('OUTPOST_E_NOINPUT', `${redactUrl(url)}: ${problem}`);
    return await verifyPg(store.database);
  } finally {
    await store.close();
  }
}
