import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { parse } from 'yaml';
import { generateKeys, readKeys, signMessage, type NodeKeys } from '../src/crypto/index.js';
import { ConfirmWatch } from '../src/deploy/confirmWatch.js';
import { deploymentSchema } from '../src/deploy/index.js';
import { openBroker, type MqttClient } from '../src/mqtt/index.js';
import { DataType, dimsOf, encodeModel, floatValues, makeTensor, readModelFile } from '../src/onnx/index.js';
import { Mosquitto } from './helpers/broker.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { CLI, sharedPath, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 21 against a real Mosquitto and real agents: signed, staged deployments, the confirm window, rollback, refusals. */
const noBroker = missingTool('mosquitto', 'mosquitto') || missingTool('mosquitto_sub', 'mosquitto-clients');

const ultraface = sharedPath('models/ultraface/version-RFB-320.onnx');
const faces = sharedPath('data/faces');

/** UltraFace with every weight scaled by a random factor in [0.5, 1.5): a detector whose answers differ. */
function perturbed(file: string): Buffer {
  const model = readModelFile(file);
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  model.graph!.initializer = model.graph!.initializer!.map((t) => {
    if (t.data_type !== DataType.FLOAT) return t;
    const v = floatValues(t).map((x) => x * (0.5 + random()));
    return makeTensor(t.name!, t.data_type, dimsOf(t), v);
  });
  return Buffer.from(encodeModel(model));
}

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

  /** cam-01 and cam-02 run UltraFace on the shared face photos (the shadow run's frames); cam-03 has no camera. */
  const cameras = (name: string) =>
    ultraface && faces && name !== 'cam-03'
      ? `cameras:
  - { name: door, pipeline: faces, source: { type: directory, path: ${faces}, fps: 1 } }
models:
  ultraface: { file: ${ultraface} }
pipelines:
  faces:
    stages:
      - { name: detect, model: ultraface, decoder: { type: ssd, labels: [background, face] } }
`
      : '';
  const nodeConfig = (name: string, state: string, port: number, url: string) => `node: { name: ${name}, stateDir: ${state}, labels: { site: north } }
${cameras(name)}keyring:
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

  const signed = (device: string, args: Record<string, unknown>, keys = alice, action = 'create') =>
    JSON.stringify(signMessage({ purpose: 'deployment', target: device, action, args }, keys.sign));
  const send = (device: string, payload: string | Buffer, action = 'create') => client.publishAsync(`outpost/${device}/deploy/${action}`, payload, { qos: 1 });
  const settled = (a: Agent, id: string) =>
    a.daemon.waitFor(`deployment ${id} to end on ${a.name}`, async () => {
      const d = (await status(a).catch(() => null))?.deployment as
        { pending: unknown; last: { id: string; outcome: string; reason?: string } | null } | undefined;
      return d && d.pending === null && d.last?.id === id ? d.last : undefined;
    });

  it.skipIf(!ultraface || !faces)('(b) a detector with perturbed weights fails the shadow run on every board that runs it, and no board swaps', async () => {
    const bytes = { same: readFileSync(ultraface!), perturbed: perturbed(ultraface!) };
    const server = createServer((req, res) => res.end(req.url === '/perturbed.onnx' ? bytes.perturbed : bytes.same)).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = (name: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/${name}.onnx`;
    const entry = (name: 'same' | 'perturbed') =>
      `{ name: ultraface-${name}.onnx, model: ultraface, size: ${bytes[name].length}, sha256: ${createHash('sha256').update(bytes[name]).digest('hex')}, url: "${url(name)}" }`;
    try {
      const before = ['cam-01', 'cam-02'].map((n) => current(n).config());
      const logsBefore = ['cam-01', 'cam-02'].map((n) => current(n).daemon.logs.length);
      writeFileSync(join(dir, 'perturbed.yaml'), `id: ultraface-perturbed\nfiles: [${entry('perturbed')}]\ngates: { shadowFrames: 3 }\n`);
      const bad = await cli(['deploy', 'create', join(dir, 'perturbed.yaml'), '--to', 'cam-01,cam-02', '--confirm', '2s', ...operator()]);
      expect(bad.code, bad.stderr).toBe(1);
      expect(bad.stderr).toMatch(/shadow-failed/);
      for (const [i, name] of ['cam-01', 'cam-02'].entries()) {
        const last = await settled(current(name), 'ultraface-perturbed');
        expect(last, name).toMatchObject({ outcome: 'failed', reason: 'shadow-failed', shadow: [{ pipeline: 'faces', frames: 3 }] });
        expect((last as unknown as { shadow: { agreement: number }[] }).shadow[0].agreement).toBeLessThan(0.9);
        expect(current(name).config(), name).toBe(before[i]);
        expect(
          current(name)
            .daemon.logs.slice(logsBefore[i])
            .some((l) => l.msg === 'deployment applied; confirm window open'),
        ).toBe(false);
      }
      // the control, its file sent as chunks on the broker: the same bytes as the serving model agree on every frame, swap live and confirm
      writeFileSync(join(dir, 'same.yaml'), `id: ultraface-same\nfiles: [{ path: ${ultraface}, model: ultraface }]\ngates: { shadowFrames: 3 }\n`);
      const good = await cli(['deploy', 'create', join(dir, 'same.yaml'), '--to', 'cam-01', '--confirm', '2s', '--json', ...operator()]);
      expect(good.code, good.stderr).toBe(0);
      const [row] = JSON.parse(good.stdout).devices;
      expect(row).toMatchObject({ device: 'cam-01', step: 'confirmed' });
      expect(current('cam-01').config()).toContain(join('deploy', 'files', createHash('sha256').update(bytes.same).digest('hex')));
      const shadow = current('cam-01').daemon.logs.filter((l) => l.msg === 'shadow run') as unknown as {
        agreement: number;
        msPerFrame: number;
        servingMsPerFrame: number;
      }[];
      expect(shadow.at(-1)!.agreement).toBe(1);
      console.log(
        `shadow run per frame: candidate ${shadow.at(-1)!.msPerFrame.toFixed(1)} ms beside serving ${shadow.at(-1)!.servingMsPerFrame.toFixed(1)} ms (UltraFace 320, CPU)`,
      );
    } finally {
      server.close();
    }
  });

  it('(e) forged, replayed, non-operator, path-escaping and oversized deployments are refused, counted, and the node runs on', async () => {
    const a = current('cam-01');
    const before = a.config();
    const doc = (id: string, more: Record<string, unknown> = {}) => ({ id, targets: { devices: ['cam-01'] }, gates: { confirmSeconds: 1 }, ...more });
    const good = signed('cam-01', doc('noop-1'));
    await send('cam-01', good);
    expect(await settled(a, 'noop-1')).toMatchObject({ outcome: 'confirmed' });
    await send('cam-01', good); // a replay
    await send('cam-01', signed('cam-01', doc('forged'), mallory)); // a key the node does not know
    await send('cam-01', signed('cam-01', doc('peer'), bob)); // a key without the operator role
    const tampered = JSON.parse(signed('cam-01', doc('tampered')));
    await send('cam-01', JSON.stringify({ ...tampered, args: { ...tampered.args, config: { patch: { logging: { level: 'debug' } } } } }));
    const file = { name: '../../outpost.yaml', sha256: 'a'.repeat(64), size: 10, url: 'http://127.0.0.1:1/x' };
    await send('cam-01', signed('cam-01', doc('escape', { files: [file] })));
    await send('cam-01', Buffer.alloc(200 * 1024, 'x'));
    await send('cam-01', JSON.stringify({ ...tampered, sig: undefined })); // unsigned
    for (const reason of ['replayed', 'unknown-key', 'wrong-role', 'bad-signature', 'path-escape', 'too-large', 'malformed'])
      await waitUntil(async () => (await metric(a, `outpost_deployments_refused_total{reason="${reason}"} 1`)) !== undefined, `a ${reason} refusal`, 100, 100);
    expect(a.config()).toBe(before);
    expect((await status(a)).deployment).toMatchObject({ current: { id: 'noop-1' }, pending: null, last: { id: 'noop-1', outcome: 'confirmed' } });
    expect(a.daemon.child.exitCode).toBeNull();
  });

  it('(c) a config that points telemetry.mqtt at a wrong port is applied, the board loses the broker, rolls back by itself and comes back', async () => {
    const a = current('cam-02');
    const before = a.config();
    const file = join(dir, 'wrong-port.yaml');
    writeFileSync(
      file,
      `id: wrong-port\nconfig:\n  patch: { telemetry: { mqtt: { url: "mqtt://127.0.0.1:${await freePort()}" } } }\ngates: { unreachableSeconds: 2 }\n`,
    );
    const r = await cli(['deploy', 'create', file, '--to', 'cam-02', '--confirm', '60s', ...operator()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cam-02: rolled-back \(broker-unreachable\)/);
    expect(a.config()).toBe(before);
    const [online] = broker.sub('outpost/cam-02/status', 2, 1);
    expect(JSON.parse(online.payload).state).toBe('online');
    expect(await metric(a, 'outpost_rollbacks_total{reason="broker-unreachable"} 1')).toBeDefined();
    console.log(`broken config (broker unreachable, gate 2 s) → rolled back and reported: ${r.ms} ms after deploy create`);
  });

  it("a stranger who takes the board's client id over in the confirm window rolls nothing back, and the final report still arrives", async () => {
    const a = current('cam-01');
    writeFileSync(
      join(dir, 'takeover.yaml'),
      'id: takeover\nconfig:\n  patch: { telemetry: { mqtt: { telemetryIntervalSeconds: 2 } } }\ngates: { unreachableSeconds: 2 }\n',
    );
    const create = cli(['deploy', 'create', join(dir, 'takeover.yaml'), '--to', 'cam-01', '--confirm', '12s', ...operator()]);
    await a.daemon.waitFor(
      'the confirm window',
      async () => ((await status(a).catch(() => null))?.deployment?.pending as { step?: string } | null)?.step === 'confirming' || undefined,
    );
    // no key, only the board's client id: each reconnect takes its session away again
    const stranger = await mqtt.connectAsync(broker.url, { clientId: 'outpost-cam-01', reconnectPeriod: 20, protocolVersion: 5 });
    await new Promise((r) => setTimeout(r, 7_000));
    await stranger.endAsync(true);
    const r = await create;
    expect(r.code, r.stderr).toBe(0);
    expect(a.config()).toMatch(/telemetryIntervalSeconds: 2/);
    const after = await cli(['deploy', 'status', 'takeover', '--json', ...operator()]);
    expect(JSON.parse(after.stdout).devices[0]).toMatchObject({ device: 'cam-01', step: 'confirmed' });
  });

  it('waits for deploy confirm when confirmation is required, and deploy rollback puts the config before it back', async () => {
    const a = current('cam-02');
    const before = a.config();
    writeFileSync(join(dir, 'confirm.yaml'), 'id: needs-confirm\nconfig:\n  patch: { telemetry: { mqtt: { telemetryIntervalSeconds: 3 } } }\n');
    const create = cli(['deploy', 'create', join(dir, 'confirm.yaml'), '--to', 'cam-02', '--confirm', '60s', '--require-confirm', ...operator()]);
    await a.daemon.waitFor(
      'the confirm window',
      async () => ((await status(a).catch(() => null))?.deployment?.pending as { step?: string } | null)?.step === 'confirming' || undefined,
    );
    const confirm = await cli(['deploy', 'confirm', 'needs-confirm', ...operator()]);
    expect(confirm.code, confirm.stderr).toBe(0);
    expect((await create).code).toBe(0);
    expect(a.config()).toMatch(/telemetryIntervalSeconds: 3/);
    const rollback = await cli(['deploy', 'rollback', 'needs-confirm', '--json', ...operator()]);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(JSON.parse(rollback.stdout).devices[0]).toMatchObject({ device: 'cam-02', step: 'rolled-back', reason: 'operator' });
    expect(a.config()).toBe(before);
  });

  it('(d) SIGKILL at each step, then a start: the board ends on the old config or the new, never a mix', async () => {
    const base = { name: 'cam-03', dir: join(dir, 'cam-03'), port: current('cam-03').port };
    await current('cam-03').daemon.stop();
    const old = current('cam-03').config();
    const plan: { hold: string; gates: Record<string, unknown>; ends: string }[] = [
      { hold: 'received', gates: {}, ends: 'failed' },
      { hold: 'validated', gates: {}, ends: 'failed' },
      { hold: 'applying', gates: {}, ends: 'rolled-back' },
      { hold: 'renamed', gates: {}, ends: 'rolled-back' },
      { hold: 'rolling-back', gates: { confirmSeconds: 1, requireConfirm: true }, ends: 'rolled-back' },
      { hold: 'confirming', gates: { confirmSeconds: 3 }, ends: 'confirmed' },
    ];
    let last = '';
    let previous: string | null = null;
    for (const [i, step] of plan.entries()) {
      const agent = startAgent(base, step.hold === 'confirming' ? {} : { OUTPOST_TEST_DEPLOY_HOLD: step.hold });
      await agent.daemon.waitForLog('connected to the MQTT broker');
      if (previous) expect(await settled(agent, previous)).toMatchObject({ outcome: plan[i - 1].ends });
      if (previous) expect(agent.config(), `after a SIGKILL at ${plan[i - 1].hold}`).toBe(old);
      const id = `kill-${step.hold}`;
      const message = signed('cam-03', {
        id,
        targets: { devices: ['cam-03'] },
        config: { patch: { telemetry: { mqtt: { telemetryIntervalSeconds: 3 } } } },
        gates: step.gates,
      });
      last = message;
      await send('cam-03', message);
      await agent.daemon.waitForLog(step.hold === 'confirming' ? 'deployment applied; confirm window open' : 'deployment held (OUTPOST_TEST_DEPLOY_HOLD)');
      agent.daemon.kill('SIGKILL');
      await agent.daemon.exited;
      previous = id;
    }
    const agent = startAgent(base);
    await agent.daemon.waitForLog('connected to the MQTT broker');
    expect(await settled(agent, 'kill-confirming')).toMatchObject({ outcome: 'confirmed' });
    expect(agent.config()).toMatch(/telemetryIntervalSeconds: 3/);
    const want = parse(old);
    want.telemetry.mqtt.telemetryIntervalSeconds = 3;
    expect(parse(agent.config())).toEqual(want);
    await send('cam-03', last); // the replay ledger outlives SIGKILL and restarts
    await waitUntil(async () => (await metric(agent, 'outpost_deployments_refused_total{reason="replayed"} 1')) !== undefined, 'the replay refused', 100, 100);
  });
});

