import { Counter, Gauge, Registry } from 'prom-client';
import { OutpostError } from '../../errors.js';
import type { ConnectionRefusal } from '../../net/index.js';
import { IGNORED } from './fleetMessages.js';
import type { DeviceFigures, FleetState } from './fleetState.js';

type Figure = Exclude<keyof DeviceFigures, 'device' | 'labels' | 'version' | 'provider' | 'precision' | 'up'>;

/** The per-device series, one value each (absent where the node does not report it). */
const DEVICE_SERIES: { name: string; help: string; counter?: true; figure: Figure }[] = [
  { name: 'outpost_device_last_seen_age_seconds', help: 'Seconds since the device last published its status or telemetry', figure: 'lastSeenAgeSeconds' },
  { name: 'outpost_device_fps', help: 'Frames per second the device processes, all cameras together', figure: 'fps' },
  { name: 'outpost_device_latency_p95_seconds', help: "95th percentile of a frame's total processing time on the device", figure: 'latencyP95Seconds' },
  { name: 'outpost_device_temperature_celsius', help: 'The temperature the governor acts on', figure: 'temperatureCelsius' },
  { name: 'outpost_device_governor_level', help: 'Governor level: 0 nominal, 1 warm, 2 hot, 3 critical', figure: 'governorLevel' },
  { name: 'outpost_device_outbox_pending_items', help: 'Items in the upload outbox not yet acknowledged by a collector', figure: 'outboxPending' },
  {
    name: 'outpost_device_uploads_dropped_total',
    help: 'Items the outbox dropped (full, expired, refused new …) since the device started',
    counter: true,
    figure: 'uploadsDropped',
  },
  {
    name: 'outpost_device_uploads_delivered_total',
    help: 'Items a collector acknowledged since the device started',
    counter: true,
    figure: 'uploadsDelivered',
  },
  { name: 'outpost_device_offload_share', help: 'Share of the frames the device sends to peers (0 to 1)', figure: 'offloadShare' },
];

/** Labels the exporter sets itself, and those Prometheus sets on every target: a node label may not take them. */
const RESERVED_LABELS = new Set(['device', 'version', 'provider', 'precision', 'reason', 'kind', 'job', 'instance', 'le', 'quantile']);

/** The `--label` names, checked: each becomes a label of every device series. */
export function checkNodeLabels(names: readonly string[]): string[] {
  for (const n of names) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(n) || n.startsWith('__'))
      throw new OutpostError(
        'OUTPOST_E_USAGE',
        `--label ${JSON.stringify(n)} is not a Prometheus label name (letters, digits and "_", not starting with a digit or "__")`,
      );
    if (RESERVED_LABELS.has(n))
      throw new OutpostError('OUTPOST_E_USAGE', `--label ${n}: the exporter or Prometheus sets that label itself; name the node label otherwise`);
  }
  return [...new Set(names)];
}

type SeriesMetric = Gauge<string> | Counter<string>;

/**
 * The exporter's registry: per-device series rebuilt from the fleet state at each scrape (a forgotten device's
 * series end with it, so the number of series is bounded by the device cap), and the exporter's own counters.
 */
export class FleetMetrics {
  readonly registry = new Registry();
  readonly connectionsRefused: Counter<'reason'>;
  readonly brokerConnected: Gauge;
  private readonly series: { metric: SeriesMetric; counter: boolean; figure: Figure }[];
  private readonly up: Gauge<string>;
  private readonly info: Gauge<string>;
  private readonly precision: Gauge<string>;

  constructor(
    private readonly fleet: FleetState,
    private readonly nodeLabels: readonly string[],
  ) {
    const registers = [this.registry];
    const labelNames = ['device', ...nodeLabels];
    this.up = new Gauge({ name: 'outpost_device_up', help: '1 while the device is online and its telemetry is fresh, else 0', labelNames, registers });
    this.info = new Gauge({
      name: 'outpost_device_info',
      help: 'Always 1: the version and provider the device reported',
      labelNames: [...labelNames, 'version', 'provider'],
      registers,
    });
    this.precision = new Gauge({
      name: 'outpost_device_precision',
      help: 'The precision rung the device runs (1 for its rung)',
      labelNames: [...labelNames, 'precision'],
      registers,
    });
    this.series = DEVICE_SERIES.map((s) => ({
      metric: s.counter ? new Counter({ name: s.name, help: s.help, labelNames, registers }) : new Gauge({ name: s.name, help: s.help, labelNames, registers }),
      counter: s.counter === true,
      figure: s.figure,
    }));
    this.ownMetrics(registers);
    this.connectionsRefused = new Counter({
      name: 'outpost_exporter_connections_refused_total',
      help: 'Scrape connections closed unserved, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.brokerConnected = new Gauge({ name: 'outpost_exporter_broker_connected', help: '1 while the exporter is connected to the broker', registers });
  }

  /** The exposition text for a scrape, from the fleet as it is now. */
  async scrape(now: number): Promise<string> {
    this.refresh(this.fleet.figures(now));
    return this.registry.metrics();
  }

  refused(reason: ConnectionRefusal): void {
    this.connectionsRefused.inc({ reason });
  }

  private refresh(devices: DeviceFigures[]): void {
    for (const m of [this.up, this.info, this.precision, ...this.series.map((s) => s.metric)]) m.reset();
    for (const d of devices) {
      const labels = { device: d.device, ...Object.fromEntries(this.nodeLabels.map((n) => [n, d.labels[n] ?? ''])) };
      this.up.set(labels, d.up ? 1 : 0);
      this.info.set({ ...labels, version: d.version, provider: d.provider }, 1);
      if (d.precision) this.precision.set({ ...labels, precision: d.precision }, 1);
      for (const s of this.series) {
        const v = d[s.figure];
        if (v === null) continue;
        if (s.counter) (s.metric as Counter<string>).inc(labels, v);
        else (s.metric as Gauge<string>).set(labels, v);
      }
    }
  }

  private ownMetrics(registers: Registry[]): void {
    const fleet = this.fleet;
    new Gauge({
      name: 'outpost_exporter_devices',
      help: 'Devices the exporter tracks now',
      registers,
      collect() {
        this.set(fleet.size);
      },
    });
    new Counter({
      name: 'outpost_exporter_messages_total',
      help: 'Status and telemetry messages taken, by kind',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(fleet.taken)) this.inc({ kind }, n);
      },
    });
    new Counter({
      name: 'outpost_exporter_messages_ignored_total',
      help: 'Messages not taken, by reason (too large, bad device id, not JSON, invalid, past the device cap)',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const reason of IGNORED) this.inc({ reason }, fleet.ignored[reason]);
      },
    });
    // prom-client's default set is not taken: its nodejs_*_total gauges fail `promtool check metrics`
    new Counter({
      name: 'process_cpu_seconds_total',
      help: 'User and system CPU time the exporter spent, in seconds',
      registers,
      collect() {
        const { user, system } = process.cpuUsage();
        this.reset();
        this.inc((user + system) / 1e6);
      },
    });
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'Resident memory of the exporter, in bytes',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Counter({
      name: 'outpost_exporter_devices_forgotten_total',
      help: 'Devices forgotten: quiet for longer than --forget-after, or their retained status cleared',
      registers,
      collect() {
        this.reset();
        this.inc(fleet.forgotten);
      },
    });
  }
}
