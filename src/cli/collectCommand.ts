import { readKeys } from '../crypto/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { createLogger } from '../log.js';
import { openBroker, redactUrl } from '../mqtt/index.js';
import { Collector, FolderStore, PgItemStore, migratePg, type CollectorStore } from '../upload/index.js';
import type { Logger } from '../log.js';
import { brokerTarget, describeBrokerEvent, reconnecting, type BrokerFlags } from './brokerFlags.js';
import { verifyCommand } from './collectVerify.js';
import { keysFolder } from './common.js';
import { readTrustFile } from './trustFile.js';

export interface CollectOptions extends BrokerFlags {
  listen: string;
  keys?: string;
  trust?: string;
  /** the folder store's OUT (the default store) */
  out?: string;
  /** postgres://… : the items go to PostgreSQL instead of OUT */
  store?: string;
  /** create or migrate the --store database's schema, then exit */
  migrate?: boolean;
  /** MQTT shared-subscription group: collectors of one group split the batches between them */
  share?: string;
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
  checkStoreFlags(opts);
  if (opts.migrate) return migrateCommand(opts.store!);
  if (opts.verify) return verifyCommand(opts.store ? { url: opts.store } : { out: opts.out! }, opts.json);
  if (!opts.keys || !opts.trust) throw new OutpostError('OUTPOST_E_USAGE', 'outpost collect needs --keys DIR and --trust FILE (or --verify)');
  const m = /^(.*):(\d+)$/.exec(opts.listen);
  if (!m) throw new OutpostError('OUTPOST_E_USAGE', `--listen ${opts.listen} is not HOST:PORT`);
  const target = opts.mqtt ? brokerTarget(typeof opts.mqtt === 'string' ? opts.mqtt : undefined, opts, '--mqtt') : null;
  const log = createLogger({ level: 'info', format: 'auto' }).child({ component: 'collector' });
  const store = await openStore(opts, log);
  const collector = new Collector(readKeys(keysFolder(opts.keys, '--keys')), readTrustFile(opts.trust), store, log);
  const port = await collector.listen(m[1], Number(m[2]));
  const reconnect =
    target && reconnecting((e) => (e.kind === 'lost' ? log.warn(describeBrokerEvent(target.url, e)) : log.info(describeBrokerEvent(target.url, e))));
  const broker = target && reconnect ? await openBroker(target.url, { ...target.options, reconnect }) : null;
  if (broker && target) await collector.fromBroker(broker, target.base, opts.share);
  const where = opts.store ? { store: redactUrl(opts.store) } : { out: opts.out };
  log.info({ url: `http://${m[1]}:${port}/v1/items`, mqtt: target ? redactUrl(target.url) : null, share: opts.share ?? null, ...where }, 'collector listening');
  await new Promise<void>((resolve) => ['SIGINT', 'SIGTERM'].forEach((s) => process.once(s, () => resolve())));
  await broker?.endAsync();
  await collector.close();
}

function checkStoreFlags(opts: CollectOptions): void {
  if (opts.store && opts.out) throw new OutpostError('OUTPOST_E_USAGE', 'give --out DIR (the folder store) or --store postgres://…, not both');
  if (!opts.store && !opts.out) throw new OutpostError('OUTPOST_E_USAGE', 'outpost collect needs --out DIR or --store postgres://…');
  if (opts.store && !/^postgres(ql)?:\/\//.test(opts.store))
    throw new OutpostError('OUTPOST_E_USAGE', `--store ${redactUrl(opts.store)} is not a postgres:// URL (the folder store is --out DIR)`);
  if (opts.migrate && !opts.store) throw new OutpostError('OUTPOST_E_USAGE', '--migrate needs --store postgres://… (the folder store has no schema)');
  if (opts.share && !/^[A-Za-z0-9_-]{1,64}$/.test(opts.share))
    throw new OutpostError('OUTPOST_E_USAGE', `--share ${opts.share} is not letters, digits, "-" and "_"`);
  if (opts.share && !opts.mqtt) throw new OutpostError('OUTPOST_E_USAGE', '--share needs --mqtt (it names the shared subscription group)');
}

/** The folder store, or PostgreSQL with its schema brought up to date first (idempotent; several collectors may start at once). */
async function openStore(opts: CollectOptions, log: Logger): Promise<CollectorStore> {
  const limits = { seqWindow: opts.seqWindow, quotaBytes: opts.quotaBytes, quotaItems: opts.quotaItems };
  if (!opts.store) return new FolderStore(opts.out!, limits);
  const store = new PgItemStore(opts.store, log, limits);
  try {
    const m = await migratePg(store.database);
    if (m.from !== m.to) log.info({ from: m.from, to: m.to }, 'database schema migrated');
  } catch (err) {
    await store.close();
    throw new OutpostError(
      'OUTPOST_E_UNREACHABLE',
      `cannot open the store ${redactUrl(opts.store)} (${errorMessage(err)}); is PostgreSQL running, and may this user create tables?`,
    );
  }
  return store;
}

/** `outpost collect --migrate --store URL`: creates or migrates the schema, says from which version to which. */
async function migrateCommand(url: string): Promise<void> {
  const store = new PgItemStore(url, createLogger({ level: 'warn', format: 'auto' }));
  try {
    const m = await migratePg(store.database);
    process.stdout.write(m.from === m.to ? `schema version ${m.to}: up to date\n` : `schema migrated from version ${m.from} to ${m.to}\n`);
  } catch (err) {
    throw new OutpostError('OUTPOST_E_UNREACHABLE', `cannot migrate ${redactUrl(url)} (${errorMessage(err)})`);
  } finally {
    await store.close();
  }
}
