import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { open } from 'lmdb';
import mqtt from 'mqtt';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderDemoFrames } from '../src/camera/index.js';
import { generateKeys, ItemOpener, readKeys, SealedEnvelope, type PublicKeys } from '../src/crypto/index.js';
import { signAnswer } from '../src/upload/index.js';
import { Mosquitto } from './helpers/broker.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { CLI, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Issue 18 items 3 and 6, issue 19 item 1, with real processes: answers forged over HTTP and MQTT delete
 * nothing, the outbox does not open with the board's own keys, and an MQTT upload with no collector, a broker
 * outage, a backlog at start and a `restart` never takes the daemon down.
 */
const FORGED_ACKS = Array.from({ length: 5000 }, (_, i) => i + 1);

interface Board {
  dir: string;
  device: PublicKeys;
  collector: PublicKeys;
  alice: string;
  port: number;
  collectorPort: number;
  /** node warnings (MaxListenersExceeded …) go here instead of stderr */
  warnings: string;
}

async function board(): Promise<Board> {
  const dir = tempDir();
  const device = generateKeys(join(dir, 'state', 'keys'));
  const collector = generateKeys(join(dir, 'collector'));
  generateKeys(join(dir, 'alice'));
  writeFileSync(join(dir, 'trust.yaml'), `- { name: cam-01, sign: ${device.sign} }\n`);
  return { dir, device, collector, alice: join(dir, 'alice'), port: await freePort(), collectorPort: await freePort(), warnings: join(dir, 'warnings.txt') };
}

function config(b: Board, frames: string, extra = ''): string {
  const alice = JSON.parse(readFileSync(join(b.alice, 'public.json'), 'utf8')) as PublicKeys;
  return `node: { name: cam-01, stateDir: ${join(b.dir, 'state')} }
keyring:
  - { name: hq, sign: ${b.collector.sign}, box: ${b.collector.box}, roles: [collector] }
  - { name: alice, sign: ${alice.sign}, box: ${alice.box}, roles: [operator] }
cameras:
  - { name: door, source: { type: directory, path: ${frames}, fps: 4, loop: false } }
models:
  det: { file: builtin:ppocrv4-det }
pipelines:
  text: { stages: [{ name: detect, model: det, decoder: { type: db } }] }
status: { port: ${b.port} }
power: { enabled: false }
upload:
  collector: { url: "http://127.0.0.1:${b.collectorPort}", key: hq }
  delivery: { retry: { initialMs: 100, maxMs: 400 }, batchItems: 4, timeoutSeconds: 2 }
${extra}
logging: { format: json, results: false }
`;
}

const start = (b: Board, frames: string, extra = '') =>
  DaemonProcess.start(b.dir, config(b, frames, extra), { NODE_OPTIONS: `--redirect-warnings=${b.warnings}` });

function collect(b: Board, extra: string[] = []): ChildProcess {
  const args = ['collect', '--listen', `127.0.0.1:${b.collectorPort}`, '--keys', join(b.dir, 'collector'), '--trust', join(b.dir, 'trust.yaml')];
  return spawn(process.execPath, [CLI, ...args, '--out', join(b.dir, 'out'), ...extra], { stdio: 'ignore' });
}

const status = async (b: Board) => ((await (await fetch(`http://127.0.0.1:${b.port}/status`)).json()) as { upload: Upload }).upload;
interface Upload {
  pending: number;
  preparing: number;
  delivered: number;
  epoch: string;
  lastError: string | null;
  acksRefused: Record<string, number>;
}
const refusedAcks = (u: Upload) => Object.values(u.acksRefused).reduce((a, n) => a + n, 0);

/** A forged answer: every other one unsigned, the rest signed by a key that is not the collector's. */
function forgery(n: number, batch: string, epoch: string): string {
  const acked = FORGED_ACKS;
  if (n % 2 === 0) return JSON.stringify({ batch, acked, refused: [] });
  return JSON.stringify(signAnswer({ device: 'cam-01', epoch, batch, acked, refused: [] }, nacl.sign.keyPair().secretKey));
}

