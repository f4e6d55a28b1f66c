import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, rounded } from '../../benchMath.js';
import { OutpostError } from '../../errors.js';
import { openBroker, type MqttClient } from '../../mqtt/index.js';
import { freePort } from '../common.js';
import { Progress } from '../progress.js';
import { childEnv } from '../../childEnv.js';

export interface FleetBenchOptions {
  /** device counts to measure, one run each */
  devices: number[];
  broker?: string;
  intervalSeconds: number;
  durationSeconds: number;
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
 * `outpost bench --fleet N[,N…]`: N simulated devices, each a real MQTT connection with a retained status and
 * telemetry at the interval (starts spread over one interval), watched by a real `outpost monitor --json`
 * process. Measures that process's CPU per 1,000 messages and as % of one core, and the lag from a device's
 * publish to the monitor's output line (p50/p95/p99), after one interval of warm-up.
 */
export async function benchFleet(opts: FleetBenchOptions) {
  const own = opts.broker ? null : await ownBroker();
  const url = opts.broker ?? own!.url;
  const runs = [];
  try {
    for (const n of opts.devices) runs.push(await fleetRun(url, n, opts));
  } finally {
    own?.child.kill();
  }
  return {
    kind: 'outpost-bench-fleet',
    createdAt: new Date().toISOString(),
    broker: opts.broker ?? 'mosquitto started for the run',
    intervalSeconds: opts.intervalSeconds,
    runs,
  };
}

async function fleetRun(url: string, n: number, opts: FleetBenchOptions) {
  const progress = new Progress(`fleet ${n}`);
  const base = `outpost-bench-${process.pid}-${n}`;
  const devices: MqttClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await openBroker(url, { clientId: `${base}-${i}` });
    await c.publishAsync(`${base}/dev-${i}/status`, JSON.stringify({ state: 'online', bdSeq: 1 }), { qos: 1, retain: true });
    devices.push(c);
    if (i % 50 === 0) progress.update(i, n, 'connecting devices');
  }
  const monitor = spawn(process.execPath, [CLI, 'monitor', '--broker', url, '--base', base, '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: childEnv(),
  });
  const lags: number[] = [];
  let messages = 0;
  let measuring = false;
  createInterface({ input: monitor.stdout! }).on('line', (line) => {
    const at = (JSON.parse(line) as { at?: string | null }).at;
    if (!measuring || !at) return;
    messages++;
    lags.push(Date.now() - Date.parse(at));
  });
  await new Promise((r) => setTimeout(r, 1000)); // the monitor connects and subscribes
  const timers: NodeJS.Timeout[] = [];
  let seq = 0;
  devices.forEach((c, i) => {
    const tick = () => {
      // a simulated device's lost publish is what the bench measures (lag), not an error
      c.publishAsync(`${base}/dev-${i}/telemetry`, telemetry(`dev-${i}`, opts.intervalSeconds, seq++)).catch(() => undefined);
    };
    timers.push(setTimeout(() => (tick(), timers.push(setInterval(tick, opts.intervalSeconds * 1000))), (i / n) * opts.intervalSeconds * 1000));
  });
  await new Promise((r) => setTimeout(r, opts.intervalSeconds * 1000)); // warm-up: every device has published once
  measuring = true;
  const cpu0 = cpuSeconds(monitor.pid!);
  const t0 = performance.now();
  for (let s = 0; s < opts.durationSeconds; s++) {
    progress.update(s, opts.durationSeconds, `${messages} messages`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const cpu = cpuSeconds(monitor.pid!) - cpu0;
  const wall = (performance.now() - t0) / 1000;
  measuring = false;
  progress.done();
  timers.forEach((t) => clearInterval(t));
  monitor.kill('SIGTERM');
  // clear the retained statuses: a broker that is kept must not show a thousand ghost devices
  await Promise.all(devices.map((c, i) => c.publishAsync(`${base}/dev-${i}/status`, '', { retain: true }).catch(() => undefined)));
  await Promise.all(devices.map((c) => c.endAsync(true)));
  const sorted = [...lags].sort((a, b) => a - b);
  const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
  return {
    devices: n,
    durationSeconds: rounded(wall, 1),
    messages,
    messagesPerSecond: rounded(messages / wall, 1),
    monitorCpuSeconds: rounded(cpu, 3),
    monitorCpuPercentOfCore: rounded((cpu / wall) * 100, 2),
    monitorCpuMsPer1000Messages: messages ? rounded((cpu * 1000 * 1000) / messages, 1) : null,
    lagMs: { p50: median(lags), p95: pct(95), p99: pct(99), max: sorted.at(-1) ?? null },
    goals: n >= 1000 && opts.intervalSeconds >= 10 ? { cpuUnder5Percent: (cpu / wall) * 100 < 5, lagP99Under1s: (pct(99) ?? Infinity) < 1000 } : undefined,
  };
}
