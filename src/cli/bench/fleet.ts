import { spawn, type ChildProcess } from 'node:child_process';
import { Option, type Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, rounded } from '../../benchMath.js';
import { OutpostError } from '../../errors.js';
import { openBroker, type MqttClient } from '../../mqtt/index.js';
import { exitOnError, freePort, positiveInt } from '../common.js';
import { Progress } from '../progress.js';
import { durationOption, emitReport, percentile, sleep, withReportFlags, type ReportFlags } from './shared.js';
import { childEnv } from '../../childEnv.js';

export interface FleetBenchOptions extends ReportFlags {
  /** device counts to measure, one run each */
  devices: number[];
  broker?: string;
  interval: number;
  duration: number;
}

/** `outpost bench fleet`: simulated devices on MQTT watched by a real `outpost monitor`. */
export function fleetMode(bench: Command): Command {
  const cmd = bench
    .command('fleet')
    .description('N simulated devices on MQTT watched by outpost monitor: its CPU per 1,000 messages and the publish-to-display lag')
    .addOption(
      new Option('--devices <n,...>', 'device counts, one run each, such as 100,1000')
        .argParser((v) => v.split(',').map((x) => positiveInt(x.trim())))
        .default([100], '100'),
    )
    .option('--broker <url>', 'the broker (default: a mosquitto started for the run)')
    .option('--interval <seconds>', "each device's telemetry interval", positiveInt, 10)
    .addOption(durationOption(30, 'seconds measured per run, after one interval of warm-up'));
  return withReportFlags(cmd).action((o: FleetBenchOptions) => benchFleet(o).catch(exitOnError));
}

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));

/** A telemetry payload the size and shape of a real node's (one camera, the /status figures). */
function telemetry(device: string, interval: number, seq: number): string {
  const stage = { p50: 12.5, p95: 31.2 };
  return JSON.stringify({
    node: device,
    version: '0.1.0',
    uptimeSeconds: seq * interval,
    healthy: true,
    provider: 'cpu',
    variant: 'fp32',
    cameras: { door: { fps: 2 + (seq % 3) * 0.1, received: seq * 20, processed: seq * 20, dropped: 0, skipped: 0, failed: 0, last: ['GATE 7'] } },
    latencyMs: Object.fromEntries(['queue', 'decode', 'preprocess', 'infer', 'post', 'total', 'captureToResult'].map((k) => [k, stage])),
    power: { governor: { level: 'nominal', temperatureC: 48.5, powerState: 'mains', thresholds: { warm: 65, hot: 72, critical: 78 } } },
    precision: { rung: 'fp32', fixed: false },
    eventLoopDelayMs: { p50: 10.1, p95: 12.3, max: 20.4 },
    rssBytes: 180_000_000,
    cpuPercent: 35.2,
    intervalSeconds: interval,
    at: new Date().toISOString(),
  });
}