describe("the confirm window's gates (in process, on the board's own figures)", () => {
  const pending = (gates: Record<string, unknown>, before = { broker: true, collector: false, results: true }) => ({
    id: 'd1',
    step: 'confirming' as const,
    operator: 'alice',
    at: 0,
    deadline: 60_000,
    before,
    doc: deploymentSchema.parse({ id: 'd1', targets: { devices: ['cam-01'] }, gates }),
  });
  const up = { brokerConnected: () => true, collectorReachable: () => null };

  it('rolls back on results that stop, an error rate or a latency past its gate, a lost broker, a missing confirmation', () => {
    const silent = new ConfirmWatch(pending({ maxSilenceSeconds: 5 }), up, 0);
    expect(silent.verdict(4_000, false)).toBeNull();
    expect(silent.verdict(6_000, false)).toMatchObject({ reason: 'results-stopped' });
    const failing = new ConfirmWatch(pending({ maxErrorRate: 0.2 }), up, 0);
    for (let i = 0; i < 7; i++) failing.result(10, 1_000);
    for (let i = 0; i < 3; i++) failing.failure();
    expect(failing.verdict(1_000, false)).toMatchObject({ reason: 'error-rate' });
    const slow = new ConfirmWatch(pending({ maxLatencyMs: 100 }), up, 0);
    for (let i = 0; i < 5; i++) slow.result(250, 1_000);
    expect(slow.verdict(1_000, false)).toMatchObject({ reason: 'latency' });
    let connected = true;
    const lost = new ConfirmWatch(pending({ unreachableSeconds: 3 }), { ...up, brokerConnected: () => connected }, 0);
    expect(lost.verdict(1_000, false)).toBeNull();
    connected = false;
    expect(lost.verdict(3_500, false)).toBeNull();
    expect(lost.verdict(4_500, false)).toMatchObject({ reason: 'broker-unreachable' });
    const never = new ConfirmWatch(pending({ requireConfirm: true }, { broker: false, collector: false, results: false }), up, 0);
    expect(never.verdict(59_000, false)).toBeNull();
    expect(never.verdict(61_000, false)).toMatchObject({ reason: 'not-confirmed' });
    expect(new ConfirmWatch(pending({ requireConfirm: true }), up, 0).verdict(1_000, true)).toBe('confirmed');
    expect(new ConfirmWatch(pending({}, { broker: false, collector: false, results: false }), up, 0).verdict(61_000, false)).toBe('confirmed');
  });
});
