import { readKeys } from '../crypto/index.js';
import { OutpostError } from '../errors.js';
import { createLogger } from '../log.js';
import { openBroker, redactUrl } from '../mqtt/index.js';
import { Collector } from '../upload/index.js';
import { brokerTarget, describeBrokerEvent, reconnecting, type BrokerFlags } from './brokerFlags.js';
import { verifyCommand } from './collectVerify.js';
import { keysFolder } from './common.js';
import { readTrustFile } from './trustFile.js';

export interface CollectOptions extends BrokerFlags {
  listen: string;
  keys?: string;
  trust?: string;
  out: string;
  /** a broker URL, or true: the one of --config */
  mqtt?: string | boolean;
  verify?: boolean;
  json?: boolean;
  seqWindow: number;
  quotaBytes: number;
  quotaItems: number;
}

/** `outpost collect`: receives sealed items over HTTP (and MQTT with --mqtt) until SIGTERM. */
export async function collectCommand(opts: CollectOptions): Promise<void> {
  if (opts.verify) return verifyCommand(opts.out, opts.json);
  if (!opts.keys || !opts.trust) throw new OutpostError('OUTPOST_E_USAGE', 'outpost collect needs --keys DIR and --trust FILE (or --verify)');
  const m = /^(.*):(\d+)$/.exec(opts.listen);
  if (!m) throw new OutpostError('OUTPOST_E_USAGE', `--listen ${opts.listen} is not HOST:PORT`);
  const target = opts.mqtt ? brokerTarget(typeof opts.mqtt === 'string' ? opts.mqtt : undefined, opts, '--mqtt') : null;
  const log = createLogger({ level: 'info', format: 'auto' }).child({ component: 'collector' });
  const limits = { seqWindow: opts.seqWindow, quotaBytes: opts.quotaBytes, quotaItems: opts.quotaItems };
  const collector = new Collector(readKeys(keysFolder(opts.keys, '--keys')), readTrustFile(opts.trust), opts.out, log, undefined, limits);
  const port = await collector.listen(m[1], Number(m[2]));
  const reconnect =
    target && reconnecting((e) => (e.kind === 'lost' ? log.warn(describeBrokerEvent(target.url, e)) : log.info(describeBrokerEvent(target.url, e))));
  const broker = target && reconnect ? await openBroker(target.url, { ...target.options, reconnect }) : null;
  if (broker && target) await collector.fromBroker(broker, target.base);
  log.info({ url: `http://${m[1]}:${port}/v1/items`, mqtt: target ? redactUrl(target.url) : null, out: opts.out }, 'collector listening');
  await new Promise<void>((resolve) => ['SIGINT', 'SIGTERM'].forEach((s) => process.once(s, () => resolve())));
  await broker?.endAsync();
  await collector.close();
}
