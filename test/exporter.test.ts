import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMessage } from '../src/cli/exporter/fleetMessages.js';
import { FleetState } from '../src/cli/exporter/fleetState.js';
import { Mosquitto } from './helpers/broker.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { ROOT, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Issue 22, the fleet in Prometheus: two real agents and one device published by hand on a real Mosquitto, a
 * real `outpost exporter`, a real Prometheus scraping it, promtool checking its output and the alerting rules.
 */
const noBroker = missingTool('mosquitto', 'mosquitto') || missingTool('mosquitto_pub', 'mosquitto-clients');
const noPrometheus = missingTool('prometheus', 'prometheus') || missingTool('promtool', 'prometheus');
const RULES = join(ROOT, 'config', 'prometheus');

/** A node with no camera: it publishes its status and telemetry every second, and nothing else costs CPU. */
const agentConfig = (
  name: string,
  dir: string,
  broker: string,
  statusPort: number,
) => `node: { name: ${name}, stateDir: ${join(dir, 'state')}${name === 'agent-1' ? ', labels: { site: south }' : ''} }
status: { port: ${statusPort} }
telemetry:
  mqtt: { url: "${broker}", telemetryIntervalSeconds: 1, reconnect: { initialMs: 200, maxMs: 400 } }
logging: { format: json, results: false }
`;

/** The figures a node with an outbox, an offload peer and a warm board sends (the shape of its /status). */
const SIM_TELEMETRY = {
  cameras: { door: { fps: 4, processed: 100, last: ['GATE 7'] }, yard: { fps: 1 } },
  latencyMs: { infer: { p50: 120, p95: 240 }, total: { p50: 150, p95: 250 } },
  power: { governor: { level: 'hot', temperatureC: 81.5 } },
  precision: { rung: 'int8' },
  upload: { pending: 12, dropped: { full: 3, expired: 1, busy: 0 }, delivered: 40 },
  offload: { peers: { gpu: { framesPerSecond: 1 } } },
  intervalSeconds: 60,
  at: new Date().toISOString(),
};

/** The `name{labels} value` lines of one metric in an exposition text (`name{…` narrows it to some series). */
function series(text: string, name: string): Record<string, number> {
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.startsWith(name) && (name.includes('{') || /^[{ ]/.test(l.slice(name.length))))
      .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]),
  );
}