/** Every item in the outbox on disk, opened every way the board's own keys allow: how many open. */
function openWithDeviceKeys(b: Board): { items: number; openedByDevice: number; openedByCollector: number } {
  const device = readKeys(join(b.dir, 'state', 'keys'));
  const collector = readKeys(join(b.dir, 'collector'));
  const env = open({ path: join(b.dir, 'state', 'outbox'), compression: false });
  const items = env.openDB<{ env: Buffer }, number>('items', { keyEncoding: 'uint32' });
  let n = 0;
  let openedByDevice = 0;
  let openedByCollector = 0;
  const opens = (f: () => unknown) => {
    try {
      return f() !== null;
    } catch {
      return false;
    }
  };
  for (const { value } of items.getRange()) {
    const e = value.env;
    n++;
    const stolen = [
      () => new ItemOpener(device.box).open(e), // as if the board were the collector
      () => new SealedEnvelope(device.box).open(e), // version 1's way
      // crypto_box opens from either side: the board's secret and the collector's public key (what opened v1)
      () => nacl.secretbox.open(e.subarray(93), e.subarray(69, 93), nacl.box.before(collector.box.publicKey, device.box.secretKey)),
      () => nacl.secretbox.open(e.subarray(93), e.subarray(69, 93), nacl.box.before(e.subarray(37, 69), device.box.secretKey)),
    ];
    if (stolen.some(opens)) openedByDevice++;
    if (opens(() => new ItemOpener(collector.box).open(e))) openedByCollector++;
  }
  void env.close();
  return { items: n, openedByDevice, openedByCollector };
}

function verified(b: Board) {
  const r = runCli(['collect', '--verify', '--out', join(b.dir, 'out'), '--json']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const device = JSON.parse(r.stdout).devices[0] as { device: string; epochs: { items: number; highest: number; missing: unknown[]; conflicts: number }[] };
  expect(device.epochs).toHaveLength(1); // one outbox, one epoch
  const e = device.epochs[0];
  return { device: device.device, items: e.items, highest: e.highest, gaps: e.missing, conflicts: e.conflicts };
}

function noWarnings(b: Board): void {
  const text = existsSync(b.warnings) ? readFileSync(b.warnings, 'utf8') : '';
  expect(text).not.toMatch(/MaxListenersExceeded|Unhandled|unhandled/);
}

let frames: string;
beforeAll(async () => {
  frames = tempDir();
  (await renderDemoFrames(10, 31, 320, 240)).forEach((f, i) => writeFileSync(join(frames, `${String(i).padStart(3, '0')}.jpg`), f.data));
});

describe('forged upload answers over HTTP', () => {
  let forger: Server | null = null;
  afterAll(() => forger?.close());

  it("delete nothing; the outbox does not open with the board's keys; the real collector then gets every item", async () => {
    const b = await board();
    let epoch = '';
    let answered = 0;
    forger = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(forgery(answered++, String(req.headers['x-outpost-batch']), epoch)));
    });
    await new Promise<void>((r) => forger!.listen(b.collectorPort, '127.0.0.1', r));
    let agent = start(b, frames);
    try {
      await agent.waitFor('items and forged answers', async () => {
        const u = await status(b).catch(() => null);
        epoch = u?.epoch ?? '';
        return u && u.pending >= 6 && refusedAcks(u) >= 6 ? u : undefined;
      });
      const u = await status(b);
      expect(u.delivered).toBe(0);
      expect(u.acksRefused['bad-signature']).toBeGreaterThan(0);
      expect(u.acksRefused.malformed).toBeGreaterThan(0);
      const metrics = await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text();
      expect(metrics).toMatch(/^outpost_upload_acks_refused_total\{reason="bad-signature"\} [1-9]/m);
      expect(metrics).toMatch(/^outpost_upload_delivered_total 0$/m);
      expect(await agent.stop()).toBe(0); // stopped with an upload in flight
    } finally {
      agent.kill('SIGKILL');
      await new Promise((r) => forger!.close(r));
      forger = null;
    }
    const stolen = openWithDeviceKeys(b);
    expect(stolen.items).toBeGreaterThanOrEqual(6);
    expect(stolen).toEqual({ items: stolen.items, openedByDevice: 0, openedByCollector: stolen.items });

    const collector = collect(b);
    agent = start(b, frames);
    try {
      await agent.waitFor('the outbox drained to the real collector', async () => {
        const u = await status(b).catch(() => null);
        return u && u.pending === 0 && u.preparing === 0 && u.delivered > 0 ? true : undefined;
      });
      expect(await agent.stop()).toBe(0);
    } finally {
      agent.kill('SIGKILL');
      collector.kill();
    }
    const report = verified(b);
    expect(report).toMatchObject({ device: 'cam-01', gaps: [] });
    expect(report.items).toBe(report.highest);
    expect(report.highest).toBeGreaterThanOrEqual(stolen.items);
    noWarnings(b);
  });
});

