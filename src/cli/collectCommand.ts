import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { trustListSchema } from '../config/index.js';
import { readKeys } from '../crypto/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { createLogger } from '../log.js';
import { openBroker, redactUrl } from '../mqtt/index.js';
import { Collector, verifyItems } from '../upload/index.js';

export interface CollectOptions {
  listen: string;
  keys?: string;
  trust?: string;
  out: string;
  mqtt?: string;
  base: string;
  verify?: boolean;
  json?: boolean;
}

function trustList(file: string) {
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OutpostError('OUTPOST_E_CONFIG', `${file}: ${errorMessage(err).split('\n')[0]}`);
  }
  const parsed = trustListSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new OutpostError('OUTPOST_E_CONFIG', `${file}: [${i.path.join('].')}: ${i.message}; a YAML list of { name, box } (the devices' outpost keys show)`);
  }
  return parsed.data;
}

/** `outpost collect --verify`: per device the highest seq and every gap; exit 1 on a gap. */
function verify(opts: CollectOptions): void {
  const reports = verifyItems(opts.out);
  if (opts.json) process.stdout.write(JSON.stringify({ out: opts.out, devices: reports }, null, 2) + '\n');
  else
    for (const r of reports) {
      const dropped = Object.entries(r.dropped).map(([why, n]) => `${n} dropped (${why})`);
      const gaps = r.gaps.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
      process.stdout.write(
        `${r.device}: ${r.items} items, seq 1..${r.highest}${dropped.length ? `, ${dropped.join(', ')}` : ''}${gaps.length ? `, MISSING ${gaps.join(', ')}` : ', nothing missing'}\n`,
      );
    }
  if (reports.some((r) => r.gaps.length > 0)) process.exitCode = 1;
}

/** `outpost collect`: receives sealed items over HTTP (and MQTT with --mqtt) until SIGTERM. */
export async function collectCommand(opts: CollectOptions): Promise<void> {
  if (opts.verify) return verify(opts);
  if (!opts.keys || !opts.trust) throw new OutpostError('OUTPOST_E_USAGE', 'outpost collect needs --keys DIR and --trust FILE (or --verify)');
  const m = /^(.*):(\d+)$/.exec(opts.listen);
  if (!m) throw new OutpostError('OUTPOST_E_USAGE', `--listen ${opts.listen} is not HOST:PORT`);
  const log = createLogger({ level: 'info', format: 'auto' }).child({ component: 'collector' });
  const collector = new Collector(readKeys(opts.keys), trustList(opts.trust), opts.out, log);
  const port = await collector.listen(m[1], Number(m[2]));
  const broker = opts.mqtt ? await openBroker(opts.mqtt) : null;
  if (broker) await collector.fromBroker(broker, opts.base);
  log.info({ url: `http://${m[1]}:${port}/v1/items`, mqtt: opts.mqtt ? redactUrl(opts.mqtt) : null, out: opts.out }, 'collector listening');
  await new Promise<void>((resolve) => ['SIGINT', 'SIGTERM'].forEach((s) => process.once(s, () => resolve())));
  await broker?.endAsync();
  await collector.close();
}
