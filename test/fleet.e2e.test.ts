import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAnswer, fromB64, generateKeys, readKeys, SealedEnvelope, signMessage, type NodeKeys, type PublicKeys } from '../src/crypto/index.js';
import { openBroker, type MqttClient } from '../src/mqtt/index.js';
import { Mosquitto } from './helpers/broker.js';
import { camera, configYaml, merged, node, ocr, trusted, type ConfigData } from './helpers/config.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 11 against a real Mosquitto: one daemon, its operator, a stranger, and a key with the wrong role. */
const noBroker = missingTool('mosquitto', 'mosquitto') || missingTool('mosquitto_sub', 'mosquitto-clients');

interface Answer {
  status: string;
  data?: Record<string, unknown>;
  error?: { reason: string; message: string };
}

/** A fleet node on `broker`, with the OCR pipeline on a demo camera unless `cameras` is false. */
const nodeConfig = (o: { name: string; state: string; broker: string; port: number; keyring: ConfigData[]; cameras: boolean }) =>
  configYaml(node(o.name, o.state, o.port), { keyring: o.keyring }, o.cameras ? merged(camera('door', { type: 'demo', fps: 2, seed: 5 }), ocr()) : {}, {
    telemetry: {
      mqtt: {
        url: o.broker,
        telemetryIntervalSeconds: 1,
        homeAssistant: true,
        offlineQueue: 5,
        reconnect: { initialMs: 200, maxMs: 400 },
        events: { '*': { mode: 'all' } },
      },
    },
    logging: { results: false },
  });