/** A Mosquitto of our own for the run, when no --broker is given. */
async function ownBroker(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const conf = join(tmpdir(), `outpost-bench-mosquitto-${process.pid}.conf`);
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`);
  const child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore', env: childEnv() });
  child.on('error', () => undefined);
  const url = `mqtt://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await (await openBroker(url, { timeoutMs: 500 })).endAsync();
      return { url, child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  throw new OutpostError('OUTPOST_E_UNREACHABLE', 'could not start mosquitto for the fleet bench (apt-get install mosquitto), or pass --broker URL');
}

/** utime + stime of a process, in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/**
 * `outpost bench fleet --devices N[,N…]`: N simulated devices, each a real MQTT connection with a retained status and
 * telemetry at the interval (starts spread over one interval), watched by a real `outpost monitor --json`
 * process. Measures that process's CPU per 1,000 messages and as % of one core, and the lag from a device's
 * publish to the monitor's output line (p50/p95/p99), after one interval of warm-up.
 */
async function benchFleet(opts: FleetBenchOptions): Promise<void> {
  const own = opts.broker ? null : await ownBroker();
  const url = opts.broker ?? own!.url;
  const runs = [];
  try {
    for (const n of opts.devices) runs.push(await fleetRun(url, n, opts));
  } finally {
    own?.child.kill();
  }
  emitReport(opts, {
    kind: 'outpost-bench-fleet',
    createdAt: new Date().toISOString(),
    broker: opts.broker ?? 'mosquitto started for the run',
    intervalSeconds: opts.interval,
    runs,
  });
}

/** One run: `n` devices publishing, the monitor watching, its CPU and lag measured after a warm-up. */
async function fleetRun(url: string, n: number, opts: FleetBenchOptions) {
  const progress = new Progress(`fleet ${n}`);
  const base = `outpost-bench-${process.pid}-${n}`;
  const devices = await connectDevices(url, base, n, progress);
  const monitor = watch(url, base);
  await sleep(1000); // the monitor connects and subscribes
  const timers = publishTelemetry(devices, base, opts.interval);
  await sleep(opts.interval * 1000); // warm-up: every device has published once
  monitor.measuring = true;
  const cpu0 = cpuSeconds(monitor.child.pid!);
  const t0 = performance.now();
  for (let s = 0; s < opts.duration; s++) {
    progress.update(s, opts.duration, `${monitor.lags.length} messages`);
    await sleep(1000);
  }
  const cpu = cpuSeconds(monitor.child.pid!) - cpu0;
  const wall = (performance.now() - t0) / 1000;
  monitor.measuring = false;
  progress.done();
  timers.forEach((t) => clearInterval(t));
  monitor.child.kill('SIGTERM');
  await disconnect(devices, base);
  return runReport(n, monitor.lags, cpu, wall, opts.interval);
}

/** `n` devices, each a real MQTT connection with its retained online status. */
async function connectDevices(url: string, base: string, n: number, progress: Progress): Promise<MqttClient[]> {
  const devices: MqttClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await openBroker(url, { clientId: `${base}-${i}` });
    await c.publishAsync(`${base}/dev-${i}/status`, JSON.stringify({ state: 'online', bdSeq: 1 }), { qos: 1, retain: true });
    devices.push(c);
    if (i % 50 === 0) progress.update(i, n, 'connecting devices');
  }
  return devices;
}

/** A real `outpost monitor --json`; while `measuring`, the lag of each line from its device's publish. */
function watch(url: string, base: string) {
  const child = spawn(process.execPath, [CLI, 'monitor', '--broker', url, '--base', base, '--json'], { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv() });
  const watched = { child, lags: [] as number[], measuring: false };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const at = (JSON.parse(line) as { at?: string | null }).at;
    if (watched.measuring && at) watched.lags.push(Date.now() - Date.parse(at));
  });
  return watched;
}

/** Telemetry from every device at the interval, their starts spread over one interval. */
function publishTelemetry(devices: MqttClient[], base: string, interval: number): NodeJS.Timeout[] {
  const timers: NodeJS.Timeout[] = [];
  let seq = 0;
  devices.forEach((c, i) => {
    const tick = () => {
      // a simulated device's lost publish is what the bench measures (lag), not an error
      c.publishAsync(`${base}/dev-${i}/telemetry`, telemetry(`dev-${i}`, interval, seq++)).catch(() => undefined);
    };
    timers.push(setTimeout(() => (tick(), timers.push(setInterval(tick, interval * 1000))), (i / devices.length) * interval * 1000));
  });
  return timers;
}

/** Clears the retained statuses (a broker that is kept must not show a thousand ghost devices) and disconnects. */
async function disconnect(devices: MqttClient[], base: string): Promise<void> {
  await Promise.all(devices.map((c, i) => c.publishAsync(`${base}/dev-${i}/status`, '', { retain: true }).catch(() => undefined)));
  await Promise.all(devices.map((c) => c.endAsync(true)));
}

function runReport(n: number, lags: number[], cpu: number, wall: number, interval: number) {
  const sorted = [...lags].sort((a, b) => a - b);
  const messages = lags.length;
  const p99 = percentile(sorted, 99);
  return {
    devices: n,
    durationSeconds: rounded(wall, 1),
    messages,
    messagesPerSecond: rounded(messages / wall, 1),
    monitorCpuSeconds: rounded(cpu, 3),
    monitorCpuPercentOfCore: rounded((cpu / wall) * 100, 2),
    monitorCpuMsPer1000Messages: messages ? rounded((cpu * 1000 * 1000) / messages, 1) : null,
    lagMs: { p50: median(lags), p95: percentile(sorted, 95), p99, max: sorted.at(-1) ?? null },
    goals: n >= 1000 && interval >= 10 ? { cpuUnder5Percent: (cpu / wall) * 100 < 5, lagP99Under1s: (p99 ?? Infinity) < 1000 } : undefined,
  };
}
