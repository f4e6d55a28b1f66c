import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { rounded } from '../../benchMath.js';
import { fromB64, generateKeys, readKeys } from '../../crypto/index.js';
import { OutpostError } from '../../errors.js';
import { redactUrl } from '../../mqtt/index.js';
import type { Command } from 'commander';
import { exitOnError, freePort, positiveInt } from '../common.js';
import { Progress } from '../progress.js';
import { emitReport, withReportFlags, type ReportFlags } from './shared.js';
import { SimDevice } from './simDevice.js';

/** `outpost bench collect URL`: simulated devices into 1 and 2 collectors on one PostgreSQL, then one SIGKILLed. */
export function collectMode(bench: Command): Command {
  const cmd = bench
    .command('collect')
    .description(
      'simulated devices drain their backlog into 1 and 2 collectors on this PostgreSQL (one SIGKILLed in a third run): items/s, ack p50/p99, rows vs sent, CPU per 1,000 items',
    )
    .argument('<postgres-url>', 'the database the collectors share (the bench tells its rows apart by device name)')
    .option('--devices <n>', 'simulated devices', positiveInt, 6)
    .option('--backlog <n>', 'items in all, split between the devices', positiveInt, 6_000)
    .option('--broker <url>', 'devices publish there and the collectors share one subscription ($share); default: HTTP');
  return withReportFlags(cmd).action((store: string, o: ReportFlags & { devices: number; backlog: number; broker?: string }) =>
    benchCollect({ store, devices: o.devices, itemsPerDevice: Math.ceil(o.backlog / o.devices), broker: o.broker })
      .then((report) => emitReport(o, report))
      .catch(exitOnError),
  );
}

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface CollectBenchOptions {
  /** postgres://… the collectors share (the bench's rows are told apart by their device names) */
  store: string;
  /** simulated devices */
  devices: number;
  /** items each device has waiting when the collectors start */
  itemsPerDevice: number;
  /** an MQTT broker: devices publish there and the collectors share one subscription; absent: HTTP */
  broker?: string;
}

interface Run {
  collectors: number;
  killOne: boolean;
}

/**
 * `outpost bench --collect URL`: N simulated devices (the real uploader: sealed envelopes, signed acks, backoff)
 * each with a backlog, drained into 1, then 2 `outpost collect` processes on one PostgreSQL, then 2 with one
 * SIGKILLed halfway. Reports items/s from the first batch to the last ack, batch ack latency p50/p99, rows in
 * the database against items sent, and each collector's CPU per 1,000 items (/proc).
 */