describe.skipIf(noBroker)('outpost exporter: the fleet on /metrics', () => {
  let broker: Mosquitto;
  let agents: DaemonProcess[];
  let exporter: DaemonProcess;
  let port: number;
  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  beforeAll(async () => {
    broker = await Mosquitto.start();
    broker.pub('outpost/sim-1/status', JSON.stringify({ state: 'online', bdSeq: 1, version: '0.1.0', provider: 'cuda', labels: { site: 'north' } }), true);
    agents = [];
    for (const name of ['agent-1', 'agent-2']) {
      const at = tempDir();
      agents.push(DaemonProcess.start(at, agentConfig(name, at, broker.url, await freePort())));
    }
    port = await freePort();
    exporter = new DaemonProcess(['exporter', '--broker', broker.url, '--listen', `127.0.0.1:${port}`, '--label', 'site', '--max-devices', '4']);
    await exporter.waitForLog('exporter listening');
    broker.pub('outpost/sim-1/telemetry', JSON.stringify(SIM_TELEMETRY));
    // up on its retained status at once; then each agent's first telemetry (its governor level) too
    const ready = (t: string) =>
      [...t.matchAll(/^outpost_device_up\{.*\} 1$/gm)].length === 3 && [...t.matchAll(/^outpost_device_governor_level\{/gm)].length === 3;
    await exporter.waitFor('three devices up, with telemetry, on /metrics', async () => (ready(await metrics()) ? true : undefined));
  });

  afterAll(async () => {
    for (const p of [exporter, ...(agents ?? [])]) p?.kill('SIGKILL');
    await Promise.all([exporter, ...(agents ?? [])].map((p) => p?.exited));
    await broker?.down();
  });

  it("serves each device's series labelled by device and node label, as the node reported them", async () => {
    const text = await metrics();
    expect(series(text, 'outpost_device_up')).toEqual({
      'outpost_device_up{device="agent-1",site="south"}': 1,
      'outpost_device_up{device="agent-2",site=""}': 1,
      'outpost_device_up{device="sim-1",site="north"}': 1,
    });
    const sim = (name: string) => series(text, name)[`${name}{device="sim-1",site="north"}`];
    expect(sim('outpost_device_fps')).toBe(5);
    expect(sim('outpost_device_latency_p95_seconds')).toBe(0.25);
    expect(sim('outpost_device_temperature_celsius')).toBe(81.5);
    expect(sim('outpost_device_governor_level')).toBe(2);
    expect(sim('outpost_device_outbox_pending_items')).toBe(12);
    expect(sim('outpost_device_uploads_dropped_total')).toBe(4);
    expect(sim('outpost_device_uploads_delivered_total')).toBe(40);
    expect(sim('outpost_device_offload_share')).toBe(0.2);
    expect(sim('outpost_device_last_seen_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(series(text, 'outpost_device_precision')).toMatchObject({ 'outpost_device_precision{device="sim-1",site="north",precision="int8"}': 1 });
    expect(series(text, 'outpost_device_info')).toMatchObject({ 'outpost_device_info{device="sim-1",site="north",version="0.1.0",provider="cuda"}': 1 });
    // a real agent's own telemetry: its governor level and precision rung come through
    expect(series(text, 'outpost_device_governor_level')['outpost_device_governor_level{device="agent-1",site="south"}']).toBe(0);
    // no per-frame or per-text label: what a camera last read is nowhere in the output
    expect(text).not.toContain('GATE 7');
  });

  it.skipIf(noPrometheus)('passes promtool check metrics', async () => {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: await metrics(), encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it.skipIf(noPrometheus)('is scraped by a real Prometheus, from which promtool query instant reads up for each device', async () => {
    const promPort = await freePort();
    const at = tempDir();
    writeFileSync(
      join(at, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [${join(RULES, 'outpost-rules.yml')}]
scrape_configs:
  - job_name: outpost-fleet
    static_configs: [{ targets: ['127.0.0.1:${port}'] }]
`,
    );
    const args = [`--config.file=${join(at, 'prometheus.yml')}`, `--storage.tsdb.path=${join(at, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`];
    const prometheus: ChildProcess = spawn('prometheus', args, { stdio: 'ignore' });
    try {
      const query = (expr: string) => {
        const r = spawnSync('promtool', ['query', 'instant', '-o', 'json', `http://127.0.0.1:${promPort}`, expr], { encoding: 'utf8' });
        return r.status === 0 ? (JSON.parse(r.stdout) as { metric: Record<string, string>; value: [number, string] }[]) : [];
      };
      await waitUntil(() => query('outpost_device_up').length === 3, 'Prometheus to scrape the three devices', 120, 250);
      const up = query('outpost_device_up').map((s) => [s.metric.device, s.metric.job, s.value[1]]);
      expect(up.sort()).toEqual([
        ['agent-1', 'outpost-fleet', '1'],
        ['agent-2', 'outpost-fleet', '1'],
        ['sim-1', 'outpost-fleet', '1'],
      ]);
      expect(query('outpost_device_temperature_celsius{site="north"}').map((s) => s.value[1])).toEqual(['81.5']);
      // the rules load in a real Prometheus too (the unit tests below check what they say)
      const rules = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json()) as { data: { groups: { rules: unknown[] }[] } };
      expect(rules.data.groups[0].rules).toHaveLength(6);
    } finally {
      const exited = new Promise((resolve) => prometheus.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
  });

  it('ignores junk with a counted reason, keeps the last good figures, and tracks no device past its cap', async () => {
    broker.pub('outpost/sim-1/telemetry', 'not json at all');
    broker.pub('outpost/sim-1/telemetry', JSON.stringify({ ...SIM_TELEMETRY, cameras: { door: { fps: 'fast' } } }));
    broker.pub('outpost/sim-1/status', JSON.stringify({ state: 'online', labels: { 'bad label': 'x' } }));
    broker.pub('outpost/bad device/telemetry', JSON.stringify(SIM_TELEMETRY));
    // past the Maximum Packet Size the exporter asked for: the broker does not even send it
    broker.pub('outpost/huge/telemetry', JSON.stringify({ ...SIM_TELEMETRY, padding: 'x'.repeat(100_000) }));
    broker.pub('outpost/extra-1/telemetry', JSON.stringify(SIM_TELEMETRY));
    broker.pub('outpost/extra-2/telemetry', JSON.stringify(SIM_TELEMETRY));
    let text = '';
    await waitUntil(async () => (text = await metrics()).includes('outpost_exporter_messages_ignored_total{reason="device-cap"} 1'), 'the cap to count', 400);
    expect(series(text, 'outpost_exporter_messages_ignored_total')).toEqual({
      'outpost_exporter_messages_ignored_total{reason="too-large"}': 0,
      'outpost_exporter_messages_ignored_total{reason="bad-device-id"}': 1,
      'outpost_exporter_messages_ignored_total{reason="not-json"}': 1,
      'outpost_exporter_messages_ignored_total{reason="invalid"}': 2,
      'outpost_exporter_messages_ignored_total{reason="device-cap"}': 1,
    });
    expect(Object.keys(series(text, 'outpost_device_up{')).map((k) => /device="([^"]+)"/.exec(k)![1])).toEqual(['agent-1', 'agent-2', 'extra-1', 'sim-1']);
    expect(series(text, 'outpost_device_fps')['outpost_device_fps{device="sim-1",site="north"}']).toBe(5);
    expect(series(text, 'outpost_exporter_devices')).toEqual({ outpost_exporter_devices: 4 });
  });

  it('an agent killed: its last will says offline and its up falls to 0; a cleared retained status forgets the device', async () => {
    agents[1].kill('SIGKILL');
    await agents[1].exited;
    await waitUntil(async () => (await metrics()).includes('outpost_device_up{device="agent-2",site=""} 0'), 'agent-2 to go down', 200, 100);
    broker.pub('outpost/extra-1/status', '', true);
    await waitUntil(async () => !(await metrics()).includes('device="extra-1"'), 'extra-1 to be forgotten');
    const text = await metrics();
    expect(series(text, 'outpost_exporter_devices_forgotten_total')).toEqual({ outpost_exporter_devices_forgotten_total: 1 });
    expect(series(text, 'outpost_device_up{device="agent-1"')).toEqual({ 'outpost_device_up{device="agent-1",site="south"}': 1 });
  });
});

describe.skipIf(noPrometheus)('config/prometheus/outpost-rules.yml', () => {
  it('passes promtool check rules and its unit tests (promtool test rules)', () => {
    const check = spawnSync('promtool', ['check', 'rules', join(RULES, 'outpost-rules.yml')], { encoding: 'utf8' });
    expect(check.stdout + check.stderr).toContain('SUCCESS: 6 rules found');
    const test = spawnSync('promtool', ['test', 'rules', join(RULES, 'outpost-rules.test.yml')], { encoding: 'utf8' });
    expect(test.stdout + test.stderr).toContain('SUCCESS');
    expect(test.status).toBe(0);
  });
});

describe('outpost exporter: its flags', () => {
  it("takes the operator tools' broker flags, and refuses a node label Prometheus or the exporter sets itself", () => {
    const help = runCli(['exporter', '--help']).stdout;
    for (const flag of ['--username', '--password-file', '--ca', '--cert', '--cert-key', '--config']) expect(help).toMatch(new RegExp(`${flag} <`));
    const r = runCli(['exporter', '--broker', 'mqtt://127.0.0.1:1', '--label', 'instance']);
    expect([r.code, r.stderr.trim()]).toEqual([
      64,
      'outpost: OUTPOST_E_USAGE: --label instance: the exporter or Prometheus sets that label itself; name the node label otherwise',
    ]);
  });
});

describe('the fleet state forgets and caps (no network: the clock is a number)', () => {
  const telemetry = (fps: number) => readMessage('d', 'telemetry', Buffer.from(JSON.stringify({ cameras: { c: { fps } }, intervalSeconds: 10 })));

  it('is down after three quiet intervals, forgotten after --forget-after, and a freed slot takes a new device', () => {
    const fleet = new FleetState({ maxDevices: 1, forgetAfterMs: 60_000 });
    fleet.take(telemetry(2), 0);
    fleet.take(readMessage('e', 'telemetry', Buffer.from('{}')), 1000);
    expect(fleet.ignored['device-cap']).toBe(1);
    expect(fleet.figures(30_000).map((f) => [f.device, f.up, f.fps])).toEqual([['d', true, 2]]);
    expect(fleet.figures(31_000).map((f) => f.up)).toEqual([false]);
    expect(fleet.figures(61_000)).toEqual([]);
    expect(fleet.forgotten).toBe(1);
    fleet.take(readMessage('e', 'telemetry', Buffer.from('{}')), 62_000);
    expect(fleet.figures(62_000).map((f) => f.device)).toEqual(['e']);
  });
});
