import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderDemoFrames } from '../src/camera/index.js';
import type { ComponentContext } from '../src/component.js';
import { LIVE_SETTINGS, configSchema, loadConfig, type OutpostConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { CameraSet } from '../src/pipeline/index.js';
import { PowerMonitor } from '../src/power/index.js';
import { MqttLink } from '../src/mqtt/index.js';
import { FleetTelemetry, ResultLog, StatsCollector, type CommandTargets } from '../src/telemetry/index.js';
import type { Frame, Result } from '../src/types.js';
import { boards, fakeTools } from './helpers/boards.js';
import { startPipelineSet, testContext } from './helpers/context.js';
import { ROOT, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Every setting the schema marks live gets a case here that shows its new value changing behaviour after
 * reload(). A new live setting without a case fails the first test.
 */
type Case = (config: OutpostConfig) => Promise<void>;

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
  const fleet = new FleetTelemetry(ctx, link, targets, { version: 't', startedAt: 0 });
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

let frames: string;
beforeAll(async () => {
  frames = tempDir();
  (await renderDemoFrames(3, 4)).forEach((f, i) => writeFileSync(join(frames, `${i}.jpg`), f.data));
});

const CASES: Record<string, Case> = {
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

describe('live settings (SIGHUP without a restart)', () => {
  it('has a behaviour case for every setting the schema marks live', () => {
    expect(Object.keys(CASES).sort()).toEqual([...LIVE_SETTINGS].sort());
  });

  for (const [setting, run] of Object.entries(CASES)) {
    it(`${setting} changes behaviour on reload`, () => run(configSchema.parse({ node: { stateDir: tempDir() } })));
  }
});