export async function benchCollect(opts: CollectBenchOptions) {
  if (!/^postgres(ql)?:\/\//.test(opts.store)) throw new OutpostError('OUTPOST_E_USAGE', `--collect ${redactUrl(opts.store)} is not a postgres:// URL`);
  const runs: Run[] = [
    { collectors: 1, killOne: false },
    { collectors: 2, killOne: false },
    { collectors: 2, killOne: true },
  ];
  const progress = new Progress('bench collect');
  const results = [];
  for (const [i, run] of runs.entries()) {
    progress.update(i, runs.length, `${run.collectors} collector(s)${run.killOne ? ', one SIGKILLed' : ''}`);
    results.push(await oneRun(opts, run, `b${Date.now().toString(36)}`));
  }
  progress.done();
  return {
    kind: 'outpost-bench-collect',
    createdAt: new Date().toISOString(),
    store: redactUrl(opts.store),
    transport: opts.broker ? 'mqtt (shared subscription)' : 'http (each device given every collector URL)',
    devices: opts.devices,
    itemsPerDevice: opts.itemsPerDevice,
    runs: results,
    lost: results.reduce((n, r) => n + r.lost, 0),
  };
}

async function oneRun(opts: CollectBenchOptions, run: Run, tag: string) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-collect-'));
  const collectorKeys = generateKeys(join(dir, 'collector'));
  const collector = { box: fromB64(collectorKeys.box)!, sign: fromB64(collectorKeys.sign)! };
  const ports = await Promise.all(Array.from({ length: run.collectors }, () => freePort()));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const devices = Array.from({ length: opts.devices }, (_, i) => {
    const name = `${tag}-${i}`;
    generateKeys(join(dir, name, 'keys'));
    // each device starts with another collector: HTTP load spreads as it would behind a load balancer
    const via = opts.broker ? { broker: opts.broker, base: `bench${tag}` } : { urls: [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)] };
    return new SimDevice({ name, dir: join(dir, name), keys: readKeys(join(dir, name, 'keys')), collector, via, retry: { initialMs: 50, maxMs: 200 } });
  });
  writeFileSync(join(dir, 'trust.yaml'), devices.map((d) => d.trustLine).join('\n') + '\n');
  const children: ChildProcess[] = [];
  try {
    for (const d of devices) await d.prefill(opts.itemsPerDevice);
    children.push(...(await Promise.all(ports.map((port) => startCollector(opts, dir, port, tag)))));
    await Promise.all(devices.map((d) => d.start()));
    const started = performance.now();
    const total = opts.devices * opts.itemsPerDevice;
    const deliveredBefore = devices.reduce((n, d) => n + d.upload.delivered, 0);
    const cpuBefore = children.map((c) => cpuSeconds(c.pid!));
    const itemsBefore = await Promise.all(urls.map(itemsTaken));
    devices.forEach((d) => (d.ackMs.length = 0));
    let killed: number | null = null;
    while (!devices.every((d) => d.drained)) {
      const delivered = devices.reduce((n, d) => n + d.upload.delivered, 0);
      if (run.killOne && killed === null && delivered >= total / 2) {
        killed = delivered;
        children[0].kill('SIGKILL');
      }
      await sleep(20);
    }
    const seconds = (performance.now() - started) / 1000;
    const perCollector = await Promise.all(
      children.map(async (c, i) => {
        const items = c.exitCode === null && c.signalCode === null ? (await itemsTaken(urls[i])) - itemsBefore[i] : null;
        const cpu = c.exitCode === null && c.signalCode === null ? cpuSeconds(c.pid!) - cpuBefore[i] : null;
        return { items, cpuSeconds: cpu === null ? null : rounded(cpu, 2), cpuMsPer1000Items: cpu !== null && items ? rounded((cpu * 1e6) / items, 0) : null };
      }),
    );
    const rows = await countRows(opts.store, tag);
    const acks = devices.flatMap((d) => d.ackMs).sort((a, b) => a - b);
    return {
      collectors: run.collectors,
      sigkilledOneAt: killed === null ? null : `${killed} of ${total} items acked`,
      itemsSent: total,
      rows,
      lost: total - rows,
      seconds: rounded(seconds, 2),
      itemsPerSecond: rounded((total - deliveredBefore) / seconds, 0),
      batches: acks.length,
      ackMs: { p50: rounded(quantile(acks, 0.5), 1), p99: rounded(quantile(acks, 0.99), 1) },
      perCollector,
    };
  } finally {
    await Promise.all(devices.map((d) => d.stop()));
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startCollector(opts: CollectBenchOptions, dir: string, port: number, tag: string): Promise<ChildProcess> {
  const mqtt = opts.broker ? ['--mqtt', opts.broker, '--base', `bench${tag}`, '--share', 'bench'] : [];
  const args = ['collect', '--listen', `127.0.0.1:${port}`, '--keys', join(dir, 'collector'), '--trust', join(dir, 'trust.yaml'), '--store', opts.store];
  const child = spawn(process.execPath, [CLI, ...args, ...mqtt], { stdio: 'ignore' });
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    if (
      await itemsTaken(`http://127.0.0.1:${port}`).then(
        () => true,
        () => false,
      )
    )
      break;
    await sleep(50);
  }
  if (child.exitCode !== null) throw new OutpostError('OUTPOST_E_UNREACHABLE', `the collector exited (${child.exitCode}): is ${redactUrl(opts.store)} up?`);
  return child;
}

/** Items the collector acknowledged (stored, duplicate or conflict), from its /metrics; rejects while it is not up. */
async function itemsTaken(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^outpost_collector_items_total\{outcome="[a-z]+"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/** utime + stime of a process, seconds (Linux /proc; clock ticks are 100 Hz on every Linux board we run on). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function countRows(url: string, tag: string): Promise<number> {
  const db = new pg.Pool({ connectionString: url, max: 1 });
  try {
    const r = await db.query<{ n: string }>('SELECT count(*) AS n FROM outpost_items WHERE device LIKE $1', [`${tag}-%`]);
    return Number(r.rows[0].n);
  } finally {
    await db.end();
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;
}
