import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeys, ItemSealer, readKeys, toB64 } from '../src/crypto/index.js';
import { DROPPED_TYPE, encodeBatch, RESULT_TYPE, verifyItems } from '../src/upload/index.js';
import { freePort, runCli } from './helpers/daemonProcess.js';
import { CLI, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * A trusted device that misbehaves (absurd seqs and drop notices, other content under a stored seq, more than its
 * quota) against a real `outpost collect`, and what `--verify` makes of the folder afterwards.
 */
const dir = tempDir();
const collectorKeys = () => readKeys(join(dir, 'collector'));
const devices = { 'cam-01': nacl.sign.keyPair(), 'cam-02': nacl.sign.keyPair(), 'cam-03': nacl.sign.keyPair() };
type Device = keyof typeof devices;
const epochA = randomBytes(16).toString('hex');
const epochB = randomBytes(16).toString('hex');
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);

interface Item {
  device?: Device;
  seq: unknown;
  epoch?: string;
  result?: unknown;
  jpeg?: Buffer;
  drops?: unknown;
  raw?: Buffer;
}

function seal({ device = 'cam-01', seq, epoch = epochA, result = { seq }, jpeg, drops, raw }: Item): Buffer {
  const json = raw ?? Buffer.from(JSON.stringify(drops !== undefined ? { ranges: drops } : result));
  const parts =
    drops !== undefined ? undefined : [{ type: 'application/json', bytes: json.length }, ...(jpeg ? [{ type: 'image/jpeg', bytes: jpeg.length }] : [])];
  const header = { device, epoch, seq, contentType: drops !== undefined ? DROPPED_TYPE : RESULT_TYPE, capturedAt: 1, ...(parts ? { parts } : {}) };
  return new ItemSealer(devices[device], collectorKeys().box.publicKey).seal(header, jpeg ? Buffer.concat([json, jpeg]) : json);
}

interface Answer {
  acked: number[];
  refused: { seq?: number; reason: string; message: string }[];
}

class RunningCollector {
  readonly out: string;
  private constructor(
    private readonly proc: ChildProcess,
    readonly url: string,
    out: string,
  ) {
    this.out = out;
  }

  /** `outpost collect` under a given umask, with extra flags. */
  static async start(umask: string, flags: string[]): Promise<RunningCollector> {
    const port = await freePort();
    const out = join(tempDir(), 'out');
    const args = [
      CLI,
      'collect',
      '--listen',
      `127.0.0.1:${port}`,
      '--keys',
      join(dir, 'collector'),
      '--trust',
      join(dir, 'trust.yaml'),
      '--out',
      out,
      ...flags,
    ];
    const proc = spawn('sh', ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, ...args], { stdio: 'ignore' });
    const c = new RunningCollector(proc, `http://127.0.0.1:${port}`, out);
    await waitUntil(
      () =>
        fetch(`${c.url}/metrics`).then(
          () => true,
          () => false,
        ),
      'the collector listening',
    );
    return c;
  }

  async post(...items: Item[]): Promise<{ status: number; answer: Answer }> {
    const res = await fetch(`${this.url}/v1/items`, { method: 'POST', body: new Uint8Array(encodeBatch(items.map(seal))) });
    return { status: res.status, answer: (await res.json()) as Answer };
  }

  metrics(): Promise<string> {
    return fetch(`${this.url}/metrics`).then((r) => r.text());
  }

  stop(): void {
    this.proc.kill();
  }
}

/** Every path under a folder, folders included, but the temp file a test planted as a crash's leftover. */
function walk(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((p) => !p.includes('.tmp-'))
    .map((p) => join(root, p));
}
const names = (folder: string) => readdirSync(folder).sort();
const mode = (p: string) => statSync(p).mode & 0o777;
const verify = (out: string, json = false) => runCli(['collect', '--verify', '--out', out, ...(json ? ['--json'] : [])]);

