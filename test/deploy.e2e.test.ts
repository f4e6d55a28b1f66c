import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeys, readKeys, signMessage, type NodeKeys } from '../src/crypto/index.js';
import { openBroker, type MqttClient } from '../src/mqtt/index.js';
import { Mosquitto } from './helpers/broker.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { CLI, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 21 against a real Mosquitto and real agents: signed, staged deployments, the confirm window, rollback, refusals. */
const noBroker = missingTool('mosquitto', 'mosquitto') || missingTool('mosquitto_sub', 'mosquitto-clients');

const pub = (k: NodeKeys) => Buffer.from(k.sign.publicKey).toString('base64');

interface Agent {
  name: string;
  dir: string;
  port: number;
  daemon: DaemonProcess;
  config: () => string;
}

/** An async CLI run (the agents keep running meanwhile), with its wall time. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 })));
}

describe.skipIf(noBroker)('deployments on a real Mosquitto and real agents', () => {
  let broker: Mosquitto;
  let client: MqttClient;
  const dir = tempDir('outpost-deploy-');
  const trust = join(dir, 'trust.yaml');
  const agents: Agent[] = [];
  let alice: NodeKeys;
  let bob: NodeKeys;
  let mallory: NodeKeys;
  let keyring: string;

  const nodeConfig = (name: string, state: string, port: number, url: string) => `node: { name: ${name}, stateDir: ${state}, labels: { site: north } }
keyring:
${keyring}
status: { port: ${port} }
power: { enabled: false }
telemetry:
  mqtt: { url: "${url}", telemetryIntervalSeconds: 1, reconnect: { initialMs: 200, maxMs: 400 } }
logging: { format: json, results: false }
`;

  const startAgent = (a: Omit<Agent, 'daemon' | 'config'>, env: NodeJS.ProcessEnv = {}): Agent => {
    const agent = {
      ...a,
      daemon: new DaemonProcess(['run', '--config', join(a.dir, 'outpost.yaml')], env),
      config: () => readFileSync(join(a.dir, 'outpost.yaml'), 'utf8'),
    };
    agents.push(agent);
    return agent;
  };

  const operator = (extra: string[] = []) => ['--broker', broker.url, '--key', join(dir, 'alice'), '--trust', trust, ...extra];
  const status = async (a: Agent) => (await (await fetch(`http://127.0.0.1:${a.port}/status`)).json()) as { deployment: Record<string, unknown> };
  const metric = async (a: Agent, line: string) =>
    (await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text()).split('\n').find((l) => l.startsWith(line));

  beforeAll(async () => {
    broker = await Mosquitto.start();
    for (const n of ['alice', 'bob', 'mallory']) generateKeys(join(dir, n));
    [alice, bob, mallory] = ['alice', 'bob', 'mallory'].map((n) => readKeys(join(dir, n)));
    keyring = [
      `  - { name: alice, sign: ${pub(alice)}, roles: [operator] }`,
      `  - { name: bob, sign: ${pub(bob)}, box: ${Buffer.from(bob.box.publicKey).toString('base64')}, roles: [peer] }`,
    ].join('\n');
    const trusted: string[] = [];
    for (const name of ['cam-01', 'cam-02', 'cam-03']) {
      const adir = join(dir, name);
      const keys = generateKeys(join(adir, 'state', 'keys'));
      trusted.push(`- { name: ${name}, sign: ${keys.sign}, box: ${keys.box} }`);
      const port = await freePort();
      writeFileSync(join(adir, 'outpost.yaml'), nodeConfig(name, join(adir, 'state'), port, broker.url));
      startAgent({ name, dir: adir, port });
    }
    writeFileSync(trust, trusted.join('\n') + '\n');
    await Promise.all(agents.map((a) => a.daemon.waitForLog('connected to the MQTT broker')));
    client = await openBroker(broker.url);
  });

  afterAll(async () => {
    await client?.endAsync();
    for (const a of agents) a.daemon.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.daemon.exited));
    await broker?.down();
  });

  const current = (name: string) => agents.filter((a) => a.name === name).at(-1)!;

  it('(a) a config patch reaches 3 agents: the canary first, then the other two, and each runs it', async () => {
    const file = join(dir, 'interval.yaml');
    writeFileSync(file, 'id: interval-2\nconfig:\n  patch: { telemetry: { mqtt: { telemetryIntervalSeconds: 2 } } }\n');
    const r = await cli(['deploy', 'create', file, '--to', 'site=north', '--canary', '34%', '--confirm', '2s', ...operator()]);
    expect(r.stderr + r.stdout, r.stderr).toContain('canary cam-01');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n');
    const canaryDone = lines.findIndex((l) => l.startsWith('cam-01: confirmed passed'));
    const othersStart = lines.findIndex((l) => /^cam-0[23]: /.test(l));
    expect(canaryDone).toBeGreaterThanOrEqual(0);
    expect(othersStart, r.stderr).toBeGreaterThan(canaryDone);
    for (const name of ['cam-01', 'cam-02', 'cam-03']) {
      const a = current(name);
      expect(a.config()).toMatch(/telemetryIntervalSeconds: 2/);
      expect((await status(a)).deployment).toMatchObject({ current: { id: 'interval-2' }, pending: null });
      const [t] = broker.sub(`outpost/${name}/telemetry`, 5, 1);
      expect(JSON.parse(t.payload).intervalSeconds).toBe(2);
    }
    console.log(`deploy create → all 3 confirmed (confirm window 2 s, canary first): ${r.ms} ms`);
    const table = await cli(['deploy', 'status', 'interval-2', '--json', ...operator()]);
    expect(
      JSON.parse(table.stdout)
        .devices.map((d: { device: string; step: string }) => `${d.device}:${d.step}`)
        .sort(),
    ).toEqual(['cam-01:confirmed', 'cam-02:confirmed', 'cam-03:confirmed']);
  });
});
