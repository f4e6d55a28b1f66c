import { writeError } from '../log.js';
import { openBroker, type BrokerEvent } from '../mqtt/index.js';
import { brokerTarget, describeBrokerEvent, reconnecting, type BrokerFlags } from './brokerFlags.js';

export interface MonitorOptions extends BrokerFlags {
  broker?: string;
  json?: boolean;
  /** stop after this many seconds (scripts and tests) */
  for?: number;
}

/** One device as the monitor shows it. */
export interface DeviceRow {
  device: string;
  state: string;
  /** seconds since its last telemetry (null: none seen yet) */
  ageSeconds: number | null;
  fps: number | null;
  p95Ms: number | null;
  level: string | null;
  temperatureC: number | null;
  precision: string | null;
  stale: boolean;
  /** when the device published what this row shows (its clock) */
  at: string | null;
}

interface Telemetry {
  at?: string;
  intervalSeconds?: number;
  cameras?: Record<string, { fps?: number }>;
  latencyMs?: { total?: { p95?: number | null } };
  power?: { governor?: { level?: string; temperatureC?: number | null } } | null;
  precision?: { rung?: string };
}

/**
 * The fleet as the broker sees it: every device's retained status and its telemetry, in one table. Pure state,
 * so the command prints it as a table or as JSON lines and a test can read it.
 */
export class FleetView {
  private readonly devices = new Map<string, { state: string; statusAt: number; telemetry: Telemetry | null; seenAt: number | null }>();
  private readonly prefix: string;

  constructor(base: string) {
    this.prefix = `${base}/`;
  }

  /** Takes a message; returns the device it changed, if it was one of ours. */
  take(topic: string, payload: Buffer, now: number): string | null {
    if (!topic.startsWith(this.prefix)) return null;
    const [device, kind, extra] = topic.slice(this.prefix.length).split('/');
    if (extra !== undefined || (kind !== 'status' && kind !== 'telemetry')) return null;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return null;
    }
    const d = this.devices.get(device) ?? { state: 'unknown', statusAt: now, telemetry: null, seenAt: null };
    if (kind === 'status') [d.state, d.statusAt] = [String(body.state ?? 'unknown'), now];
    else [d.telemetry, d.seenAt] = [body as Telemetry, now];
    this.devices.set(device, d);
    return device;
  }

  row(device: string, now: number): DeviceRow {
    const d = this.devices.get(device)!;
    const t = d.telemetry;
    const age = d.seenAt === null ? null : (now - d.seenAt) / 1000;
    const fps = t?.cameras ? Object.values(t.cameras).reduce((n, c) => n + (c.fps ?? 0), 0) : null;
    // a retained online status is the broker's word that the device is connected (its will would say otherwise):
    // fresh until three intervals pass without the telemetry it promises
    const quiet = age ?? (now - d.statusAt) / 1000;
    const stale = d.state !== 'online' || quiet > 3 * (t?.intervalSeconds ?? 10);
    return {
      device,
      state: d.state,
      ageSeconds: age === null ? null : Math.round(age * 10) / 10,
      fps: fps === null ? null : Math.round(fps * 100) / 100,
      p95Ms: t?.latencyMs?.total?.p95 ?? null,
      level: t?.power?.governor?.level ?? (t ? 'nominal' : null),
      temperatureC: t?.power?.governor?.temperatureC ?? null,
      precision: t?.precision?.rung ?? null,
      stale,
      at: t?.at ?? null,
    };
  }

  rows(now: number): DeviceRow[] {
    return [...this.devices.keys()].sort().map((d) => this.row(d, now));
  }
}

const cell = (v: unknown, w: number) =>
  String(v ?? '–')
    .slice(0, w)
    .padEnd(w);

function table(rows: DeviceRow[], link: string | null): string {
  const head = `${cell('device', 20)} ${cell('state', 8)} ${cell('age s', 6)} ${cell('fps', 6)} ${cell('p95 ms', 7)} ${cell('level', 9)} ${cell('°C', 6)} ${cell('precision', 9)}`;
  const lines = rows.map(
    (r) =>
      `${cell(r.device, 20)} ${cell(r.state, 8)} ${cell(r.ageSeconds, 6)} ${cell(r.fps, 6)} ${cell(r.p95Ms, 7)} ${cell(r.level, 9)} ${cell(r.temperatureC, 6)} ${cell(r.precision, 9)}${r.stale ? '  STALE' : ''}`,
  );
  return [...(link ? [link] : []), head, ...lines].join('\n');
}

/**
 * `outpost monitor`: a live table of every device under the base topic, redrawn in place on a TTY (at most 4
 * times a second, stale rows marked); with --json, one object per update on stdout. A lost broker is retried
 * with backoff, said on stderr and atop the table; retained statuses fill the table again when it returns.
 */
export async function monitorCommand(opts: MonitorOptions): Promise<void> {
  const target = brokerTarget(opts.broker, opts);
  let link: string | null = null;
  let dirty = false;
  const onEvent = (e: BrokerEvent) => {
    writeError(`outpost: ${describeBrokerEvent(target.url, e)}`);
    link = e.kind === 'lost' ? `broker: ${describeBrokerEvent(target.url, e)}` : null;
    dirty = true;
  };
  const client = await openBroker(target.url, { ...target.options, reconnect: reconnecting(onEvent) });
  const view = new FleetView(target.base);
  const tty = process.stdout.isTTY === true && !opts.json;
  client.on('message', (topic, payload) => {
    const device = view.take(topic, payload, Date.now());
    if (!device) return;
    if (opts.json) process.stdout.write(JSON.stringify(view.row(device, Date.now())) + '\n');
    else dirty = true;
  });
  await client.subscribeAsync([`${target.base}/+/status`, `${target.base}/+/telemetry`], { qos: 0 });
  const redraw = setInterval(() => {
    if (opts.json || (!dirty && !tty)) return;
    dirty = false;
    const text = table(view.rows(Date.now()), link);
    process.stdout.write(tty ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
  }, 250);
  await new Promise<void>((resolve) => {
    if (opts.for) setTimeout(resolve, opts.for * 1000);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  clearInterval(redraw);
  await client.endAsync();
}