beforeAll(() => {
  generateKeys(join(dir, 'collector'));
  writeFileSync(
    join(dir, 'trust.yaml'),
    Object.entries(devices)
      .map(([name, k]) => `- { name: ${name}, sign: ${toB64(k.publicKey)} }\n`)
      .join(''),
  );
});

describe('outpost collect refuses what it could not account for', () => {
  let c: RunningCollector;
  beforeAll(async () => {
    c = await RunningCollector.start('000', []);
  });
  afterAll(() => c?.stop());

  it('refuses absurd seqs (bad-seq) and stores nothing for them; a good item of the same batch is stored', async () => {
    const absurd = [9007199254740991, 1e21, 0, -1, 1.5, '7', 1_000_002];
    const { status, answer } = await c.post(...absurd.map((seq) => ({ seq })), { seq: 1 });
    expect(status).toBe(200);
    expect(answer.acked).toEqual([1]);
    expect(answer.refused.map((r) => r.reason)).toEqual(absurd.map(() => 'bad-seq'));
    expect(answer.refused[1]).not.toHaveProperty('seq'); // 1e21 is not echoed back as if it were a seq
    expect(names(join(c.out, 'cam-01', epochA))).toEqual(['1.json']);
    const alone = await c.post({ seq: 1e21 });
    expect(alone.status).toBe(422);
    expect(await c.metrics()).toMatch(/^outpost_collector_refused_total\{reason="bad-seq"\} 8$/m);
  });

  it('refuses drop notices whose ranges do not hold up (bad-drop-range), and one past the seq window (bad-seq)', async () => {
    const bad = [[[5, 3, 'full']], [[1.5, 2, 'full']], [[0, 2, 'full']], [[2, 40, 'full']], [[2, 3]], [], Array.from({ length: 10_001 }, () => [2, 3, 'full'])];
    const { answer } = await c.post(...bad.map((drops) => ({ seq: 20, drops })), { seq: 20, drops: 'all of them' });
    expect(answer.refused.map((r) => r.reason)).toEqual([...bad, 0].map(() => 'bad-drop-range'));
    expect((await c.post({ seq: 300_000_001, drops: [[10, 300_000_000, 'full']] })).answer.refused[0].reason).toBe('bad-seq');
    expect(names(join(c.out, 'cam-01', epochA))).toEqual(['1.json']);
  });

  it('stores an item whole or not at all: a refused frame leaves no file; a crash leftover never stands in', async () => {
    const notJson = await c.post({ seq: 2, raw: Buffer.from('{not json'), jpeg: JPEG });
    expect(notJson.answer.refused[0].reason).toBe('bad-payload');
    expect(names(join(c.out, 'cam-01', epochA))).toEqual(['1.json']);
    // what a crash between the frame and the JSON leaves: an orphan frame and a temp file
    const e = join(c.out, 'cam-01', epochA);
    writeFileSync(join(e, '3.jpg'), 'an orphan frame');
    writeFileSync(join(e, '4.jpg'), 'an orphan frame');
    writeFileSync(join(e, '.5.json.tmp-0123456789ab'), '{}');
    const before = JSON.parse(verify(c.out, true).stdout).devices[0].epochs[0];
    expect(before).toMatchObject({ items: 1, highest: 1, missing: [] });
    expect((await c.post({ seq: 2 }, { seq: 3 }, { seq: 4, jpeg: JPEG })).answer.acked).toEqual([2, 3, 4]);
    expect(names(e)).toEqual(['.5.json.tmp-0123456789ab', '1.json', '2.json', '3.json', '4.jpg', '4.json']);
    expect(readFileSync(join(e, '4.jpg'))).toEqual(JPEG);
  });

  it('keeps other content under a stored seq aside as a conflict, acks it, and --verify reports it with exit 1', async () => {
    expect((await c.post({ seq: 2 })).answer.acked).toEqual([2]); // the same item again: a duplicate
    const other = { seq: 2, result: { seq: 2, forged: true } };
    expect((await c.post(other)).answer.acked).toEqual([2]);
    expect((await c.post(other)).answer.acked).toEqual([2]); // the same conflict again is kept once
    const e = join(c.out, 'cam-01', epochA);
    expect(JSON.parse(readFileSync(join(e, '2.json'), 'utf8')).result).toEqual({ seq: 2 }); // the first stays
    const aside = names(join(e, 'conflicts'));
    expect(aside).toHaveLength(1);
    expect(aside[0]).toMatch(/^2-[0-9a-f]{16}\.json$/);
    expect(JSON.parse(readFileSync(join(e, 'conflicts', aside[0]), 'utf8')).result).toEqual({ seq: 2, forged: true });
    const metrics = await c.metrics();
    expect(metrics).toMatch(/^outpost_collector_items_total\{outcome="conflict"\} 2$/m);
    expect(metrics).toMatch(/^outpost_collector_items_total\{outcome="duplicate"\} 1$/m);
    const r = verify(c.out);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toContain(`cam-01/${epochA}: 4 items, seq 1..4, nothing missing, 1 CONFLICTING`);
  });

  it('keeps a new outbox (epoch) apart: seqs start again at 1, and --verify says when it began', async () => {
    expect((await c.post({ seq: 1, epoch: epochB }, { seq: 3, epoch: epochB })).answer.acked).toEqual([1, 3]);
    expect(readFileSync(join(c.out, 'cam-01', epochA, '1.json'), 'utf8')).not.toContain(epochB);
    const bad = await c.post({ seq: 1, epoch: 'ABC' }, { seq: 1, epoch: '../../../etc' });
    expect(bad.answer.refused.map((r) => r.reason)).toEqual(['bad-header', 'bad-header']);
    const r = verify(c.out);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^cam-01/${epochB}: a new epoch .* since 20\\d\\d-.*; 2 items, seq 1..3, MISSING 2$`, 'm'));
    const json = JSON.parse(verify(c.out, true).stdout).devices[0];
    expect(json.epochs.map((e: { epoch: string }) => e.epoch)).toEqual([epochA, epochB]);
    expect(json.epochs[1]).toMatchObject({ items: 2, highest: 3, missing: [[2, 2]], conflicts: 0 });
  });

  it('writes 0640 files in 0750 folders under umask 000', () => {
    for (const p of walk(c.out)) expect(mode(p), p).toBe(statSync(p).isDirectory() ? 0o750 : 0o640);
    expect(mode(c.out)).toBe(0o750);
  });
});

describe('a device past its quota, a notice of 3e8 drops, umask 077', () => {
  let c: RunningCollector;
  beforeAll(async () => {
    c = await RunningCollector.start('077', ['--quota-items', '3', '--quota-bytes', '100000', '--seq-window', '1000000000']);
  });
  afterAll(() => c?.stop());

  it('refuses items past the quota (the device keeps them), counts them, still acks duplicates', async () => {
    expect((await c.post({ device: 'cam-02', seq: 1 }, { device: 'cam-02', seq: 2 }, { device: 'cam-02', seq: 3 })).answer.acked).toEqual([1, 2, 3]);
    const over = await c.post({ device: 'cam-02', seq: 4 });
    expect(over).toMatchObject({ status: 507, answer: { acked: [], refused: [{ reason: 'quota', seq: 4 }] } });
    expect(over.answer.refused[0].message).toMatch(/--quota-items/);
    expect((await c.post({ device: 'cam-02', seq: 3 })).answer.acked).toEqual([3]);
    const big = await c.post({ device: 'cam-03', seq: 1, jpeg: Buffer.alloc(200_000, 1) });
    expect(big.answer.refused[0].reason).toBe('quota');
    expect(await c.metrics()).toMatch(/^outpost_collector_refused_total\{reason="quota"\} 2$/m);
    expect(names(join(c.out, 'cam-02', epochA))).toEqual(['1.json', '2.json', '3.json']);
    expect(names(c.out)).toEqual(['cam-02']); // cam-03's refused frame left nothing, not even a folder
  });

  it('verifies a device claiming 3e8 drops from runs, without expanding them', async () => {
    const notice = { device: 'cam-01' as const, seq: 300_000_001, drops: [[10, 300_000_000, 'full']] };
    expect((await c.post({ device: 'cam-01', seq: 1 }, notice)).answer.acked).toEqual([1, 300_000_001]);
    let started = performance.now();
    const r = verify(c.out, true);
    const cli = performance.now() - started;
    started = performance.now();
    verifyItems(c.out);
    console.log(`--verify on a notice of [10, 3e8] drops: ${cli.toFixed(0)} ms for the CLI, ${(performance.now() - started).toFixed(1)} ms in verifyItems`);
    expect(r.code).toBe(1);
    const epoch = JSON.parse(r.stdout).devices.find((d: { device: string }) => d.device === 'cam-01').epochs[0];
    expect(epoch).toMatchObject({ items: 2, highest: 300_000_001, dropped: { full: 299_999_991 }, missing: [[2, 9]] });
  });

  it('writes 0640 files in 0750 folders under umask 077', () => {
    for (const p of walk(c.out)) expect(mode(p), p).toBe(statSync(p).isDirectory() ? 0o750 : 0o640);
  });
});

describe('outpost collect --verify and its flags', () => {
  it('finds the same missing seqs and drop counts from runs as a seq-by-seq walk does, on random folders', () => {
    for (let round = 0; round < 30; round++) {
      const out = tempDir();
      const e = join(out, 'cam-01', epochA);
      mkdirSync(e, { recursive: true });
      const stored = new Set(Array.from({ length: 12 }, () => 1 + Math.floor(Math.random() * 60)));
      const notice = Math.max(...stored) + 1;
      const drops = Array.from({ length: 4 }, () => {
        const from = 1 + Math.floor(Math.random() * (notice - 1));
        return [from, from + Math.floor(Math.random() * (notice - from)), round % 2 ? 'full' : 'expired'] as [number, number, string];
      });
      for (const seq of stored) writeFileSync(join(e, `${seq}.json`), '{}');
      writeFileSync(join(e, `${notice}.dropped.json`), JSON.stringify({ ranges: drops }));
      const told = new Set(drops.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i)));
      const missing: number[] = [];
      for (let s = 1; s < notice; s++) if (!stored.has(s) && !told.has(s)) missing.push(s);
      const [report] = verifyItems(out)![0].epochs;
      const reported = report.missing.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
      expect(reported, JSON.stringify({ stored: [...stored], drops })).toEqual(missing);
      expect(Object.values(report.dropped).reduce((n, d) => n + d, 0)).toBe([...told].filter((s) => !stored.has(s)).length);
      expect(report).toMatchObject({ items: stored.size + 1, highest: notice });
    }
  });

  it('exits 66 with a message naming a folder that does not exist', () => {
    const r = verify(join(tempDir(), 'nowhere'));
    expect(r.code).toBe(66);
    expect(r.stderr).toMatch(/OUTPOST_E_NOINPUT: --out .*nowhere does not exist/);
  });

  it('ignores crash leftovers and the old flat layout, and says so when OUT holds no items', () => {
    const out = tempDir();
    mkdirSync(join(out, 'cam-01', epochA), { recursive: true });
    writeFileSync(join(out, 'cam-01', epochA, '7.jpg'), 'orphan');
    writeFileSync(join(out, 'cam-01', '1e+21.json'), '{}');
    const r = verify(out);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out}: no items yet\n`);
  });

  it('refuses a quota or window that is not a whole number ≥ 1, naming the flag', () => {
    for (const flags of [
      ['--quota-items', 'lots'],
      ['--seq-window', '0'],
    ]) {
      const r = runCli(['collect', '--out', tempDir(), '--verify', ...flags]);
      expect(r.code, flags.join(' ')).not.toBe(0);
      expect(r.stderr).toContain(flags[0]);
    }
  });
});
