#!/usr/bin/env node
// The exporter's cost at fleet scale: N simulated devices publish a retained online status and a real-sized
// telemetry message every interval (starts spread over one interval, as a fleet's are), a real `outpost exporter`
// takes them all, and its /metrics is scraped every 15 s (Prometheus' default). Reports the exporter's CPU seconds
// per minute (/proc, user + system), per 1,000 messages, its RSS, and the scrape's size and time. Prints JSON.
// The devices share a few publisher connections: the exporter reads one subscription either way.
// usage: npm run build && node scripts/bench-exporter.mjs [--devices 1000] [--interval 10] [--duration 60] [--broker URL]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const devices = Number(arg('devices', 1000));
const interval = Number(arg('interval', 10));
const duration = Number(arg('duration', 60));
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const PUBLISHERS = 10;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** user + system CPU seconds of a process (USER_HZ 100). */
const cpuSeconds = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const rssBytes = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;

/** A node's telemetry as it publishes it (one camera, an outbox, no peers): about 900 bytes. */
const telemetry = (device, seq) =>
  JSON.stringify({
    node: device,
    uptimeSeconds: seq * interval,
    healthy: true,
    provider: 'cpu',
    variant: 'fp32',
    cameras: { door: { fps: 2 + (seq % 3) * 0.1, received: seq * 20, processed: seq * 20, dropped: 0, skipped: 0, failed: 0, last: ['GATE 7'], paused: false } },
    latencyMs: { queue: { p50: 0, p95: 1 }, infer: { p50: 182, p95: 226 }, total: { p50: 236, p95: 277 }, captureToResult: { p50: 239, p95: 410 } },
    power: { governor: { level: 'nominal', temperatureC: 48.5, since: 1796148984754, powerState: 'mains', transitions: 0 }, readErrors: 0 },
    eventLoopDelayMs: { p50: 10, p95: 14, max: 278 },
    rssBytes: 324182016,
    cpuPercent: 35.2,
    precision: { rung: 'fp32', fixed: false, pipelines: { text: 'fp32' } },
    upload: { transport: 'http', epoch: 'e1', pending: seq % 7, preparing: 0, bytes: 4096, dropped: { full: 0, expired: 0, 'refused-new': 0, unreadable: 0, busy: 0 }, delivered: seq * 20 },
    jobs: { paused: false },
    mqtt: { connected: true, bdSeq: 1, connects: 1, disconnects: 0, takeovers: 0, queued: 0, dropped: 0 },
    service: { ready: true, pings: 0, withheld: 0 },
    intervalSeconds: interval,
    at: new Date().toISOString(),
  });

async function ownBroker() {
  const port = await freePort();
  const conf = join(mkdtempSync(join(tmpdir(), 'outpost-bench-exporter-')), 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`);
  const child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  await sleep(500);
  return { url: `mqtt://127.0.0.1:${port}`, child };
}

const own = arg('broker') ? null : await ownBroker();
const url = arg('broker') ?? own.url;
const base = `outpost-bench-exporter-${process.pid}`;
const publishers = await Promise.all(Array.from({ length: PUBLISHERS }, () => mqtt.connectAsync(url, { protocolVersion: 5 })));
const pub = (i) => publishers[i % PUBLISHERS];
for (let i = 0; i < devices; i++) await pub(i).publishAsync(`${base}/dev-${i}/status`, JSON.stringify({ state: 'online', bdSeq: 1, version: '0.1.0', provider: 'cpu' }), { qos: 1, retain: true });

const listen = `127.0.0.1:${await freePort()}`;
const exporter = spawn(process.execPath, [CLI, 'exporter', '--broker', url, '--base', base, '--listen', listen], { stdio: ['ignore', 'ignore', 'inherit'] });
await sleep(1500);
const timers = [];
let seq = 0;
let messages = 0;
let counting = false;
for (let i = 0; i < devices; i++) {
  const tick = () => {
    if (counting) messages++;
    pub(i).publish(`${base}/dev-${i}/telemetry`, telemetry(`dev-${i}`, seq++));
  };
  timers.push(setTimeout(() => (tick(), timers.push(setInterval(tick, interval * 1000))), (i / devices) * interval * 1000));
}
const scrapes = [];
const scrape = async () => {
  const t0 = performance.now();
  const text = await (await fetch(`http://${listen}/metrics`)).text();
  scrapes.push({ ms: performance.now() - t0, bytes: text.length, up: (text.match(/^outpost_device_up\{/gm) ?? []).length });
};
await sleep(interval * 1000); // warm-up: every device has published once
await scrape();
counting = true;
const cpu0 = cpuSeconds(exporter.pid);
const t0 = performance.now();
const scraper = setInterval(() => scrape().catch(() => undefined), 15_000);
await sleep(duration * 1000);
const cpu = cpuSeconds(exporter.pid) - cpu0;
const wall = (performance.now() - t0) / 1000;
counting = false;
clearInterval(scraper);
await scrape();
const rss = rssBytes(exporter.pid);
timers.forEach((t) => clearInterval(t));
exporter.kill('SIGTERM');
for (let i = 0; i < devices; i++) await pub(i).publishAsync(`${base}/dev-${i}/status`, '', { retain: true });
await Promise.all(publishers.map((c) => c.endAsync()));
own?.child.kill();
const last = scrapes.at(-1);
const r = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
console.log(
  JSON.stringify(
    {
      kind: 'outpost-bench-exporter',
      createdAt: new Date().toISOString(),
      devices,
      intervalSeconds: interval,
      durationSeconds: r(wall, 1),
      messages,
      messagesPerSecond: r(messages / wall, 1),
      exporterCpuSecondsPerMinute: r((cpu / wall) * 60, 3),
      exporterCpuPercentOfCore: r((cpu / wall) * 100),
      exporterCpuMsPer1000Messages: messages ? r((cpu * 1e6) / messages, 1) : null,
      exporterRssMiB: r(rss / 2 ** 20, 1),
      scrape: { devicesUp: last.up, bytes: last.bytes, msMax: r(Math.max(...scrapes.map((s) => s.ms)), 1), count: scrapes.length },
    },
    null,
    2,
  ),
);