describe.skipIf(missingTool('mosquitto', 'mosquitto'))('uploads over MQTT with nobody answering but a forger', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(() => broker?.down());

  it('stay up ≥ 35 s through timeouts, a broker outage, a backlog at start and a restart; forged acks delete nothing; the real collector gets all', async () => {
    const b = await board();
    const forger = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 200 });
    let forged = 0;
    forger.on('message', (topic, _payload, packet) => {
      const batch = packet.properties?.correlationData ? Buffer.from(packet.properties.correlationData).toString('utf8') : '';
      forger.publish(`${topic}/ack`, forgery(forged++, batch, ''), { qos: 1 });
    });
    await forger.subscribeAsync('outpost/+/upload', { qos: 1 });
    const extra = `  transport: mqtt\ntelemetry:\n  mqtt: { url: "${broker.url}", reconnect: { initialMs: 200, maxMs: 400 } }`;
    let agent = start(b, frames, extra);
    let collector: ChildProcess | null = null;
    try {
      await agent.waitFor('a backlog and forged answers', async () => {
        const u = await status(b).catch(() => null);
        return u && u.pending >= 3 && refusedAcks(u) >= 2 ? true : undefined;
      });
      expect(await agent.stop()).toBe(0); // an upload in flight, waiting for an answer
      const began = Date.now();
      agent = start(b, frames, extra); // a backlog at start: the first upload runs before MQTT connects
      await agent.waitForLog('uploads started');
      await broker.down();
      await new Promise((r) => setTimeout(r, 3000));
      await broker.up();
      await agent.waitForLog(/connected to the MQTT broker/);
      await waitUntil(async () => (await status(b)).pending > 0, 'items pending');
      const restart = runCli([
        'command',
        'cam-01',
        'restart',
        '--broker',
        broker.url,
        '--key',
        b.alice,
        '--trust',
        join(b.dir, 'trust.yaml'),
        '--json',
        '--timeout',
        '20',
      ]);
      expect(restart.code, restart.stdout + restart.stderr).toBe(0);
      await agent.waitFor('the restart', () => (agent.logs.filter((l) => l.msg === 'uploads started').length >= 2 ? true : undefined));
      await new Promise((r) => setTimeout(r, Math.max(0, 35_000 - (Date.now() - began))));
      expect(agent.child.exitCode).toBeNull();
      const u = await status(b);
      expect(u.delivered).toBe(0);
      expect(u.pending).toBeGreaterThan(0);
      expect(u.lastError).toMatch(/no collector answered/);
      expect(refusedAcks(u)).toBeGreaterThan(0);

      collector = collect(b, ['--mqtt', broker.url]); // the forger keeps answering first
      await agent.waitFor('the outbox drained over MQTT', async () => {
        const s = await status(b);
        return s.pending === 0 && s.preparing === 0 && s.delivered > 0 ? s : undefined;
      });
      await agent.waitForLog('collector reachable again');
      expect((await status(b)).lastError).toBeNull();
      expect(await agent.stop()).toBe(0);
    } finally {
      agent.kill('SIGKILL');
      collector?.kill();
      await forger.endAsync();
    }
    expect(forged).toBeGreaterThan(0);
    const report = verified(b);
    expect(report).toMatchObject({ device: 'cam-01', gaps: [] });
    expect(report.items).toBe(report.highest);
    expect(agent.logs.filter((l) => /unhandled/i.test(String(l.msg)))).toEqual([]);
    noWarnings(b);
  });
});
