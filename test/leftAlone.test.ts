import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, planReload, resolveConfig } from '../src/config/index.js';
import { generateKeys, Keyring, readKeys, signMessage, type NodeKeys } from '../src/crypto/index.js';
import { openBroker, type MqttClient } from '../src/mqtt/index.js';
import { PeerTable } from '../src/offload/index.js';
import { Mosquitto } from './helpers/broker.js';
import { camera, configYaml, merged, node, ocr, trusted, type ConfigData } from './helpers/config.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 19: a node left alone stays up, refuses what would take it down, and says what is true. */
const noBroker = missingTool('mosquitto', 'mosquitto') || missingTool('mosquitto_sub', 'mosquitto-clients');

interface Answer {
  status: string;
  data?: Record<string, unknown>;
  error?: { reason: string; message: string; problems?: string[] };
}

/** The camera node: the OCR pipeline on a demo camera, on `broker`. */
const cameraNode = (o: { state: string; broker: string; port: number; keyring: ConfigData[] }): ConfigData =>
  merged(node('cam-01', o.state, o.port), { keyring: o.keyring }, camera('door', { type: 'demo', fps: 2, seed: 5 }), ocr(), {
    telemetry: { mqtt: { url: o.broker, telemetryIntervalSeconds: 1, reconnect: { initialMs: 200, maxMs: 400 } } },
    logging: { results: false },
  });

/** An offload helper's shape: no camera, no broker. */
const helperNode = (o: { state: string; port: number }) => configYaml(node('helper', o.state, o.port), { logging: { results: false } });

const errorLines = (d: DaemonProcess) => d.logs.filter((l) => Number(l.level) >= 50);

