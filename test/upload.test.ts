import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open as lmdbOpen } from 'lmdb';
import { fromB64, generateKeys, ItemOpener, ItemSealer, readKeys, SealedEnvelope, toB64 } from '../src/crypto/index.js';
import { checkAnswer, Collector, encodeBatch, grownBox, Outbox, resealLegacy, RESULT_TYPE, signAnswer, verifyItems } from '../src/upload/index.js';
import { freePort, runCli } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { CLI, tempDir } from './helpers/paths.js';

const silent = pino({ level: 'silent' });
const item = (seq: number, size = 100) => Buffer.alloc(size, seq % 251);

describe('the outbox (LMDB)', () => {
  it('assigns seqs from 1 without gaps, across a close and reopen, and keeps items until acked', async () => {
    const dir = tempDir();
    let ob = Outbox.open(dir, { maxBytes: 1 << 20, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' });
    for (let i = 0; i < 3; i++) await ob.enqueue((seq) => item(seq), Date.now());
    await ob.ack([1]);
    await ob.close();
    ob = Outbox.open(dir, { maxBytes: 1 << 20, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' });
    expect(await ob.enqueue((seq) => item(seq), Date.now())).toBe(4);
    expect(ob.oldest(10, 1 << 20).map((i) => i.seq)).toEqual([2, 3, 4]);
    expect(ob.bytes).toBe(300);
    await ob.close();
  });

  it('has an epoch made when it is created and kept across reopening; a new state dir (a reflashed board) gets a new one', async () => {
    const dir = tempDir();
    const limits = { maxBytes: 1 << 20, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' as const };
    let ob = Outbox.open(dir, limits);
    const epoch = ob.epoch;
    expect(epoch).toMatch(/^[0-9a-f]{32}$/);
    await ob.close();
    ob = Outbox.open(dir, limits);
    expect(ob.epoch).toBe(epoch);
    await ob.close();
    const reflashed = Outbox.open(tempDir(), limits);
    expect(reflashed.epoch).not.toBe(epoch);
    expect(await reflashed.enqueue((seq) => item(seq), Date.now())).toBe(1);
    await reflashed.close();
  });

  it('an outbox from before epochs: version-1 items resealed as version 2 and renumbered from 1 in its new epoch', async () => {
    const dir = tempDir();
    const device = { sign: nacl.sign.keyPair(), box: nacl.box.keyPair() };
    const collector = nacl.box.keyPair();
    const v1 = new SealedEnvelope(device.box);
    const legacy = lmdbOpen({ path: dir, compression: false });
    const items = legacy.openDB<{ at: number; env: Buffer }, number>('items', { keyEncoding: 'uint32' });
    for (const seq of [5, 6, 7])
      await items.put(seq, { at: seq, env: v1.seal({ device: 'cam-01', seq, contentType: RESULT_TYPE }, Buffer.from(`item ${seq}`), collector.publicKey) });
    await items.put(8, { at: 8, env: v1.seal({ device: 'cam-01', seq: 8, contentType: RESULT_TYPE }, Buffer.from('x'), nacl.box.keyPair().publicKey) });
    await legacy.openDB<unknown, string>('meta', {}).put('next', 9);
    await legacy.close();
    const ob = Outbox.open(dir, { maxBytes: 1 << 20, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' });
    expect(ob.legacy).toBe(true);
    const m = await ob.migrate(resealLegacy(device, collector.publicKey, new ItemSealer(device.sign, collector.publicKey), ob.epoch));
    expect(m).toMatchObject({ resealed: 3, unreadable: 1 });
    expect(ob.legacy).toBe(false);
    expect(ob.dropped().unreadable).toBe(1);
    const opened = ob.oldest(10, 1 << 20).map((i) => ({ seq: i.seq, ...new ItemOpener(collector).open<{ seq: number; epoch: string }>(i.envelope) }));
    expect(opened.map((o) => [o.seq, o.header.seq, o.header.epoch, o.payload.toString()])).toEqual([
      [1, 1, ob.epoch, 'item 5'],
      [2, 2, ob.epoch, 'item 6'],
      [3, 3, ob.epoch, 'item 7'],
    ]);
    expect(await ob.enqueue((seq) => item(seq), Date.now())).toBe(4);
    await ob.close();
  });

  it('when full, drop-oldest drops (counted, seqs recorded) and refuse-new refuses (counted, no seq spent)', async () => {
    const drop = Outbox.open(tempDir(), { maxBytes: 1 << 20, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' });
    for (let i = 0; i < 12; i++) await drop.enqueue((seq) => item(seq, 100_000), Date.now());
    expect(drop.bytes).toBeLessThanOrEqual(1 << 20);
    expect(drop.dropped()).toMatchObject({ full: 2 });
    expect(drop.unreported()).toEqual([[1, 2, 'full']]);
    expect(drop.oldest(100, 1 << 30)[0].seq).toBe(3);
    await drop.close();
    const refuse = Outbox.open(tempDir(), { maxBytes: 1 << 20, maxAgeMs: 3_600_000, whenFull: 'refuse-new' });
    const seqs = [];
    for (let i = 0; i < 12; i++) seqs.push(await refuse.enqueue((seq) => item(seq, 100_000), Date.now()));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, null, null]);
    expect(refuse.dropped()).toMatchObject({ 'refused-new': 2, full: 0 });
    expect(await refuse.enqueue((seq) => item(seq, 10), Date.now())).toBe(11); // the refused ones spent no seq
    await refuse.close();
  });

  it('drops what waited longer than maxAgeHours, and records the seqs', async () => {
    const ob = Outbox.open(tempDir(), { maxBytes: 1 << 20, maxAgeMs: 1000, whenFull: 'drop-oldest' });
    await ob.enqueue((s) => item(s), 0);
    await ob.enqueue((s) => item(s), 500);
    await ob.enqueue((s) => item(s), 5000);
    expect(await ob.sweep(5200)).toBe(2);
    expect(ob.dropped().expired).toBe(2);
    expect(ob.unreported()).toEqual([[1, 2, 'expired']]);
    await ob.close();
  });

  it('holds only ciphertext: the file read without the keys shows none of the plaintext', async () => {
    const dir = tempDir();
    const seal = new ItemSealer(nacl.sign.keyPair(), nacl.box.keyPair().publicKey);
    const ob = Outbox.open(dir, { maxBytes: 1 << 20, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' });
    expect(ob.epoch).toMatch(/^[0-9a-f]{32}$/);
    const secret = JSON.stringify({ camera: 'front-door', output: { lines: [{ text: 'LICENCE PLATE AB-123-CD' }] } });
    for (let i = 0; i < 5; i++)
      await ob.enqueue((seq) => seal.seal({ device: 'cam-01', epoch: ob.epoch, seq, contentType: RESULT_TYPE }, Buffer.from(secret)), Date.now());
    await ob.close();
    const raw = readdirSync(dir)
      .map((f) => readFileSync(join(dir, f)).toString('latin1'))
      .join('');
    for (const plain of ['LICENCE PLATE', 'front-door', 'cam-01', RESULT_TYPE]) expect(raw).not.toContain(plain);
  });
});

describe("the collector's signed answer", () => {
  const collector = nacl.sign.keyPair();
  const sent = { id: 'b7', device: 'cam-01', epoch: 'ab'.repeat(16), seqs: new Set([4, 5, 6]) };
  const answer = (over: Record<string, unknown> = {}, key = collector.secretKey) =>
    signAnswer({ device: 'cam-01', epoch: sent.epoch, batch: 'b7', acked: [4, 5], refused: [], ...over }, key);

  it('removes only seqs of that batch, for this device and epoch, signed by the collector; counts the rest by reason', () => {
    expect(checkAnswer(answer(), sent, collector.publicKey)).toEqual({ ok: true, answer: { acked: [4, 5], refused: [] }, strays: 0 });
    expect(checkAnswer(answer({ acked: [1, 2, 4, 5000] }), sent, collector.publicKey)).toMatchObject({ ok: true, answer: { acked: [4] }, strays: 3 });
    const reason = (raw: unknown) => {
      const v = checkAnswer(raw, sent, collector.publicKey);
      return v.ok ? 'ok' : v.reason;
    };
    expect(reason({ batch: 'b7', acked: [4, 5], refused: [] })).toBe('malformed'); // v1's unsigned answer
    expect(reason(answer({}, nacl.sign.keyPair().secretKey))).toBe('bad-signature');
    expect(reason({ ...answer(), acked: [4, 5, 6] })).toBe('bad-signature');
    expect(reason(answer({ batch: 'b6' }))).toBe('wrong-batch');
    expect(reason(answer({ device: 'cam-02' }))).toBe('wrong-device');
    expect(reason(answer({ epoch: 'cd'.repeat(16) }))).toBe('wrong-epoch');
    expect(reason(answer({ device: '', epoch: '', acked: [], refused: [{ index: -1, reason: 'garbage', message: 'x' }] }))).toBe('ok');
    expect(reason(null)).toBe('malformed');
  });
});

describe('outpost collect (a real process, items posted with curl)', () => {
  const dir = tempDir();
  let url: string;
  let collector: ReturnType<typeof runCollector>;
  const device = () => readKeys(join(dir, 'device'));
  const collectorBox = () => readKeys(join(dir, 'collector')).box.publicKey;
  const EPOCH = 'ab'.repeat(16);
  const envelope = (seq: number, keys = device().sign, recipient = collectorBox(), header: Record<string, unknown> = {}, payload?: Buffer) =>
    new ItemSealer(keys, recipient).seal(
      { device: 'cam-01', epoch: EPOCH, seq, contentType: RESULT_TYPE, capturedAt: 1, ...header },
      payload ?? Buffer.from(JSON.stringify({ seq })),
    );

  function runCollector(port: number) {
    return spawn(
      process.execPath,
      [CLI, 'collect', '--listen', `127.0.0.1:${port}`, '--keys', join(dir, 'collector'), '--trust', join(dir, 'trust.yaml'), '--out', join(dir, 'out')],
      { stdio: 'ignore' },
    );
  }
  /** POSTs bytes with curl: the HTTP status and the JSON answer. */
  function post(body: Buffer, batch = 'none'): { status: number; answer: { acked: number[]; refused: { reason: string }[] } } {
    const file = join(tempDir(), 'body');
    writeFileSync(file, body);
    const r = spawnSync(
      'curl',
      [
        '-s',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        '--data-binary',
        `@${file}`,
        '-H',
        'content-type: application/vnd.outpost.batch',
        '-H',
        `x-outpost-batch: ${batch}`,
        `${url}/v1/items`,
      ],
      { encoding: 'utf8' },
    );
    const lines = r.stdout.trim().split('\n');
    return { status: Number(lines.at(-1)), answer: JSON.parse(lines.slice(0, -1).join('\n')) };
  }

  beforeAll(async () => {
    generateKeys(join(dir, 'device'));
    generateKeys(join(dir, 'collector'));
    writeFileSync(join(dir, 'trust.yaml'), `- { name: cam-01, sign: ${toB64(device().sign.publicKey)} }\n`);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    collector = runCollector(port);
    for (
      let i = 0;
      i < 100 &&
      !(await fetch(`${url}/metrics`).then(
        () => true,
        () => false,
      ));
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
  });

  afterAll(() => collector?.kill());

  it.skipIf(missingTool('curl', 'curl'))(
    'stores good items once, refuses tampered, truncated, wrong-key, unknown-key and garbage ones, each with its status',
    () => {
      const first = post(encodeBatch([envelope(1), envelope(2)]), 'b1');
      expect(first).toMatchObject({ status: 200, answer: { acked: [1, 2], device: 'cam-01', epoch: EPOCH, batch: 'b1' } });
      // signed by the collector's key, for this batch, device and epoch
      const collectorSign = fromB64(JSON.parse(readFileSync(join(dir, 'collector', 'public.json'), 'utf8')).sign)!;
      const sent = { id: 'b1', device: 'cam-01', epoch: EPOCH, seqs: new Set([1, 2]) };
      expect(checkAnswer(first.answer, sent, collectorSign)).toMatchObject({ ok: true, answer: { acked: [1, 2] } });
      expect(checkAnswer({ ...first.answer, acked: [1, 2, 3] }, sent, collectorSign)).toMatchObject({ ok: false, reason: 'bad-signature' });
      expect(post(encodeBatch([envelope(1)]))).toMatchObject({ status: 200, answer: { acked: [1] } }); // a replay: acked, not stored twice
      const tampered = envelope(3);
      tampered[tampered.length - 5] ^= 0xff;
      // sealed by a stranger, with the trusted device's key written over the one in the clear
      const impostor = envelope(3, nacl.sign.keyPair());
      impostor.set(device().sign.publicKey, 5);
      const v1 = new SealedEnvelope(device().box).seal({ device: 'cam-01', seq: 3, contentType: RESULT_TYPE }, Buffer.from('{}'), collectorBox());
      const cases: [string, Buffer, number, string][] = [
        ['tampered', encodeBatch([tampered]), 422, 'cannot-open'],
        ['wrong key', encodeBatch([envelope(3, device().sign, nacl.box.keyPair().publicKey)]), 422, 'cannot-open'],
        ['not signed by its sender', encodeBatch([impostor]), 403, 'bad-signature'],
        ['version 1', encodeBatch([v1]), 400, 'version'],
        ['truncated envelope', encodeBatch([envelope(3).subarray(0, 50)]), 400, 'truncated'],
        ['truncated batch', encodeBatch([envelope(3)]).subarray(0, 80), 400, 'truncated'],
        ['unknown sender', encodeBatch([envelope(3, nacl.sign.keyPair())]), 403, 'unknown-key'],
        ['another device', encodeBatch([envelope(3, device().sign, collectorBox(), { device: 'cam-02' })]), 403, 'wrong-sender'],
        ['garbage', Buffer.from('garbage garbage garbage garbage'), 400, 'garbage'],
      ];
      for (const [what, body, status, reason] of cases) expect(post(body), what).toMatchObject({ status, answer: { acked: [], refused: [{ reason }] } });
      // a trusted device's item that is not what it says (not JSON) is refused, not a crash
      const notJson = envelope(9, device().sign, collectorBox(), {}, Buffer.from([0xff, 0x00, 0x13]));
      expect(post(encodeBatch([notJson]))).toMatchObject({ status: 422, answer: { refused: [{ reason: 'bad-payload' }] } });
      // good items keep flowing in the same batch as a bad one
      expect(post(encodeBatch([tampered, envelope(3)]))).toMatchObject({ status: 200, answer: { acked: [3], refused: [{ reason: 'cannot-open' }] } });
      const names = readdirSync(join(dir, 'out', 'cam-01', EPOCH)).sort();
      expect(names).toEqual(['1.json', '2.json', '3.json']);
      expect(JSON.parse(readFileSync(join(dir, 'out', 'cam-01', EPOCH, '1.json'), 'utf8'))).toMatchObject({
        header: { device: 'cam-01', epoch: EPOCH, seq: 1 },
        result: { seq: 1 },
      });
    },
  );

  it('counts refusals by reason on /metrics', async () => {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const reason of ['cannot-open', 'truncated', 'unknown-key', 'garbage', 'wrong-sender', 'bad-signature', 'version'])
      expect(metrics, reason).toMatch(new RegExp(`^outpost_collector_refused_total\\{reason="${reason}"\\} [1-9]`, 'm'));
    expect(metrics).toMatch(/^outpost_collector_items_total\{outcome="duplicate"\} 1$/m);
  });

  it('--verify names every gap and exits 1; explained drops are no gap', () => {
    const out = tempDir();
    const dev = join(out, 'cam-9', EPOCH);
    mkdirSync(dev, { recursive: true });
    for (const s of [1, 2, 5, 8]) writeFileSync(join(dev, `${s}.json`), '{}');
    writeFileSync(join(dev, '9.dropped.json'), JSON.stringify({ ranges: [[6, 7, 'full']] }));
    expect(verifyItems(out)).toEqual([
      {
        device: 'cam-9',
        epochs: [
          { epoch: EPOCH, startedAt: expect.any(String), items: 5, highest: 9, dropped: { full: 2 }, missing: [[3, 4]], conflicts: 0, unreadableNotices: 0 },
        ],
      },
    ]);
    const r = runCli(['collect', '--verify', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`cam-9/${EPOCH}: 5 items, seq 1..9, 2 dropped (full), MISSING 3-4`);
  });

  it('refuses a body over its limit with 413', async () => {
    const c = new Collector(readKeys(join(dir, 'collector')), [], tempDir(), silent, 1024);
    expect((await c.take(Buffer.alloc(2048), null)).status).toBe(413);
    expect(statSync(join(dir, 'out')).isDirectory()).toBe(true);
  });
});

describe('anonymising faces', () => {
  it('grows each face box by the fraction of its size on every side', () => {
    expect(grownBox([100, 50, 200, 250], 0.15)).toEqual([85, 20, 215, 280]);
    expect(grownBox([10, 10, 20, 20], 0)).toEqual([10, 10, 20, 20]);
  });
});
