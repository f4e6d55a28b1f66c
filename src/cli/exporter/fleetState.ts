import { GOVERNOR_LEVELS, type Rung } from '../../vocabulary.js';
import { IGNORED, type FleetMessage, type IgnoredReason, type StatusMessage, type TelemetryMessage } from './fleetMessages.js';

export interface FleetLimits {
  /** devices tracked at most; a new one past it is not (its messages are counted as ignored) */
  maxDevices: number;
  /** a device heard nothing from for this long is forgotten: its series end */
  forgetAfterMs: number;
}

/** A node that promises telemetry every interval and sent none for this many intervals is down. */
const QUIET_INTERVALS = 3;
/** The nodes' default interval, for a device whose telemetry has not said its own yet. */
const DEFAULT_INTERVAL_SECONDS = 10;

interface Device {
  status: StatusMessage | null;
  statusAt: number | null;
  telemetry: TelemetryMessage | null;
  telemetryAt: number | null;
  /** `labels` of its retained facts (where boards publish `node.labels`) */
  factLabels: Readonly<Record<string, string>>;
  seenAt: number;
}

/** One device's series, as the exporter serves them (null: the node does not report it). */
export interface DeviceFigures {
  device: string;
  labels: Readonly<Record<string, string>>;
  version: string;
  provider: string;
  up: boolean;
  lastSeenAgeSeconds: number;
  fps: number | null;
  latencyP95Seconds: number | null;
  temperatureCelsius: number | null;
  governorLevel: number | null;
  precision: Rung | null;
  outboxPending: number | null;
  uploadsDropped: number | null;
  uploadsDelivered: number | null;
  offloadShare: number | null;
}

const sum = (xs: (number | undefined)[]) => xs.reduce<number>((n, x) => n + (x ?? 0), 0);

/**
 * The fleet as the exporter knows it: the last status and telemetry of each device, at most `maxDevices` of them,
 * each forgotten once quiet for `forgetAfterMs`. Only the latest message of a device is kept, so memory is bounded
 * by the cap whatever the devices send; what is not taken is counted by reason.
 */
export class FleetState {
  private readonly devices = new Map<string, Device>();
  readonly ignored = Object.fromEntries(IGNORED.map((r) => [r, 0])) as Record<IgnoredReason, number>;
  readonly taken = { status: 0, telemetry: 0, facts: 0 };
  forgotten = 0;

  constructor(private readonly limits: FleetLimits) {}

  get size(): number {
    return this.devices.size;
  }

  take(m: FleetMessage, now: number): void {
    if ('ignored' in m) return void this.ignored[m.ignored]++;
    this.taken[m.kind]++;
    // an empty retained status: whoever cleared it says the device is gone for good
    if (m.kind === 'status' && m.body === null) return this.forget(m.device);
    const d = this.devices.get(m.device) ?? this.track(m.device, now);
    if (!d) return void this.ignored['device-cap']++;
    d.seenAt = now;
    if (m.kind === 'status') [d.status, d.statusAt] = [m.body, now];
    else if (m.kind === 'facts') d.factLabels = m.body.labels ?? {};
    else [d.telemetry, d.telemetryAt] = [m.body, now];
  }

  /** Forgets every device quiet for longer than the limit; a scrape and a new device past the cap call it. */
  forgetQuiet(now: number): void {
    for (const [name, d] of this.devices) if (now - d.seenAt > this.limits.forgetAfterMs) this.forget(name);
  }

  figures(now: number): DeviceFigures[] {
    this.forgetQuiet(now);
    return [...this.devices].sort(([a], [b]) => (a < b ? -1 : 1)).map(([device, d]) => figuresOf(device, d, now));
  }

  private track(device: string, now: number): Device | null {
    if (this.devices.size >= this.limits.maxDevices) this.forgetQuiet(now);
    if (this.devices.size >= this.limits.maxDevices) return null;
    const d: Device = { status: null, statusAt: null, telemetry: null, telemetryAt: null, factLabels: {}, seenAt: now };
    this.devices.set(device, d);
    return d;
  }

  private forget(device: string): void {
    if (this.devices.delete(device)) this.forgotten++;
  }
}

function figuresOf(device: string, d: Device, now: number): DeviceFigures {
  const t = d.telemetry;
  const quietSeconds = (now - (d.telemetryAt ?? d.statusAt ?? d.seenAt)) / 1000;
  const fps = t?.cameras ? sum(Object.values(t.cameras).map((c) => c.fps)) : null;
  const peers = t?.offload?.peers ? sum(Object.values(t.offload.peers).map((p) => p.framesPerSecond)) : null;
  const level = t?.power?.governor?.level;
  const p95 = t?.latencyMs?.total?.p95;
  return {
    device,
    labels: { ...d.factLabels, ...t?.labels, ...d.status?.labels },
    version: d.status?.version ?? '',
    provider: d.status?.provider ?? '',
    // a retained online status is the broker's word the device is connected (its will would say otherwise),
    // believed until the telemetry it promises has been missing for a few intervals
    up: d.status?.state !== 'offline' && quietSeconds <= QUIET_INTERVALS * (t?.intervalSeconds ?? DEFAULT_INTERVAL_SECONDS),
    lastSeenAgeSeconds: (now - d.seenAt) / 1000,
    fps,
    latencyP95Seconds: typeof p95 === 'number' ? p95 / 1000 : null,
    temperatureCelsius: t?.power?.governor?.temperatureC ?? null,
    governorLevel: level ? GOVERNOR_LEVELS.indexOf(level) : null,
    precision: t?.precision?.rung ?? null,
    outboxPending: t?.upload?.pending ?? null,
    uploadsDropped: t?.upload?.dropped ? sum(Object.values(t.upload.dropped)) : null,
    uploadsDelivered: t?.upload?.delivered ?? null,
    offloadShare: peers === null || fps === null ? null : fps > 0 ? Math.min(1, peers / fps) : 0,
  };
}
