import { readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import yaml from 'yaml';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderDemoFrames } from '../src/camera/index.js';
import type { ComponentContext } from '../src/core/index.js';
import { LIVE_SETTINGS, configSchema, isLiveSetting, loadConfig, resolveConfig, type OutpostConfig, type ResolvedConfig } from '../src/config/index.js';
import { generateKeys } from '../src/crypto/index.js';
import { Daemon } from '../src/daemon.js';
import { CameraSet } from '../src/pipeline/index.js';
import { PowerMonitor } from '../src/power/index.js';
import { MqttLink } from '../src/mqtt/index.js';
import { FleetTelemetry, ResultLog, StatsCollector, type CommandTargets } from '../src/telemetry/index.js';
import type { Frame, Result } from '../src/types.js';
import { boards, fakeTools } from './helpers/boards.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { startPipelineSet, testContext } from './helpers/context.js';
import { ROOT, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Every setting the schema marks live gets a case here that shows its new value changing behaviour after
 * reload(). A new live setting without a case fails the first test.
 */
type Case = (config: ResolvedConfig) => Promise<void>;

const setTemp = (root: string, milli: number) => {
  const file = join(root, 'sys/class/thermal/thermal_zone0/temp');
  writeFileSync(`${file}.new`, `${milli}\n`);
  renameSync(`${file}.new`, file);
};

/** A power monitor on a fixture board, reading every 100 ms, started; `level()` is what its governor holds. */
async function powerOn(root: string, power: Record<string, unknown>) {
  const config = configSchema.parse({
    power: { sysfsRoot: root, intervalSeconds: 0.1, dwellSeconds: { up: 0, down: 0 }, trend: { enabled: false }, ...power },
  });
  // the governor's clock runs ten times faster than the readings come, so a trend builds up in seconds
  const started = Date.now();
  const ctx = testContext(config, undefined, { now: () => started + (Date.now() - started) * 10 });
  const monitor = new PowerMonitor(ctx, fakeTools({}));
  await monitor.start();
  const governor = () => (monitor.status().power as { governor: { level: string; powerState: string } }).governor;
  const reload = (change: Record<string, unknown>) => monitor.reload({ ...config, power: { ...config.power, ...change } as OutpostConfig['power'] });
  return { ctx, monitor, level: () => governor().level, reload, stop: () => monitor.stop() };
}

async function withPower(root: string, power: Record<string, unknown>, body: (p: Awaited<ReturnType<typeof powerOn>>) => Promise<void>) {
  const p = await powerOn(root, power);
  try {
    await body(p);
  } finally {
    await p.stop();
  }
}

/** Fleet telemetry on a link that never connects: what it publishes waits in the link's queue, where a test can count it. */
function fleetOffline(config: OutpostConfig, events?: Record<string, { mode: 'all' | 'change' | 'threshold'; minScore: number }>) {
  const mqtt = configSchema.parse({ telemetry: { mqtt: { url: 'mqtt://127.0.0.1:1', ...(events ? { events } : {}) } } }).telemetry.mqtt!;
  const cfg = { ...config, telemetry: { mqtt } };
  const ctx = testContext(cfg);
  const link = new MqttLink(ctx, { mqtt, deviceId: 'cam' });
  const targets = { status: () => ({ node: 'cam' }), cameras: () => ['cam'] } as unknown as CommandTargets; // only what telemetry reads
  const fleet = new FleetTelemetry(ctx, mqtt, link, targets, { version: 't', startedAt: 0 });
  return { ctx, fleet, cfg, queued: () => (link.status().mqtt as { queued: number }).queued };
}

/** A result event: a result and its (empty) frame. */
const fakeResult = (camera: string, finishedAt: number): { result: Result; frame: Frame } => ({
  result: {
    frameId: `${camera}-1`,
    camera,
    capturedAt: finishedAt - 10,
    finishedAt,
    model: 'm',
    variant: 'fp32',
    provider: 'cpu',
    placement: 'local',
    timings: { queueMs: 0, decodeMs: 1, preprocessMs: 1, inferMs: 5, postMs: 1, totalMs: 8 },
    output: { text: 'HELLO' },
  },
  frame: { id: `${camera}-1`, camera, seq: 1, capturedAt: finishedAt - 10, data: Buffer.alloc(0), encoding: 'jpeg', width: 0, height: 0 },
});

/**
 * A real daemon uploading to a collector that is away (its items stay in the outbox, where /status counts them),
 * its `upload.select` changed on disk and applied by SIGHUP. The camera shows one still picture: `change` takes
 * its first result only, `all` every one.
 */
async function uploadSelectOnSighup(): Promise<void> {
  const dir = tempDir();
  const still = tempDir();
  writeFileSync(join(still, '0.jpg'), readFileSync(join(frames, '0.jpg')));
  const collector = generateKeys(join(dir, 'collector'));
  generateKeys(join(dir, 'state', 'keys'));
  const [port, away] = [await freePort(), await freePort()];
  const config = (select: Record<string, unknown>) =>
    yaml.stringify({
      node: { name: 'cam-01', stateDir: join(dir, 'state') },
      keyring: [{ name: 'hq', sign: collector.sign, box: collector.box, roles: ['collector'] }],
      cameras: [{ name: 'door', source: { type: 'directory', path: still, fps: 4, loop: true } }],
      models: { det: { file: 'builtin:ppocrv4-det' } },
      pipelines: { text: { stages: [{ name: 'detect', model: 'det', decoder: { type: 'db' } }] } },
      status: { port },
      power: { enabled: false },
      upload: { collector: { url: `http://127.0.0.1:${away}`, key: 'hq' }, select },
      logging: { format: 'json', results: false },
    });
  const daemon = DaemonProcess.start(dir, config({ '*': { mode: 'change' } }));
  const upload = async () => {
    const st = await (await fetch(`http://127.0.0.1:${port}/status`)).json().catch(() => null);
    return st && { processed: st.cameras.door?.processed ?? 0, pending: st.upload.pending + st.upload.preparing };
  };
  try {
    const before = await daemon.waitFor('three results', async () => ((await upload().catch(() => null))?.processed >= 3 ? upload() : undefined));
    expect(before.pending).toBe(1);
    writeFileSync(join(dir, 'outpost.yaml'), config({ '*': { mode: 'all' } }));
    daemon.kill('SIGHUP');
    expect((await daemon.waitForLog('configuration reloaded')).applied).toEqual(['upload.select.*.mode']);
    await daemon.waitFor('every result selected for upload', async () => ((await upload())?.pending >= 3 ? true : undefined));
  } finally {
    expect(await daemon.stop()).toBe(0);
  }
}

let frames: string;
beforeAll(async () => {
  frames = tempDir();
  (await renderDemoFrames(3, 4)).forEach((f, i) => writeFileSync(join(frames, `${i}.jpg`), f.data));
});

const CASES: Record<string, Case> = {
  'upload.select': uploadSelectOnSighup,
  'cameras[].maxFps': async () => {
    const { config } = loadConfig(`${ROOT}/config/outpost.yaml`, {});
    const cfg = { ...config, cameras: [{ ...config.cameras[0], source: { type: 'directory' as const, path: frames, fps: 20, loop: true, watch: false } }] };
    const started = await startPipelineSet(cfg, ['text']);
    const ctx: ComponentContext = { ...started.ctx, config: { ...started.ctx.config, cameras: cfg.cameras } };
    const drops: string[] = [];
    ctx.bus.on('frame.dropped', 'test', (d) => drops.push(d.reason));
    const cameras = new CameraSet(ctx, started.set, () => 'cpu');
    await cameras.start();
    try {
      await waitUntil(() => drops.length >= 3, 'frames superseded while uncapped');
      expect(drops.filter((d) => d === 'fps-cap')).toHaveLength(0);
      cameras.reload({ ...ctx.config, cameras: [{ ...cfg.cameras[0], maxFps: 0.5 }] });
      await waitUntil(() => drops.filter((d) => d === 'fps-cap').length >= 5, 'frames refused by the new cap');
    } finally {
      await cameras.stop();
      await started.stop();
    }
  },
  'status.staleAfterSeconds': async (config) => {
    let now = 100_000;
    const ctx = testContext(config, undefined, { now: () => now });
    const stats = new StatsCollector(ctx);
    await stats.start();
    ctx.bus.emit('result', fakeResult('cam', now));
    now += 5_000;
    expect(stats.health().ok).toBe(true); // default 10 s
    stats.reload({ ...config, status: { ...config.status, staleAfterSeconds: 2 } });
    expect(stats.health()).toMatchObject({ ok: false, reason: 'no result for 5 s' });
    await stats.stop();
  },
  'logging.level': async (config) => {
    const log = pino({ level: 'info' });
    const daemon = new Daemon({ file: 'test.yaml', config, envOverrides: [] }, log);
    await daemon.reload({ file: 'test.yaml', config: { ...config, logging: { ...config.logging, level: 'debug' } }, envOverrides: [] });
    expect(log.level).toBe('debug');
  },
  'logging.results': async (config) => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(String(c)).msg), done()) }));
    const ctx = testContext(config, log);
    const results = new ResultLog(ctx);
    await results.start();
    ctx.bus.emit('result', fakeResult('cam', Date.now()));
    results.reload({ ...config, logging: { ...config.logging, results: false } });
    ctx.bus.emit('result', fakeResult('cam', Date.now()));
    expect(lines.filter((l) => l === 'result')).toHaveLength(1);
  },
  'power.thresholds': () =>
    withPower(boards.pi4Ok(), {}, async (p) => {
      expect(p.level()).toBe('nominal'); // 48.7 °C under the Pi's 65 °C
      p.reload({ thresholds: { warm: 45, hot: 60, critical: 70 } });
      await waitUntil(() => p.level() === 'warm', 'warm at the lowered threshold');
    }),
  'power.hysteresis': () => {
    const root = boards.pi4Ok();
    return withPower(root, { thresholds: { warm: 45, hot: 60, critical: 70 }, hysteresis: 5 }, async (p) => {
      await waitUntil(() => p.level() === 'warm');
      setTemp(root, 43000); // under 45 but within the 5 °C hysteresis: stays warm
      await new Promise((r) => setTimeout(r, 300));
      expect(p.level()).toBe('warm');
      p.reload({ hysteresis: 1 });
      await waitUntil(() => p.level() === 'nominal', 'nominal once 43 °C is more than 1 °C under 45');
    });
  },
  'power.dwellSeconds': () =>
    withPower(boards.pi4Ok(), { thresholds: { warm: 45, hot: 60, critical: 70 }, dwellSeconds: { up: 3600, down: 0 } }, async (p) => {
      await new Promise((r) => setTimeout(r, 300));
      expect(p.level()).toBe('nominal'); // warm must hold for an hour first
      p.reload({ dwellSeconds: { up: 0, down: 0 } });
      await waitUntil(() => p.level() === 'warm', 'warm once no dwell is asked');
    }),
  'power.trend': () => {
    const root = boards.pi4Ok();
    return withPower(root, { thresholds: { warm: 60, hot: 70, critical: 80 } }, async (p) => {
      let milli = 50000;
      const heat = setInterval(() => setTemp(root, (milli += 100)), 100); // 6 °C a minute on the governor's clock
      try {
        await new Promise((r) => setTimeout(r, 300));
        expect(p.level()).toBe('nominal'); // about 50 °C, trend off
        p.reload({ trend: { enabled: true, lookaheadSeconds: 60, minRisePerMinute: 2 } });
        await waitUntil(() => p.level() === 'warm', 'an early step on the rising trend');
        expect(milli).toBeLessThan(60000); // stepped up before the threshold itself was crossed
      } finally {
        clearInterval(heat);
      }
    });
  },
  'power.lowBatteryPercent': () =>
    withPower(boards.laptopOnBattery(), { lowBatteryPercent: 20 }, async (p) => {
      expect(p.level()).toBe('hot'); // battery-low imposes hot
      p.reload({ lowBatteryPercent: 10 });
      await waitUntil(() => p.level() === 'warm', 'warm: a 15 % battery is no longer low at 10');
    }),
  'power.powerStates': () =>
    withPower(boards.laptopOnBattery(), {}, async (p) => {
      expect(p.level()).toBe('hot');
      p.reload({ powerStates: { battery: 'nominal', 'battery-low': 'nominal', undervoltage: 'hot' } });
      await waitUntil(() => p.level() === 'nominal', 'nominal once battery-low imposes nothing');
    }),
  'telemetry.mqtt.telemetryIntervalSeconds': async (config) => {
    const { fleet, queued, cfg } = fleetOffline(config);
    await fleet.start();
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(queued()).toBe(0); // every 10 s by default
      fleet.reload({ ...cfg, telemetry: { mqtt: { ...cfg.telemetry.mqtt!, telemetryIntervalSeconds: 1 } } });
      await waitUntil(() => queued() >= 2, 'telemetry every second');
    } finally {
      await fleet.stop();
    }
  },
  'telemetry.mqtt.events': async (config) => {
    const { ctx, fleet, queued, cfg } = fleetOffline(config, { '*': { mode: 'change', minScore: 0.5 } });
    await fleet.start();
    try {
      for (let i = 0; i < 3; i++) ctx.bus.emit('result', fakeResult('cam', Date.now()));
      expect(queued()).toBe(1); // the same text three times: one change
      fleet.reload({ ...cfg, telemetry: { mqtt: { ...cfg.telemetry.mqtt!, events: { '*': { mode: 'all', minScore: 0.5 } } } } });
      for (let i = 0; i < 3; i++) ctx.bus.emit('result', fakeResult('cam', Date.now()));
      expect(queued()).toBe(4);
    } finally {
      await fleet.stop();
    }
  },
  'power.policy': () =>
    withPower(boards.pi4Ok(), {}, async (p) => {
      const seen: (number | undefined)[] = [];
      p.ctx.bus.on('governor.policy', 'test', ({ policy }) => seen.push(policy.maxFps));
      const policy = configSchema.parse({}).power.policy;
      p.reload({ policy: { ...policy, nominal: { ...policy.nominal, maxFps: 0.5 } } });
      expect(seen).toEqual([0.5]);
    }),
};