describe.skipIf(noBroker)('a node left alone (real Mosquitto, real daemons)', () => {
  let broker: Mosquitto;
  let daemon: DaemonProcess;
  let client: MqttClient;
  let port: number;
  let alice: NodeKeys;
  const dir = tempDir();
  const configFile = join(dir, 'outpost.yaml');
  let goodConfig: ConfigData;

  beforeAll(async () => {
    broker = await Mosquitto.start();
    generateKeys(join(dir, 'alice'));
    alice = readKeys(join(dir, 'alice'));
    const keyring = [trusted('alice', { sign: Buffer.from(alice.sign.publicKey).toString('base64') }, 'operator')];
    port = await freePort();
    goodConfig = cameraNode({ state: join(dir, 'state'), broker: broker.url, port, keyring });
    daemon = DaemonProcess.start(dir, configYaml(goodConfig));
    await daemon.waitForLog('connected to the MQTT broker');
    await daemon.waitForLog('ready');
    client = await openBroker(broker.url);
    await client.subscribeAsync('outpost/cam-01/response/#', { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    broker?.freeze(false);
    await broker?.down();
  });

  async function ask(action: string, args: Record<string, unknown> = {}): Promise<Answer> {
    const correlationData = randomBytes(8);
    const answer = new Promise<Answer>((resolve) => {
      const onMessage = (_t: string, body: Buffer, packet: { properties?: { correlationData?: Buffer } }) => {
        if (!packet.properties?.correlationData || !Buffer.from(packet.properties.correlationData).equals(correlationData)) return;
        client.off('message', onMessage);
        resolve(JSON.parse(body.toString()));
      };
      client.on('message', onMessage);
    });
    const signed = JSON.stringify(signMessage({ purpose: 'command', target: 'cam-01', action, args }, alice.sign));
    await client.publishAsync(`outpost/cam-01/command/${action}`, signed, {
      qos: 1,
      properties: { responseTopic: `outpost/cam-01/response/${action}`, correlationData },
    });
    return answer;
  }
  const healthz = async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status;

  it('sends telemetry of at most 1 KB; the static facts go once, retained, on their own topic', () => {
    const raw = broker.sub('outpost/cam-01/telemetry', 2.5);
    expect(raw.length).toBeGreaterThanOrEqual(1);
    for (const m of raw) expect(Buffer.byteLength(m.payload), m.payload).toBeLessThanOrEqual(1024);
    const t = JSON.parse(raw.at(-1)!.payload);
    expect(t).toMatchObject({ node: 'cam-01', cameras: { door: { processed: expect.any(Number) } }, power: { governor: { level: 'nominal' } } });
    expect(t).not.toHaveProperty('providerAttempts');
    const [facts] = broker.sub('outpost/cam-01/facts', 1, 1);
    expect(JSON.parse(facts.payload)).toMatchObject({ node: 'cam-01', version: '0.1.0', providerAttempts: expect.any(Array) });
  });

  it('refuses set-precision int8 when no model has an int8 variant, and answers what runs for fp32', async () => {
    const int8 = await ask('set-precision', { precision: 'int8' });
    expect(int8).toMatchObject({ status: 'refused', error: { reason: 'bad-arguments' } });
    expect(int8.error!.message).toMatch(/no model here has a int8 variant/);
    expect(await ask('set-precision', { precision: 'fp32' })).toMatchObject({ status: 'ok', data: { precision: 'fp32', runs: { text: 'fp32' } } });
  });

  it('refuses restart and reload-config while the config file is broken, naming line:col, and keeps running', async () => {
    writeFileSync(configFile, configYaml(goodConfig, camera('door', { type: 'demo', fps: 'two', seed: 5 })));
    for (const action of ['restart', 'reload-config']) {
      const a = await ask(action);
      expect(a, action).toMatchObject({ status: 'refused', error: { reason: 'invalid-config' } });
      expect(a.error!.problems!.join('\n')).toMatch(new RegExp(`${configFile}:\\d+:\\d+: cameras\\[0\\]\\.source\\.fps`));
    }
    await new Promise((r) => setTimeout(r, 1500)); // a restart would have begun by now
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.logs.some((l) => l.msg === 'restarting every component on the configuration file as it is now')).toBe(false);
    expect(await healthz()).toBe(200);
    writeFileSync(configFile, configYaml(goodConfig));
  });

  it('lets one daemon run on a state folder: a second exits 75 naming the first one PID', async () => {
    const second = DaemonProcess.start(tempDir(), configYaml(goodConfig, { status: { port: await freePort() } }));
    try {
      const failed = await second.waitForLog('start-up failed');
      expect(String(failed.err)).toContain(`PID ${daemon.child.pid}`);
      expect((await second.exited).code).toBe(75);
    } finally {
      second.kill('SIGKILL');
    }
    expect(daemon.child.exitCode).toBeNull();
    expect(readFileSync(join(dir, 'state', 'outpost.pid'), 'utf8').trim()).toBe(String(daemon.child.pid));
  });

  it('logs a session taken over by another client with the same id as such, with a hint, and gets it back', async () => {
    const connects = daemon.logs.filter((l) => l.msg === 'connected to the MQTT broker').length;
    const thief = await openBroker(broker.url, { clientId: 'outpost-cam-01' });
    const line = await daemon.waitForLog('the MQTT session was taken over by another client with the same id', 20);
    expect(line).toMatchObject({ clientId: 'outpost-cam-01', hint: expect.stringMatching(/another process uses this client id/) });
    await thief.endAsync();
    await waitUntil(() => daemon.logs.filter((l) => l.msg === 'connected to the MQTT broker').length > connects, 'the node back on the broker');
    expect(daemon.logs.filter((l) => l.msg === 'lost the MQTT broker; reconnecting')).toEqual([]);
  });

  it('stops cleanly (exit 0, no error line) when the broker answers nothing', async () => {
    broker.freeze(true);
    expect(await daemon.stop()).toBe(0);
    broker.freeze(false);
    expect(errorLines(daemon)).toEqual([]);
    expect(daemon.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });
});

describe('the process-wide last resort (a real daemon, a fault injected into its process)', () => {
  /** A module loaded before the daemon's entry (node --import) that makes a fault once the daemon runs. */
  const injecting = (fault: string) => {
    const file = join(tempDir(), 'fault.mjs');
    writeFileSync(file, `setTimeout(() => { ${fault} }, 4000);\n`);
    return { NODE_OPTIONS: `--import ${file}` };
  };

  it('keeps a node without cameras healthy, and counts an unhandled rejection and stays up', async () => {
    const dir = tempDir();
    const port = await freePort();
    const d = DaemonProcess.start(dir, helperNode({ state: join(dir, 'state'), port }), injecting(`Promise.reject(new Error('injected fault'));`));
    try {
      await d.waitForLog('outpost running');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      const line = await d.waitForLog('unhandled promise rejection (a bug: please report it); still running', 30);
      expect(line.err).toBe('injected fault');
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/outpost_unhandled_errors_total\{kind="rejection"\} 1/);
      expect(d.child.exitCode).toBeNull();
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect(await d.stop()).toBe(0);
    } finally {
      d.kill('SIGKILL');
    }
  });

  it('exits 70 (restartable, never 78) on an uncaught exception, after logging it', async () => {
    const dir = tempDir();
    const d = DaemonProcess.start(dir, helperNode({ state: join(dir, 'state'), port: await freePort() }), injecting(`throw new Error('injected crash');`));
    try {
      const { code } = await d.exited;
      expect(code).toBe(70);
      expect(d.logs.find((l) => String(l.msg).startsWith('uncaught exception'))).toMatchObject({ err: 'injected crash' });
    } finally {
      d.kill('SIGKILL');
    }
  });
});

describe('status that tells the truth (the parts, on real keys and configs)', () => {
  const key = (name: string, roles: string[]) => {
    const dir = tempDir();
    generateKeys(dir);
    const k = readKeys(dir);
    return { name, sign: Buffer.from(k.sign.publicKey).toString('base64'), box: Buffer.from(k.box.publicKey).toString('base64'), roles };
  };

  it('names only the keyring entries a reload changed, not every index after an inserted one', () => {
    const [a, b, c] = [key('alice', ['operator']), key('bob', ['peer']), key('carol', ['operator'])];
    const running = resolveConfig(configSchema.parse({ keyring: [a, b] }));
    const next = resolveConfig(configSchema.parse({ keyring: [c, a, { ...b, roles: ['peer', 'operator'] }] }));
    const plan = planReload(running, next);
    expect(plan.needRestart.sort()).toEqual(['keyring.bob (changed)', 'keyring.carol (added)']);
    expect(plan.applied).toEqual([]);
    expect(planReload(running, resolveConfig(configSchema.parse({ keyring: [b] }))).needRestart).toEqual(['keyring.alice (removed)']);
  });

  it('shows a static peer whose probes fail offline, and logs its breaker opening and closing', () => {
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(String(c))), done()) }));
    const cfg = configSchema.parse({ keyring: [key('b', ['peer'])], offload: { peers: [{ name: 'b', url: 'http://127.0.0.1:9' }] } });
    const t = new PeerTable(new Keyring(cfg.keyring), cfg.offload!, log);
    const b = t.get('b')!;
    t.probed(b, false, 1000, 'connect ECONNREFUSED 127.0.0.1:9');
    expect(t.status(1000)).toMatchObject({ b: { online: false, breaker: 'open', lastError: 'connect ECONNREFUSED 127.0.0.1:9' } });
    t.probed(b, true, 40_000, null);
    expect(t.status(40_000)).toMatchObject({ b: { online: true, breaker: 'closed' } });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'peer breaker open: no frames to it until it rests and passes a known-answer probe'],
      [30, 'peer breaker closed: it passed its known-answer probe and gets frames again'],
    ]);
  });
});