describe.skipIf(noBroker)('a fleet node on a real Mosquitto', () => {
  let broker: Mosquitto;
  let daemon: DaemonProcess;
  let client: MqttClient;
  let port: number;
  let alice: NodeKeys;
  let bob: NodeKeys;
  let mallory: NodeKeys;
  let device: PublicKeys;
  const dir = tempDir();
  const aliceDir = join(dir, 'alice');
  const trust = join(dir, 'trust.yaml');

  beforeAll(async () => {
    broker = await Mosquitto.start();
    generateKeys(aliceDir);
    generateKeys(join(dir, 'bob'));
    generateKeys(join(dir, 'mallory'));
    device = generateKeys(join(dir, 'state', 'keys'));
    writeFileSync(trust, `- { name: cam-01, sign: ${device.sign}, box: ${device.box} }\n`);
    [alice, bob, mallory] = ['alice', 'bob', 'mallory'].map((n) => readKeys(join(dir, n)));
    const pub = (k: NodeKeys) => ({ sign: Buffer.from(k.sign.publicKey).toString('base64'), box: Buffer.from(k.box.publicKey).toString('base64') });
    const keyring = [trusted('alice', pub(alice), 'operator'), trusted('bob', pub(bob), 'peer')];
    port = await freePort();
    daemon = DaemonProcess.start(dir, nodeConfig({ name: 'cam-01', state: join(dir, 'state'), broker: broker.url, port, keyring, cameras: true }));
    await daemon.waitForLog('connected to the MQTT broker');
    client = await openBroker(broker.url);
    await client.subscribeAsync('outpost/cam-01/response/#', { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    await broker?.down();
  });

  /** Publishes on command/<action> and waits for the answer with this correlation data. */
  async function ask(action: string, payload: string | Buffer, topicAction = action): Promise<Answer> {
    const correlationData = randomBytes(8);
    const answer = new Promise<Answer>((resolve) => {
      const onMessage = (_t: string, body: Buffer, packet: { properties?: { correlationData?: Buffer } }) => {
        if (!packet.properties?.correlationData || !Buffer.from(packet.properties.correlationData).equals(correlationData)) return;
        client.off('message', onMessage);
        resolve(JSON.parse(body.toString()));
      };
      client.on('message', onMessage);
    });
    await client.publishAsync(`outpost/cam-01/command/${topicAction}`, payload, {
      qos: 1,
      properties: { responseTopic: `outpost/cam-01/response/${topicAction}`, correlationData },
    });
    return answer;
  }
  const signed = (action: string, args: Record<string, unknown> = {}, keys = alice, over: Record<string, unknown> = {}) =>
    JSON.stringify(signMessage({ purpose: 'command', target: 'cam-01', action, args, ...over }, keys.sign));
  const status = async () => (await fetch(`http://127.0.0.1:${port}/status`)).json();

  it('holds a retained online status with its birth sequence (read by mosquitto_sub)', () => {
    const [msg] = broker.sub('outpost/cam-01/status', 1, 1);
    expect(JSON.parse(msg.payload)).toMatchObject({
      state: 'online',
      bdSeq: expect.any(Number),
      version: '0.1.0',
      cameras: ['door'],
      provider: expect.any(String),
    });
  });

  it('publishes telemetry every interval with the figures of /status', () => {
    const msgs = broker.sub('outpost/cam-01/telemetry', 3.5);
    expect(msgs.length).toBeGreaterThanOrEqual(2);
    const t = JSON.parse(msgs.at(-1)!.payload);
    expect(t).toMatchObject({
      node: 'cam-01',
      intervalSeconds: 1,
      power: { governor: { level: 'nominal' } },
      cameras: { door: { processed: expect.any(Number), fps: expect.any(Number) } },
    });
    for (const k of ['rssBytes', 'cpuPercent', 'uptimeSeconds', 'eventLoopDelayMs', 'latencyMs', 'provider', 'variant']) expect(t, k).toHaveProperty(k);
    expect(t).not.toHaveProperty('lastResult');
  });

  it('publishes selected results as events', () => {
    const events = broker.sub('outpost/cam-01/events', 3).map((m) => JSON.parse(m.payload));
    expect(events.some((e) => e.type === 'result' && e.camera === 'door' && Array.isArray(e.summary))).toBe(true);
  });

  it('holds retained Home Assistant discovery bound to the status topic, and republishes it when HA comes online', async () => {
    const configs = broker.sub('homeassistant/sensor/outpost_cam-01/+/config', 1);
    expect(configs.map((m) => m.topic.split('/')[3]).sort()).toEqual(['door_fps', 'door_last', 'governor_level', 'temperature']);
    expect(JSON.parse(configs[0].payload).availability[0]).toMatchObject({ topic: 'outpost/cam-01/status', payload_available: 'online' });
    const again = new Promise<void>((resolve) => client.on('message', (t) => t.startsWith('homeassistant/sensor/outpost_cam-01') && resolve()));
    await client.subscribeAsync('homeassistant/sensor/outpost_cam-01/#');
    broker.pub('homeassistant/status', 'online');
    await again;
  });

  it('runs each action for an operator and answers with its result, signed by the device for that command', async () => {
    const command = signed('status');
    const answer = await ask('status', command);
    expect(answer).toMatchObject({ status: 'ok', data: { node: 'cam-01' } });
    const want = { device: 'cam-01', action: 'status', request: JSON.parse(command).nonce, deviceKey: fromB64(device.sign)! };
    expect(checkAnswer(answer, want)).toMatchObject({ ok: true });
    // no int8 variant here: refused rather than answered ok while fp32 runs (test/leftAlone.test.ts has the details)
    expect(await ask('set-precision', signed('set-precision', { precision: 'int8' }))).toMatchObject({ status: 'refused' });
    expect(await ask('set-precision', signed('set-precision', { precision: 'fp32' }))).toMatchObject({
      status: 'ok',
      data: { precision: 'fp32', runs: { text: 'fp32' } },
    });
    expect((await status()).precision).toMatchObject({ rung: 'fp32', fixed: true });
    expect(await ask('set-precision', signed('set-precision', { precision: 'auto' }))).toMatchObject({ status: 'ok' });
    expect((await status()).precision).toMatchObject({ rung: 'fp32', fixed: false });
    expect(await ask('pause-camera', signed('pause-camera', { camera: 'door' }))).toMatchObject({ status: 'ok' });
    await waitUntil(async () => (await status()).cameras.door.paused === true, 'the camera paused');
    expect(await ask('resume-camera', signed('resume-camera', { camera: 'door' }))).toMatchObject({ status: 'ok' });
    const snap = await ask('snapshot', signed('snapshot', { camera: 'door' }));
    const opened = new SealedEnvelope(alice.box).open(Buffer.from(String(snap.data!.envelope), 'base64'));
    expect(opened.header).toMatchObject({ device: 'cam-01', camera: 'door', contentType: 'image/jpeg' });
    expect((await sharp(opened.payload).metadata()).format).toBe('jpeg');
    expect(await ask('reload-config', signed('reload-config'))).toMatchObject({ status: 'ok', data: { applied: [], needRestart: [] } });
    expect(await ask('rebenchmark', signed('rebenchmark'))).toMatchObject({ status: 'ok', data: { outcome: 'ok', result: { retuned: [] } } });
  });

  it('refuses every bad command with a counter, answers only a key that proves itself, and keeps running', async () => {
    const stale = signed('status', {}, alice, { issuedAt: Date.now() - 10 * 60_000 });
    const tampered = JSON.parse(signed('set-precision', { precision: 'int8' }));
    tampered.args.precision = 'fp16';
    const unsigned = JSON.stringify({ v: 1, purpose: 'command', target: 'cam-01', action: 'status', args: {}, issuedAt: Date.now(), nonce: 'x' });
    const replay = signed('status');
    await ask('status', replay);
    // answered: the signature holds (or, for a keyring key's cheap refusals, is checked before answering)
    const answered: [string, string | Buffer, string, string?][] = [
      ['wrong role', signed('status', {}, bob), 'wrong-role'],
      ['expired', stale, 'expired'],
      ['replayed', replay, 'replayed'],
      ['unknown action', signed('dance'), 'unknown-action', 'dance'],
      ['another device', JSON.stringify(signMessage({ purpose: 'command', target: 'cam-02', action: 'status', args: {} }, alice.sign)), 'wrong-target'],
      ['bad arguments', signed('set-precision', { precision: 'int4' }), 'bad-arguments', 'set-precision'],
      ['signed for another action', signed('restart'), 'malformed', 'status'],
    ];
    for (const [what, payload, reason, action = 'status'] of answered) {
      const answer = await ask(action, payload);
      expect(answer, what).toMatchObject({ status: 'refused', error: { reason } });
    }
    // not answered (nobody proved who they are), only counted
    const silent: [string | Buffer, string, string?][] = [
      [unsigned, 'malformed'],
      [JSON.stringify(tampered), 'bad-signature', 'set-precision'],
      [signed('status', {}, mallory), 'unknown-key'],
      ['not json {', 'malformed'],
      [signed('status', { pad: 'x'.repeat(70_000) }), 'too-large'],
    ];
    for (const [payload, , action = 'status'] of silent) await client.publishAsync(`outpost/cam-01/command/${action}`, payload, { qos: 1 });
    const metricsText = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    await waitUntil(async () => /^outpost_commands_refused_total\{reason="too-large"\} [1-9]/m.test(await metricsText()), 'the silent refusals counted');
    const metrics = await metricsText();
    for (const reason of [
      'malformed',
      'bad-signature',
      'unknown-key',
      'wrong-role',
      'expired',
      'replayed',
      'too-large',
      'unknown-action',
      'wrong-target',
      'bad-arguments',
    ]) {
      expect(metrics, reason).toMatch(new RegExp(`^outpost_commands_refused_total\\{reason="${reason}"\\} [1-9]`, 'm'));
    }
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('outpost command: exit 0 done, 1 refused with the reason, 69 no answer, 78 a device not in --trust', () => {
    const command = (device: string, key: string, ...more: string[]) =>
      runCli(['command', device, 'status', '--broker', broker.url, '--key', key, '--trust', trust, ...more]);
    const ok = command('cam-01', aliceDir, '--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ status: 'ok', data: { node: 'cam-01' }, ignored: 0 });
    const refused = command('cam-01', join(dir, 'bob'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused status: wrong-role/);
    const stranger = command('cam-01', join(dir, 'mallory'), '--timeout', '1');
    expect(stranger.code).toBe(69);
    expect(stranger.stderr).toMatch(/no answer from cam-01 within 1 s.*does not answer a key it does not trust/);
    const untrusted = command('cam-99', aliceDir, '--timeout', '1');
    expect(untrusted.code).toBe(78);
    expect(untrusted.stderr).toMatch(/has no sign key for cam-99/);
  });

  it('outpost monitor --json shows the device online with its figures', () => {
    const r = runCli(['monitor', '--broker', broker.url, '--json', '--for', '2.5']);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.filter((x) => x.device === 'cam-01').at(-1)).toMatchObject({ state: 'online', stale: false, level: 'nominal', fps: expect.any(Number) });
  });

  it('overwrites a late will of an older connection at once', async () => {
    const mine = JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0].payload).bdSeq;
    broker.pub('outpost/cam-01/status', JSON.stringify({ state: 'offline', bdSeq: mine - 1 }), true);
    await waitUntil(() => JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0]?.payload ?? '{}').state === 'online', 'online again');
  });

  it('reconnects after the broker restarts, with a new birth; what could not wait is dropped and counted', async () => {
    const before = JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0].payload).bdSeq;
    await broker.down();
    await new Promise((r) => setTimeout(r, 2500)); // telemetry and events pile up past the queue of 5
    await broker.up();
    await waitUntil(() => JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0]?.payload ?? '{}').bdSeq > before, 'a new birth', 60, 250);
    const s = await status();
    expect(s.mqtt).toMatchObject({ connected: true, dropped: expect.any(Number) });
    expect(s.mqtt.dropped).toBeGreaterThan(0);
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(/^outpost_mqtt_dropped_total\{reason="queue-full"\} [1-9]/m);
    client.end(true); // the test's own client does not reconnect by itself
    client = await openBroker(broker.url);
    await client.subscribeAsync('outpost/cam-01/response/#', { qos: 1 });
  });

  it('restart: every component again, a new birth', async () => {
    const before = JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0].payload).bdSeq;
    expect(await ask('restart', signed('restart'))).toMatchObject({ status: 'ok', data: { restarting: true } });
    await waitUntil(() => JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0]?.payload ?? '{}').bdSeq > before, 'the birth after the restart', 80, 250);
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200, 'frames again', 120, 250);
  });

  it('is offline by its last will after SIGKILL', async () => {
    daemon.kill('SIGKILL');
    await daemon.exited;
    await waitUntil(() => JSON.parse(broker.sub('outpost/cam-01/status', 1, 1)[0]?.payload ?? '{}').state === 'offline', 'the will');
  });

  it('says offline itself on a clean stop', async () => {
    const d2 = join(dir, 'second');
    const node = DaemonProcess.start(
      tempDir(),
      nodeConfig({ name: 'cam-02', state: d2, broker: broker.url, port: await freePort(), keyring: [], cameras: false }),
    );
    await node.waitForLog('connected to the MQTT broker');
    expect(JSON.parse(broker.sub('outpost/cam-02/status', 1, 1)[0].payload).state).toBe('online');
    expect(await node.stop()).toBe(0);
    const last = JSON.parse(broker.sub('outpost/cam-02/status', 1, 1)[0].payload);
    expect(last).toMatchObject({ state: 'offline', at: expect.any(String) });
  });
});