/**
 * What each component's reload() reads, by file name (a file may move between folders). A reload that reads no
 * live setting could never change anything: the restart-only ones keep their running values (planReload).
 * `logging.level` is applied by the supervisor itself.
 */
const RELOADS: Record<string, string[]> = {
  'cameraSet.ts': ['cameras[].maxFps'],
  'statsCollector.ts': ['status.staleAfterSeconds'],
  'resultLog.ts': ['logging.results'],
  'powerMonitor.ts': [
    'power.thresholds',
    'power.hysteresis',
    'power.dwellSeconds',
    'power.trend',
    'power.lowBatteryPercent',
    'power.powerStates',
    'power.policy',
  ],
  'fleetTelemetry.ts': ['telemetry.mqtt.telemetryIntervalSeconds', 'telemetry.mqtt.events'],
  'uploader.ts': ['upload.select'],
  'supervisor.ts': ['logging.level'],
};

/** src files with a component's `reload(config…)`; the component list's own, which hands the config on, aside. */
function filesWithReload(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir).flatMap((n) => {
    const path = join(dir, n);
    if (statSync(path).isDirectory()) return filesWithReload(path);
    return n.endsWith('.ts') && n !== 'componentList.ts' && /^\s+(async )?reload\((config|next)\b/m.test(readFileSync(path, 'utf8')) ? [basename(path)] : [];
  });
}

describe('live settings (SIGHUP without a restart)', () => {
  it('has a behaviour case for every setting the schema marks live', () => {
    expect(Object.keys(CASES).sort()).toEqual([...LIVE_SETTINGS].sort());
  });

  it('every reload() is reached by a setting marked live, and every live setting by a reload()', () => {
    expect(filesWithReload().sort()).toEqual(Object.keys(RELOADS).sort());
    for (const [file, settings] of Object.entries(RELOADS)) for (const s of settings) expect(isLiveSetting(s), `${file}: ${s}`).toBe(true);
    expect(Object.values(RELOADS).flat().sort()).toEqual([...LIVE_SETTINGS].sort());
  });

  for (const [setting, run] of Object.entries(CASES)) {
    it(`${setting} changes behaviour on reload`, () => run(resolveConfig(configSchema.parse({ node: { stateDir: tempDir() } }))));
  }
});
