import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../src/cli/bench/simDevice.js';
import { createServer, type Server } from 'node:http';
import {
  checkAnswer,
  DROPPED_TYPE,
  encodeBatch,
  FolderStore,
  HttpTransport,
  migratePg,
  PgItemStore,
  RESULT_TYPE,
  verifyItems,
  verifyPg,
  type OpenedItem,
} from '../src/upload/index.js';
import { pino } from 'pino';
import { fromB64, generateKeys, ItemSealer, readKeys } from '../src/crypto/index.js';
import { Mosquitto } from './helpers/broker.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { tempDir } from './helpers/paths.js';
import { missingPostgres, Postgres } from './helpers/postgres.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 22 with real parts: PostgreSQL, Mosquitto 2 (shared subscriptions), two `outpost collect` processes, six devices. */
const skip = missingPostgres() || missingTool('mosquitto', 'mosquitto');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface VerifyJson {
  devices: { device: string; epochs: { items: number; missing: [number, number][]; conflicts: number; dropped: Record<string, number> }[] }[];
}

describe.skipIf(skip)('collectors on PostgreSQL', () => {
  let db: Postgres;
  let broker: Mosquitto;
  let sql: pg.Pool;
  const dir = tempDir('outpost-collect-pg-');
  const collectors: DaemonProcess[] = [];
  const devices: SimDevice[] = [];

  beforeAll(async () => {
    [db, broker] = await Promise.all([Postgres.start(), Mosquitto.start()]);
    sql = new pg.Pool({ connectionString: db.url, max: 1 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.stop()));
    collectors.forEach((c) => c.kill('SIGKILL'));
    await sql?.end();
    await broker?.down();
    db?.down();
  });

  it('migrates idempotently and says which version it holds', () => {
    const first = runCli(['collect', '--migrate', '--store', db.url]);
    expect(first.stdout).toContain('schema migrated from version 0 to 1');
    const again = runCli(['collect', '--migrate', '--store', db.url]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('schema version 1: up to date');
  });

  it('two collectors, devices over HTTP (two URLs) and MQTT ($share): one collector SIGKILLed, the database stopped 20 s; nothing lost', async () => {
    const collectorKeys = generateKeys(join(dir, 'collector'));
    const collector = { box: fromB64(collectorKeys.box)!, sign: fromB64(collectorKeys.sign)! };
    const ports = [await freePort(), await freePort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    for (let i = 0; i < 6; i++) {
      generateKeys(join(dir, `dev-${i}`, 'keys'));
      const via = i < 3 ? { urls } : { broker: broker.url, base: 'outpost' };
      const retry = { initialMs: 200, maxMs: 1500 };
      devices.push(
        new SimDevice({
          name: `dev-${i}`,
          dir: join(dir, `dev-${i}`),
          keys: readKeys(join(dir, `dev-${i}`, 'keys')),
          collector,
          via,
          batchItems: 20,
          timeoutSeconds: 3,
          retry,
        }),
      );
    }
    writeFileSync(join(dir, 'trust.yaml'), devices.map((d) => d.trustLine).join('\n') + '\n');
    const args = (port: number) => [
      'collect',
      ...['--listen', `127.0.0.1:${port}`, '--keys', join(dir, 'collector'), '--trust', join(dir, 'trust.yaml')],
      ...['--store', db.url, '--mqtt', broker.url, '--base', 'outpost', '--share', 'collectors'],
    ];
    for (const port of ports) collectors.push(new DaemonProcess(args(port)));
    await Promise.all(collectors.map((c) => c.waitForLog('collector listening', 30)));
    await Promise.all(devices.map((d) => d.start()));

    let producing = true;
    const producer = (async () => {
      while (producing) {
        devices.forEach((d) => d.produce());
        await sleep(50);
      }
    })();
    try {
      await waitUntil(() => devices.every((d) => d.upload.delivered > 0), 'every device delivering', 300, 50);
      const first = await (await fetch(`${urls[0]}/metrics`)).text();
      expect(first).toMatch(/outpost_collector_items_total\{outcome="stored"\} [1-9]/);
      collectors[0].kill('SIGKILL'); // mid-run: HTTP devices fail over to the second URL, the broker moves the share
      await sleep(3000);
      const before = devices.map((d) => d.upload.delivered);
      await waitUntil(() => devices.every((d, i) => d.upload.delivered > before[i]), 'deliveries through the second collector', 300, 50);

      db.down();
      const failures = devices.map((d) => d.upload.failures);
      await sleep(2000);
      // what a device hears: 503, Retry-After, and an answer signed by the collector refusing the item as store-busy
      const sealer = new ItemSealer(readKeys(join(dir, 'dev-0', 'keys')).sign, collector.box);
      const header = { device: 'dev-0', epoch: 'c'.repeat(32), seq: 1, contentType: RESULT_TYPE, capturedAt: Date.now() };
      const busy = await fetch(`${urls[1]}/v1/items`, {
        method: 'POST',
        headers: { 'x-outpost-batch': 'abcd' },
        body: new Uint8Array(encodeBatch([sealer.seal(header, Buffer.from('{}'))])),
      });
      expect([busy.status, busy.headers.get('retry-after')]).toEqual([503, '5']);
      const sent = { id: 'abcd', device: 'dev-0', epoch: header.epoch, seqs: new Set([1]) };
      expect(checkAnswer(await busy.json(), sent, collector.sign)).toMatchObject({ ok: true, answer: { acked: [], refused: [{ reason: 'store-busy' }] } });
      await sleep(18_000);
      // the collector answered busy: every device backed off and kept what it made meanwhile
      for (const [i, d] of devices.entries()) {
        expect(d.upload.failures, d.opts.name).toBeGreaterThan(failures[i]);
        expect(d.upload.pending, d.opts.name).toBeGreaterThan(0);
      }
      db.up();
      await sleep(2000);
    } finally {
      producing = false;
      await producer;
    }
    await waitUntil(() => devices.every((d) => d.drained), 'every outbox drained', 600, 100).catch((err: Error) => {
      throw new Error(
        `${err.message}: ${JSON.stringify(devices.map((d) => ({ sent: d.sent, ...d.upload })))}\n${collectors[1].logs
          .slice(-5)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
      );
    });

    const sent = devices.reduce((n, d) => n + d.sent, 0);
    for (const d of devices)
      expect(
        Object.values(d.upload.dropped).filter((n) => n > 0),
        d.opts.name,
      ).toEqual([]);
    const rows = await sql.query<{ n: string }>("SELECT count(*) AS n FROM outpost_items WHERE content_type LIKE '%result%'");
    expect(Number(rows.rows[0].n)).toBe(sent);
    const verify = runCli(['collect', '--verify', '--json', '--store', db.url]);
    expect(verify.code, verify.stderr).toBe(0);
    const report = JSON.parse(verify.stdout) as VerifyJson;
    expect(report.devices.map((d) => d.device)).toEqual(devices.map((d) => d.opts.name));
    const epochs = report.devices.flatMap((d) => d.epochs);
    expect(epochs.map((e) => [e.missing, e.conflicts])).toEqual(devices.map(() => [[], 0]));
    expect(epochs.reduce((n, e) => n + e.items, 0)).toBe(sent);
  }, 100_000);

  it('agrees with the folder store: duplicates acked once, a differing one a conflict, told drops and gaps from SQL', async () => {
    await sql.query('CREATE DATABASE agree');
    const store = new PgItemStore(db.url.replace(/\/postgres$/, '/agree'), pino({ level: 'silent' }));
    const folder = new FolderStore(join(dir, 'agree-out'));
    try {
      await migratePg(store.database);
      const epoch = 'a'.repeat(32);
      const item = (seq: number, text: string): OpenedItem => ({
        header: { device: 'cam-9', epoch, seq, contentType: RESULT_TYPE, capturedAt: 1_700_000_000_000 + seq, camera: 'door' },
        payload: Buffer.from(JSON.stringify({ output: { lines: [{ text }] } })),
        envelopeSha256: Buffer.alloc(32, seq),
      });
      const notice = (seq: number, ranges: [number, number, string][]): OpenedItem => ({
        header: { device: 'cam-9', epoch, seq, contentType: DROPPED_TYPE, capturedAt: 0 },
        payload: Buffer.from(JSON.stringify({ ranges })),
        envelopeSha256: Buffer.alloc(32, 0),
      });
      const batches = [
        [item(1, 'A'), item(2, 'B'), item(5, 'E')],
        [
          item(2, 'B'),
          item(5, 'other'),
          notice(8, [
            [3, 3, 'full'],
            [6, 6, 'expired'],
          ]),
        ],
        [item(10, 'J'), item(10, 'J')],
      ];
      const outcomes = [];
      for (const b of batches) outcomes.push(await store.putAll('cam-9', b), await folder.putAll('cam-9', b));
      expect(outcomes.map(String)).toEqual(['stored,stored,stored', 'duplicate,conflict,stored', 'stored,duplicate'].flatMap((o) => [o, o]));
      const fromSql = await verifyPg(store.database);
      const fromFiles = verifyItems(join(dir, 'agree-out'))!;
      const withoutTimes = (r: typeof fromSql) => r.map((d) => ({ ...d, epochs: d.epochs.map((e) => ({ ...e, startedAt: null })) }));
      expect(withoutTimes(fromSql)).toEqual(withoutTimes(fromFiles));
      expect(fromSql[0].epochs[0]).toMatchObject({
        items: 5,
        highest: 10,
        dropped: { full: 1, expired: 1 },
        missing: [
          [4, 4],
          [7, 7],
          [9, 9],
        ],
        conflicts: 1,
      });
      const hits = await store.database.query('SELECT seq FROM outpost_items WHERE result @> \'{"output": {"lines": [{"text": "E"}]}}\'');
      expect(hits.rows).toEqual([{ seq: '5' }]);
      // what the database refuses in one item (a time past its range) costs that item, not its batch; U+0000 is refused before
      const late = item(12, 'L');
      late.header.capturedAt = 1e300;
      const deep = { ...item(15, ''), payload: Buffer.from('['.repeat(20_000) + ']'.repeat(20_000)) };
      const poisoned = await store.putAll('cam-9', [item(11, 'K'), late, item(13, 'nul \u0000'), item(14, 'N'), deep]);
      expect(poisoned.map((o) => (o instanceof Error ? o.message.replace(/[:(].*/s, '') : o))).toEqual([
        'stored',
        'the database refused the item',
        'the result holds a U+0000 character, which PostgreSQL cannot store',
        'stored',
        'Maximum call stack size exceeded',
      ]);
      // the quota's counts: every row and conflict once, a duplicate or a refused item not at all
      const held = await store.database.query(
        'SELECT d.items, (SELECT count(*) FROM outpost_items) AS rows, (SELECT count(*) FROM outpost_conflicts) AS conflicts FROM outpost_devices d',
      );
      expect(held.rows).toEqual([{ items: '8', rows: '7', conflicts: '1' }]);
    } finally {
      await store.close();
    }
  });

  it('holds the quota and the seq window across two stores on one database (the device keeps what is refused)', async () => {
    await sql.query('CREATE DATABASE quota');
    const url = db.url.replace(/\/postgres$/, '/quota');
    const [one, two] = [0, 1].map(() => new PgItemStore(url, pino({ level: 'silent' }), { quotaItems: 3, seqWindow: 10 }));
    try {
      await migratePg(one.database);
      const item = (seq: number): OpenedItem => ({
        header: { device: 'cam-q', epoch: 'b'.repeat(32), seq, contentType: RESULT_TYPE, capturedAt: 0 },
        payload: Buffer.from('{}'),
        envelopeSha256: Buffer.alloc(32),
      });
      const said = (o: unknown[]) => o.map((x) => (x instanceof Error ? (x as Error & { reason?: string }).reason : x));
      expect(said(await one.putAll('cam-q', [item(1), item(2)]))).toEqual(['stored', 'stored']);
      expect(said(await two.putAll('cam-q', [item(2), item(3), item(4), item(20)]))).toEqual(['duplicate', 'stored', 'quota', 'bad-seq']);
      expect(said(await one.putAll('cam-q', [item(4)]))).toEqual(['quota']);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });
});

describe('a device given several collector URLs', () => {
  it('moves to the next when one cannot be reached, stays there, and goes back to the first 5 minutes later', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const hits: string[] = [];
    const serve = (name: string, port: number) =>
      new Promise<Server>((resolve) => {
        const server = createServer((req, res) => {
          hits.push(name);
          req.resume().on('end', () => res.end(JSON.stringify({ acked: [1], refused: [] })));
        });
        server.listen(port, '127.0.0.1', () => resolve(server));
      });
    let now = 0;
    const transport = new HttpTransport([`http://127.0.0.1:${a}`, `http://127.0.0.1:${b}`], 2000, () => now);
    const accept = (raw: unknown) => raw as { acked: number[]; refused: [] }; // what the collector's key would check
    const send = () => transport.send(Buffer.from('batch'), 'ab', accept, new AbortController().signal);
    const second = await serve('b', b);
    try {
      await send(); // a is down: b takes it
      const first = await serve('a', a);
      await send(); // a is back, but the device stays with b
      now += 5 * 60_000;
      await send(); // later it goes back to its first collector
      expect(hits).toEqual(['b', 'b', 'a']);
      await new Promise((r) => first.close(r));
    } finally {
      transport.close();
      await new Promise((r) => second.close(r));
    }
    await expect(send()).rejects.toThrow(/no collector took the batch/);
  });
});
