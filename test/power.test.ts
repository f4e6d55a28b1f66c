import { describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/index.js';
import { BoardSensors, Governor, PowerMonitor, chooseThresholds, decodeThrottled, type SensorSnapshot } from '../src/power/index.js';
import { testContext } from './helpers/context.js';
import { waitUntil } from './helpers/wait.js';
import { runCli } from './helpers/daemonProcess.js';
import { boards, fakeTools } from './helpers/boards.js';

const power = configSchema.parse({}).power;
const read = (root: string, tools: Record<string, string> = {}) => new BoardSensors({ root, run: fakeTools(tools), lowBatteryPercent: 20 }).read();

describe('Raspberry Pi throttling word', () => {
  it('decodes every bit, now and since boot', () => {
    const s = decodeThrottled(0x50005, 'test');
    expect(s.now).toEqual({ underVoltage: true, armFrequencyCapped: false, throttled: true, softTemperatureLimit: false });
    expect(s.sinceBoot).toEqual({ underVoltage: true, armFrequencyCapped: false, throttled: true, softTemperatureLimit: false });
    expect(decodeThrottled(0x80008, 't').now.softTemperatureLimit).toBe(true);
    expect(decodeThrottled(0x20000, 't')).toMatchObject({ now: { armFrequencyCapped: false }, sinceBoot: { armFrequencyCapped: true } });
  });
});

describe('board sensors on fixture trees', () => {
  it('Pi 4, throttled: firmware word, rpi_volt alarm, under-voltage power state', async () => {
    const s = await read(boards.pi4Throttled());
    expect(s.board).toEqual({ model: 'Raspberry Pi 4 Model B Rev 1.4', family: 'raspberry-pi' });
    expect(s.temperature).toMatchObject({ celsius: 81.234, trips: [{ type: 'critical', celsius: 110 }] });
    expect(s.throttle).toMatchObject({ raw: 0x50005, source: '/sys/devices/platform/soc/soc:firmware/get_throttled' });
    expect(s.piUnderVoltageAlarm).toBe(true);
    expect(s.powerState).toBe('undervoltage');
    expect(s.cpuFreqMHz).toEqual({ cpu0: 600, cpu1: 600, cpu2: 600, cpu3: 600 });
    expect(s.missing).toEqual(['power supplies']);
  });

  it('Pi 4, healthy, prefers vcgencmd when it is installed', async () => {
    const s = await read(boards.pi4Ok(), { 'vcgencmd get_throttled': 'throttled=0x0\n' });
    expect(s.throttle).toMatchObject({ raw: 0, source: 'vcgencmd get_throttled' });
    expect(s.powerState).toBe('mains');
    expect(s.temperature?.celsius).toBeCloseTo(48.686, 3);
  });

  it('Pi 5 on a 3 A supply reports its current limit', async () => {
    const s = await read(boards.pi5ThreeAmp());
    expect(s.pi5MaxCurrentMa).toBe(3000);
    expect(s.board.family).toBe('raspberry-pi');
  });

  it('Jetson Nano (JetPack 4): ignores PMIC-Die, reads iio power rails, nvpmodel and GPU load', async () => {
    const s = await read(boards.jetsonNanoJp4(), { 'nvpmodel -q': 'NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n' });
    expect(s.board.family).toBe('jetson');
    expect(s.thermal.map((t) => t.name)).not.toContain('PMIC-Die');
    expect(s.temperature).toMatchObject({ celsius: 44.5, source: '/sys/class/thermal/thermal_zone1/temp' });
    expect(s.rails).toEqual([
      expect.objectContaining({ name: 'POM_5V_IN', volts: 5, amps: 0.888, watts: 4.44 }),
      expect.objectContaining({ name: 'POM_5V_GPU', volts: 5, amps: 0.08, watts: 0.4 }),
    ]);
    expect(s.nvpmodel).toEqual({ name: 'MAXN', id: 0 });
    expect(s.gpuLoadPercent).toBe(25);
  });

  it('Jetson Orin (JetPack 6): Orin zones, hwmon INA3221 rails without the NC channel', async () => {
    const s = await read(boards.jetsonOrinJp6(), { 'nvpmodel -q': 'NV Power Mode: MODE_30W\n2\n' });
    expect(s.temperature).toMatchObject({ celsius: 52.187 });
    expect(s.rails.map((r) => [r.name, r.volts, r.amps, r.watts])).toEqual([
      ['VDD_GPU_SOC', 4.976, 1.416, 7.046],
      ['VDD_CPU_CV', 4.984, 0.4, 1.994],
    ]);
    expect(s.nvpmodel).toEqual({ name: 'MODE_30W', id: 2 });
    // -256 °C is Orin's way of saying "no sensor": unavailable, never a temperature
    expect(s.thermal.find((t) => t.name === 'cv0-thermal')?.celsius).toBeNull();
    // thresholds from the zone's trip points: passive 99 °C, critical 104.5 °C
    expect(chooseThresholds(undefined, s.temperature!.trips, s.board.family)).toEqual({ warm: 88, hot: 96, critical: 99.5 });
  });

  it('a laptop on battery: battery-low, with volts and amps in SI units', async () => {
    const s = await read(boards.laptopOnBattery());
    expect(s.powerState).toBe('battery-low');
    expect(s.supplies.find((x) => x.name === 'BAT0')).toMatchObject({ capacityPercent: 15, status: 'Discharging', volts: 11.35, amps: 1.52 });
    expect(s.temperature).toMatchObject({ celsius: 67, source: '/sys/class/thermal/thermal_zone1/temp' });
  });

  it('a server with no zones lists what is missing and reports no temperature (not zero)', async () => {
    const s = await read(boards.x86Server());
    expect(s.temperature).toBeNull();
    expect(s.missing).toEqual(['thermal zones and hwmon temperatures', 'a board temperature', 'power supplies']);
  });
});

describe('`outpost sensors` on a fixture tree', () => {
  it('prints readings with units and the implied level', async () => {
    const root = boards.pi4Throttled();
    const r = runCli(['sensors', '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/cpu-thermal\s+81\.2 °C/);
    expect(r.stdout).toMatch(/throttling\s+0x50005 .*now underVoltage, throttled; since boot underVoltage, throttled/);
    expect(r.stdout).toMatch(/power state\s+undervoltage/);
    const json = JSON.parse(runCli(['sensors', '--root', root, '--json']).stdout);
    expect(json.level).toBe('critical'); // 81 °C on a Pi: past its family's 78 °C (the 110 °C trip is not the limit)
    expect(json.thresholds).toEqual({ warm: 65, hot: 72, critical: 78 });
  });

  it('says "unavailable" for a sensor that reads -256 °C (Jetson Orin without it), and never governs on it', () => {
    const r = runCli(['sensors', '--root', boards.jetsonOrinJp6()]);
    expect(r.stdout).toMatch(/cv0-thermal\s+unavailable/);
    expect(r.stdout).toMatch(/temperature\s+52\.2 °C from \/sys\/class\/thermal\/thermal_zone5\/temp/);
  });

  it('refuses a --root that does not exist instead of reporting an empty board', () => {
    const r = runCli(['sensors', '--root', '/nonexistent/board']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--root \/nonexistent\/board is not a folder/);
  });
});

describe('the power monitor as a daemon component', () => {
  const monitor = (root: string, extra: Record<string, unknown> = {}) => {
    const config = configSchema.parse({
      power: { sysfsRoot: root, intervalSeconds: 0.1, dwellSeconds: { up: 0, down: 0 }, trend: { enabled: false }, ...extra },
    });
    const ctx = testContext(config);
    return { ctx, power: new PowerMonitor(ctx, fakeTools({})) };
  };
  const powerState = (p: PowerMonitor) => (p.status().power as { governor: { powerState: string } }).governor.powerState;

  it('applies power.lowBatteryPercent live: a battery at 15 % is low at 20 and not at 10', async () => {
    const { ctx, power } = monitor(boards.laptopOnBattery(), { lowBatteryPercent: 20 });
    await power.start();
    try {
      expect(powerState(power)).toBe('battery-low');
      power.reload({ ...ctx.config, power: { ...ctx.config.power, lowBatteryPercent: 10 } });
      await waitUntil(() => powerState(power) === 'battery');
    } finally {
      await power.stop();
    }
  });

  it('exports no board temperature series when the board has no sensor (never a fake 0 °C)', async () => {
    const { ctx, power } = monitor(boards.x86Server());
    await power.start();
    try {
      const text = await ctx.registry.metrics();
      expect(text).not.toMatch(/^outpost_board_temperature_celsius/m);
      expect(text).toMatch(/^outpost_governor_level 0$/m);
    } finally {
      await power.stop();
    }
  });

  it('labels the temperature series with the sensor it comes from', async () => {
    const { ctx, power } = monitor(boards.jetsonOrinJp6());
    await power.start();
    try {
      expect(await ctx.registry.metrics()).toMatch(/^outpost_board_temperature_celsius\{sensor="\/sys\/class\/thermal\/thermal_zone5\/temp"\} 52\.187$/m);
    } finally {
      await power.stop();
    }
  });
});

/** A snapshot with only a temperature (and power state), as the governor sees one. */
function snap(at: number, celsius: number | null, powerState: SensorSnapshot['powerState'] = 'mains'): SensorSnapshot {
  return {
    at,
    board: { model: null, family: 'generic' },
    thermal: [],
    temperature: celsius === null ? null : { celsius, source: 'test', trips: [] },
    throttle: null,
    piUnderVoltageAlarm: null,
    pi5MaxCurrentMa: null,
    rails: [],
    nvpmodel: null,
    gpuLoadPercent: null,
    supplies: [],
    cpuFreqMHz: {},
    powerState,
    missing: [],
  };
}

describe('governor', () => {
  const cfg = { ...power, thresholds: { warm: 75, hot: 82, critical: 90 } };

  it('follows 70 → 86 → 74 °C with ±2 °C jitter without flapping', () => {
    let seed = 42;
    const jitter = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2;
    const g = new Governor({ ...cfg, trend: { ...cfg.trend, enabled: false } }, 0);
    const trace: number[] = [];
    for (let i = 0; i < 60; i++) trace.push(70 + (16 * i) / 60); // climb over 5 minutes at one reading / 5 s
    for (let i = 0; i < 60; i++) trace.push(86);
    for (let i = 0; i < 60; i++) trace.push(86 - (12 * i) / 60);
    for (let i = 0; i < 120; i++) trace.push(74);
    const transitions = trace.map((t, i) => g.update(snap(i * 5000, t + jitter()))).filter((t) => t !== null);
    expect(transitions.map((t) => `${t!.from}→${t!.to}`)).toEqual(['nominal→warm', 'warm→hot', 'hot→warm']);
    expect(transitions.every((t) => t!.temperatureC !== null && t!.reason.includes('°C'))).toBe(true);
    expect(g.state.level).toBe('warm');
  });

  it('takes critical at once, without waiting for the dwell time', () => {
    const g = new Governor(cfg, 0);
    g.update(snap(0, 60));
    expect(g.update(snap(1000, 95))).toMatchObject({ from: 'nominal', to: 'critical' });
  });

  it('steps up early on a fast rise', () => {
    const g = new Governor({ ...cfg, dwellSeconds: { up: 0, down: 60 } }, 0);
    let t: ReturnType<Governor['update']> = null;
    for (let i = 0; i <= 24 && !t; i++) t = g.update(snap(i * 5000, 60 + i * 0.5)); // 6 °C/min
    expect(t!.temperatureC).toBeLessThan(75); // stepped up before the threshold
    expect(t).toMatchObject({ to: 'warm', reason: expect.stringMatching(/rising 6\.0 °C\/min/) });
  });

  it('lets the power state impose a least level', () => {
    const g = new Governor({ ...cfg, dwellSeconds: { up: 0, down: 0 } }, 0);
    expect(g.update(snap(0, 50, 'battery'))).toMatchObject({ to: 'warm', reason: 'power battery' });
    expect(g.update(snap(1000, 50, 'undervoltage'))).toMatchObject({ to: 'hot', reason: 'power undervoltage' });
    expect(g.update(snap(2000, 50, 'mains'))).toMatchObject({ to: 'nominal' });
  });

  it('holds its level when a reading fails after earlier readings', () => {
    const g = new Governor({ ...cfg, dwellSeconds: { up: 0, down: 0 } }, 0);
    g.update(snap(0, 95));
    expect(g.update(snap(1000, null))).toBeNull();
    expect(g.state.level).toBe('critical');
  });

  it('stays nominal and says why when there is no temperature sensor', () => {
    const g = new Governor(cfg, 0);
    expect(g.update(snap(0, null))).toBeNull();
    expect(g.state).toMatchObject({ level: 'nominal', temperatureC: null });
  });
});

describe('governor trend after a peak', () => {
  it('does not step up on a falling temperature that rose before', () => {
    const cfg = { ...power, thresholds: { warm: 75, hot: 82, critical: 90 }, dwellSeconds: { up: 0, down: 0 } };
    const g = new Governor(cfg, 0);
    const temps = [50, 52, 56, 62, 68, 73, 60, 55, 52];
    const levels = temps.map((t, i) => (g.update(snap(i * 10_000, t)), g.state.level));
    expect(levels.slice(-3)).toEqual(['nominal', 'nominal', 'nominal']);
  });
});
