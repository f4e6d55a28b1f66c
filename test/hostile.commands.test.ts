import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeys, readKeys, SealedEnvelope, signAnswer, signMessage, type NodeKeys, type PublicKeys } from '../src/crypto/index.js';
import { openBroker, type MqttClient } from '../src/mqtt/index.js';
import { RefusalBudget } from '../src/refusalBudget.js';
import { Mosquitto } from './helpers/broker.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { CLI, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Issue 18 items 4, 5, 7 and 11, run against a real Mosquitto and a real daemon: forged command answers, replay
 * after a restart (command, SIGTERM, SIGKILL) and reordering, 1,000 junk commands naming an operator, unsigned
 * junk asking for a reply on another device's topics, and a long message id.
 */
const noBroker = missingTool('mosquitto', 'mosquitto') || missingTool('mosquitto_sub', 'mosquitto-clients');

interface Answer {
  status: string;
  data?: Record<string, unknown>;
  error?: { reason: string; message: string };
  correlationId?: string;
}

/** The CLI in a child process without blocking this one (the forger below answers from this process). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe.skipIf(noBroker)('hostile: signed commands on a real Mosquitto', () => {
  let broker: Mosquitto;
  let daemon: DaemonProcess;
  let client: MqttClient;
  let port: number;
  let alice: NodeKeys;
  let device: PublicKeys;
  const dir = tempDir();
  const state = join(dir, 'state');
  const trust = join(dir, 'trust.yaml');
  let config: string;

  beforeAll(async () => {
    broker = await Mosquitto.start();
    generateKeys(join(dir, 'alice'));
    alice = readKeys(join(dir, 'alice'));
    device = generateKeys(join(state, 'keys'));
    const other = { sign: Buffer.from(nacl.sign.keyPair().publicKey).toString('base64'), box: Buffer.from(nacl.box.keyPair().publicKey).toString('base64') };
    writeFileSync(
      trust,
      [
        `- { name: cam-01, sign: ${device.sign}, box: ${device.box} }`,
        `- { name: cam-09, sign: ${other.sign}, box: ${other.box} }`,
        // cam-05 does not exist; its entry holds cam-01's keys so a test can sign as it (see the snapshot test)
        `- { name: cam-05, sign: ${device.sign}, box: ${device.box} }`,
      ].join('\n') + '\n',
    );
    port = await freePort();
    config = `node: { name: cam-01, stateDir: ${state} }
keyring:
  - { name: alice, sign: ${Buffer.from(alice.sign.publicKey).toString('base64')}, box: ${Buffer.from(alice.box.publicKey).toString('base64')}, roles: [operator] }
status: { port: ${port} }
telemetry:
  mqtt: { url: "${broker.url}", reconnect: { initialMs: 200, maxMs: 400 } }
logging: { format: json, results: false }
`;
    daemon = DaemonProcess.start(dir, config);
    await daemon.waitForLog('connected to the MQTT broker');
    client = await openBroker(broker.url);
    await client.subscribeAsync('outpost/cam-01/response/#', { qos: 1 });
    await ready();
  });

  afterAll(async () => {
    await client?.endAsync();
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    await broker?.down();
  });

  const signed = (action: string, over: Record<string, unknown> = {}) =>
    JSON.stringify(signMessage({ purpose: 'command', target: 'cam-01', action, args: {}, ...over }, alice.sign));

  /** Publishes on command/<action>, waits (bounded) for the answer with this correlation data. */
  async function ask(action: string, payload: string, responseTopic = `outpost/cam-01/response/${action}`, seconds = 60): Promise<Answer> {
    const correlationData = randomBytes(8);
    let onMessage: (t: string, body: Buffer, packet: { properties?: { correlationData?: Buffer } }) => void = () => {};
    const answer = new Promise<Answer>((resolve) => {
      onMessage = (_t, body, packet) => {
        if (packet.properties?.correlationData && Buffer.from(packet.properties.correlationData).equals(correlationData)) resolve(JSON.parse(body.toString()));
      };
      client.on('message', onMessage);
    });
    const timeout = new Promise<never>((_r, reject) => setTimeout(() => reject(new Error(`no answer to ${action} in ${seconds} s`)), seconds * 1000).unref());
    await client.publishAsync(`outpost/cam-01/command/${action}`, payload, { qos: 1, properties: { responseTopic, correlationData } });
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      client.off('message', onMessage);
    }
  }

  const refusals = async (reason: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(new RegExp(`^outpost_commands_refused_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  };

  /**
   * Until the (re)started daemon answers: its command subscription may trail its connection. The probe is signed
   * for another device, so it is refused (and answered) without touching the replay ledger.
   */
  async function ready(): Promise<void> {
    for (let i = 0; i < 30; i++) {
      const probe = JSON.stringify(signMessage({ purpose: 'command', target: 'cam-02', action: 'status', args: {} }, alice.sign));
      if (await ask('status', probe, undefined, 2).catch(() => null)) return;
    }
    throw new Error('the daemon never answered');
  }

  const restartDaemon = async (signal: NodeJS.Signals) => {
    daemon.kill(signal);
    await daemon.exited;
    daemon = DaemonProcess.start(dir, config);
    await daemon.waitForLog('connected to the MQTT broker');
    await ready();
  };

  describe('forged answers: a keyless client answering first', () => {
    let forger: MqttClient;
    const forgerBox = nacl.box.keyPair();

    beforeAll(async () => {
      forger = await openBroker(broker.url);
      await forger.subscribeAsync('outpost/+/command/#');
      forger.on('message', (topic, payload, packet) => {
        const responseTopic = packet.properties?.responseTopic;
        if (!responseTopic) return;
        const command = JSON.parse(payload.toString());
        const device = topic.split('/')[1];
        const props = { properties: { correlationData: packet.properties?.correlationData } };
        const image = new SealedEnvelope(forgerBox).seal({ purpose: 'snapshot', device }, Buffer.from('red image'), alice.box.publicKey);
        const data = { forged: true, envelope: image.toString('base64') };
        // unsigned, and signed by a key of its own claiming the device
        forger.publish(responseTopic, JSON.stringify({ status: 'ok', data, correlationId: command.correlationId }), props);
        const own = signAnswer({ device, action: command.action, request: command.nonce, status: 'ok', data, answeredAt: Date.now() }, nacl.sign.keyPair());
        forger.publish(responseTopic, JSON.stringify(own), props);
      });
    });

    afterAll(async () => {
      await forger?.endAsync();
    });

    const command = (device: string, action: string, ...more: string[]) =>
      cli(['command', device, action, '--broker', broker.url, '--key', join(dir, 'alice'), '--trust', trust, ...more]);

    it('command cam-09 restart for a device that does not exist never prints ok', async () => {
      const unknown = await command('cam-07', 'restart', '--timeout', '2');
      expect(unknown.code).toBe(78);
      expect(unknown.stderr).toMatch(/has no sign key for cam-07/);
      const absent = await command('cam-09', 'restart', '--timeout', '5');
      expect(absent.code).toBe(69);
      expect(absent.stderr).toMatch(/no answer from cam-09 within 5 s; [12] answer\(s\) not signed by cam-09's key for this command were ignored/);
      expect(absent.stdout).not.toMatch(/ok/);
    });

    it("the device's own answer wins over the forger's", async () => {
      const r = await command('cam-01', 'status', '--json');
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out).toMatchObject({ status: 'ok', device: 'cam-01', data: { node: 'cam-01' } });
      expect(out.data.forged).toBeUndefined();
    });

    it('a forged snapshot is never written', async () => {
      const out = join(dir, 'snap.jpg');
      // cam-01 has no camera: its signed refusal is the only answer that counts
      const r = await command('cam-01', 'snapshot', '--arg', 'camera=door', '--out', out);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cam-01 refused snapshot: bad-arguments/);
      expect(existsSync(out)).toBe(false);
    });

    it("a snapshot not sealed by the device's box key is refused even in a validly signed answer", async () => {
      // a second forger holds cam-05's signing key (the test's copy of it) but seals with a box key of its own
      const deviceSign = readKeys(join(state, 'keys')).sign;
      const signer = await openBroker(broker.url);
      await signer.subscribeAsync('outpost/cam-05/command/#');
      signer.on('message', (_t, payload, packet) => {
        const c = JSON.parse(payload.toString());
        const envelope = new SealedEnvelope(forgerBox).seal({ purpose: 'snapshot', device: 'cam-05' }, Buffer.from('red image'), alice.box.publicKey);
        const a = signAnswer(
          { device: 'cam-05', action: 'snapshot', request: c.nonce, status: 'ok', data: { envelope: envelope.toString('base64') }, answeredAt: Date.now() },
          deviceSign,
        );
        signer.publish(packet.properties!.responseTopic!, JSON.stringify(a));
      });
      const out = join(dir, 'snap5.jpg');
      const r = await command('cam-05', 'snapshot', '--arg', 'camera=door', '--out', out, '--timeout', '5');
      await signer.endAsync();
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the snapshot is not sealed by cam-05's box key/);
      expect(existsSync(out)).toBe(false);
    });
  });

  it("unsigned junk with a response topic on another device's topics gets nothing published anywhere", async () => {
    const watcher = await openBroker(broker.url);
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync(['outpost/cam-02/#', 'outpost/cam-01/response/#']);
    const before = (await refusals('malformed')) + (await refusals('bad-signature')) + (await refusals('unknown-key'));
    const forged = JSON.parse(signed('status'));
    const junk = [
      JSON.stringify({ v: 1, purpose: 'command', target: 'cam-01', action: 'status', args: {}, issuedAt: Date.now(), nonce: 'x' }),
      JSON.stringify({ ...forged, sig: randomBytes(64).toString('base64') }),
      JSON.stringify(signMessage({ purpose: 'command', target: 'cam-01', action: 'status', args: {} }, nacl.sign.keyPair())),
      'not json',
    ];
    const targets = ['outpost/cam-02/status', 'outpost/cam-02/command/restart', 'outpost/cam-02/offload', 'outpost/cam-01/response/status'];
    for (const responseTopic of targets)
      for (const payload of junk) await client.publishAsync('outpost/cam-01/command/status', payload, { qos: 1, properties: { responseTopic } });
    const counted = async () => (await refusals('malformed')) + (await refusals('bad-signature')) + (await refusals('unknown-key'));
    await waitUntil(async () => (await counted()) >= before + junk.length * targets.length, 'the junk counted');
    // an operator's command asking for a reply on another device's command topic is answered on its own response topic
    const answer = await ask('status', signed('status'), 'outpost/cam-02/command/restart');
    expect(answer).toMatchObject({ status: 'ok', device: 'cam-01' });
    await waitUntil(() => seen.includes('outpost/cam-01/response/status'), "the operator's answer on the device's own topic");
    await watcher.endAsync();
    expect(seen).toEqual(['outpost/cam-01/response/status']);
  });

  it('refuses a message id over 64 characters before it is remembered, and ignores a long correlation id', async () => {
    const before = await refusals('malformed');
    const long = 'A'.repeat(40_000);
    await client.publishAsync('outpost/cam-01/command/status', signed('status', { nonce: long }), { qos: 1 });
    await waitUntil(async () => (await refusals('malformed')) > before, 'the long id refused');
    const m = JSON.parse(signed('status'));
    const answer = await ask('status', JSON.stringify({ ...m, correlationId: 'c'.repeat(5000) }));
    expect(answer).toMatchObject({ status: 'ok' });
    expect(answer.correlationId).toBeUndefined();
    expect(readFileSync(join(state, 'command-replay.json'), 'utf8')).not.toContain('AAAAAAAA');
  });

  it('1,000 junk commands naming an operator: counted in full, logged at a bounded rate, /healthz answering throughout', async () => {
    const before = await refusals('bad-signature');
    const logsBefore = daemon.logs.length;
    const lines = Array.from({ length: 1000 }, () => JSON.stringify({ ...JSON.parse(signed('status')), sig: randomBytes(64).toString('base64') }));
    const file = join(dir, 'junk.txt');
    writeFileSync(file, lines.join('\n') + '\n');
    // a separate publisher, as an attacker would be; each asks for a reply on another device's restart topic
    const pub = spawn(
      'sh',
      [
        '-c',
        `mosquitto_pub -V mqttv5 -h 127.0.0.1 -p ${broker.port} -q 1 -t outpost/cam-01/command/status -D publish response-topic outpost/cam-02/command/restart -l < ${file}`,
      ],
      { stdio: 'ignore' },
    );
    const published = new Promise((r) => pub.on('exit', r));
    const healthz: number[] = [];
    await waitUntil(
      async () => {
        healthz.push((await fetch(`http://127.0.0.1:${port}/healthz`)).status);
        return (await refusals('bad-signature')) >= before + 1000;
      },
      'all 1,000 refusals counted',
      600,
      100,
    );
    await published;
    // a node without cameras answers 503 (no frames flow); what matters is that it answers, as it did before
    const baseline = (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
    expect(healthz.length).toBeGreaterThan(0);
    expect(healthz.every((s) => s === baseline)).toBe(true);
    const summary = await daemon.waitFor('the summary of suppressed refusals', () =>
      daemon.logs.slice(logsBefore).find((l) => /^suppressed \d+ command refusals in 10 s/.test(String(l.msg))),
    );
    expect(summary).toMatchObject({ suppressed: expect.any(Number), byReason: { 'bad-signature': expect.any(Number) } });
    const refusedLines = daemon.logs.slice(logsBefore).filter((l) => l.msg === 'command refused');
    expect(refusedLines.length).toBeLessThanOrEqual(60); // 20 per 10 s
    expect(await ask('status', signed('status'))).toMatchObject({ status: 'ok' });
  });

  it('its own status topic: a 50 MB message never reaches the daemon; 2,000 stale statuses get a few rebirths, the last one online', async () => {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8'))![1]) << 10;
    const pub = (args: string[], input?: string) =>
      spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', 'outpost/cam-01/status', ...args], { input, encoding: 'utf8' });
    const before = rss();
    const logsBefore = daemon.logs.length;
    const big = join(dir, 'big.json');
    writeFileSync(big, `{"state":"offline","bdSeq":1,"x":"${'a'.repeat(50 << 20)}"}`);
    for (let i = 0; i < 3; i++) expect(pub(['-f', big]).status).toBe(0);
    const stale = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ state: 'offline', bdSeq: i })).join('\n');
    expect(pub(['-r', '-l'], stale).status).toBe(0);
    const current = () => JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0]?.payload ?? '{}') as { state?: string; bdSeq?: number };
    // the last stale status is overwritten when the rebirth interval (5 s) ends
    await waitUntil(() => current().state === 'online', 'the retained status back to online', 60, 250);
    const rebirths = daemon.logs.slice(logsBefore).filter((l) => l.msg === 'a stale status was on the broker; publishing online again');
    console.log(`own status flood: RSS ${before >> 20} -> ${rss() >> 20} MB, ${rebirths.length} rebirth log lines for 2,003 messages`);
    expect(rebirths.length).toBeLessThanOrEqual(4);
    expect(JSON.stringify(rebirths).length).toBeLessThan(4000); // what it saw is summarised, never the payload
    expect(rss() - before).toBeLessThan(100 << 20);
    expect(await ask('status', signed('status'))).toMatchObject({ status: 'ok' });
  });

  describe('replay-proof across restarts', () => {
    it('refuses a captured restart after the restart it caused', async () => {
      const captured = signed('restart');
      const bdSeq = () => JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0]?.payload ?? '{}').bdSeq ?? 0;
      const before = bdSeq();
      expect(await ask('restart', captured)).toMatchObject({ status: 'ok', data: { restarting: true } });
      await waitUntil(() => bdSeq() > before, 'the birth after the restart', 120, 250);
      await ready();
      expect(await ask('restart', captured)).toMatchObject({ status: 'refused', error: { reason: 'replayed' } });
    });

    it('refuses a captured command after SIGTERM and start, and an older one after a newer', async () => {
      const older = signed('status', { issuedAt: Date.now() - 3000 });
      const captured = signed('status');
      expect(await ask('status', captured)).toMatchObject({ status: 'ok' });
      await restartDaemon('SIGTERM');
      expect(await ask('status', captured)).toMatchObject({ status: 'refused', error: { reason: 'replayed' } });
      expect(await ask('status', older)).toMatchObject({ status: 'refused', error: { reason: 'out-of-order' } });
    });

    it('refuses a captured command after SIGKILL and start, and keeps refusing reordered ones', async () => {
      const first = signed('status');
      const second = signed('status', { issuedAt: Date.now() + 1 });
      expect(await ask('status', second)).toMatchObject({ status: 'ok' });
      expect(await ask('status', first)).toMatchObject({ status: 'refused', error: { reason: 'out-of-order' } });
      await restartDaemon('SIGKILL');
      expect(await ask('status', second)).toMatchObject({ status: 'refused', error: { reason: 'replayed' } });
      expect(await ask('status', first)).toMatchObject({ status: 'refused', error: { reason: 'out-of-order' } });
      expect(await ask('status', signed('status'))).toMatchObject({ status: 'ok' });
      expect(await refusals('replayed')).toBeGreaterThan(0);
    });
  });
});

describe('the refusal budget', () => {
  it('lets the first 20 refusals of an interval through, then sums up the rest once per interval', () => {
    let now = 0;
    const summaries: [number, Record<string, number>][] = [];
    const budget = new RefusalBudget(
      (n, byReason) => summaries.push([n, byReason]),
      () => now,
    );
    const taken = Array.from({ length: 1000 }, (_, i) => budget.take(i % 2 ? 'bad-signature' : 'unknown-key')).filter(Boolean).length;
    expect(taken).toBe(20);
    expect(summaries).toEqual([]);
    now = 10_000;
    expect(budget.take('expired')).toBe(true); // a new interval: the summary of the last one comes first
    expect(summaries).toEqual([[980, { 'bad-signature': 490, 'unknown-key': 490 }]]);
    budget.flush();
    expect(summaries).toHaveLength(1); // nothing held back since
  });
});
