import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventBus } from '../eventBus.js';
import type { SourceHealth, StageName } from '../types.js';

const STAGES: readonly StageName[] = ['queue', 'decode', 'preprocess', 'infer', 'post'];

/** Prometheus metrics on a registry of our own (no global default registry). */
export class OutpostMetrics {
  readonly registry = new Registry();
  readonly eventLoop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly frames: Counter<'camera'>;
  private readonly dropped: Counter<'camera' | 'reason'>;
  private readonly failed: Counter<'camera'>;
  private readonly skipped: Counter<'camera'>;
  private readonly stageSeconds: Histogram<'stage'>;
  private readonly providerInfo: Gauge<'provider' | 'variant'>;
  private readonly transitions: Counter<'from' | 'to'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'outpost_' });
    // prom-client names these gauges *_total, which promtool rejects; the handle counts are not worth a lint failure.
    for (const n of ['active_handles_total', 'active_requests_total', 'active_resources_total']) this.registry.removeSingleMetric(`outpost_nodejs_${n}`);
    this.frames = new Counter({ name: 'outpost_frames_processed_total', help: 'Frames that produced a result', labelNames: ['camera'], registers });
    this.dropped = new Counter({
      name: 'outpost_frames_dropped_total',
      help: 'Frames dropped before inference (superseded by a newer frame or over the fps cap)',
      labelNames: ['camera', 'reason'],
      registers,
    });
    this.failed = new Counter({ name: 'outpost_frames_failed_total', help: 'Frames whose processing failed', labelNames: ['camera'], registers });
    this.skipped = new Counter({
      name: 'outpost_frames_skipped_total',
      help: 'Frames the motion gate kept from the models (no motion)',
      labelNames: ['camera'],
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'outpost_stage_seconds',
      help: 'Time per pipeline stage for one frame',
      labelNames: ['stage'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.transitions = new Counter({ name: 'outpost_governor_transitions_total', help: 'Governor level changes', labelNames: ['from', 'to'], registers });
    this.providerInfo = new Gauge({
      name: 'outpost_execution_provider_info',
      help: 'Execution provider and model variant in use (value 1)',
      labelNames: ['provider', 'variant'],
      registers,
    });
    const loop = this.eventLoop;
    new Gauge({
      name: 'outpost_event_loop_delay_p95_seconds',
      help: 'p95 event-loop delay since the previous scrape',
      registers,
      collect() {
        this.set(Number.isNaN(loop.percentile(95)) ? 0 : loop.percentile(95) / 1e9);
        loop.reset();
      },
    });
  }

  start(): void {
    this.eventLoop.enable();
  }

  stop(): void {
    this.eventLoop.disable();
  }

  subscribe(bus: EventBus): void {
    bus.on('result', 'metrics', (r) => {
      this.frames.inc({ camera: r.camera });
      for (const s of STAGES) this.stageSeconds.observe({ stage: s }, r.timings[`${s}Ms`] / 1000);
    });
    bus.on('frame.dropped', 'metrics', (d) => this.dropped.inc({ camera: d.camera, reason: d.reason }));
    bus.on('frame.failed', 'metrics', (f) => this.failed.inc({ camera: f.camera }));
    bus.on('frame.skipped', 'metrics', (f) => this.skipped.inc({ camera: f.camera }));
    bus.on('governor.transition', 'metrics', (t) => this.transitions.inc({ from: t.from, to: t.to }));
  }

  /** Camera connection counters, read from the sources at scrape time. */
  watchSources(health: () => Record<string, SourceHealth>): void {
    const registers = [this.registry];
    const fields = ['reconnects', 'stalls', 'corrupt', 'truncated'] as const;
    for (const field of fields) {
      const seen = new Map<string, number>();
      new Counter({
        name: `outpost_camera_${field}_total`,
        help: `Camera ${field} (sources that connect to a device or stream)`,
        labelNames: ['camera'],
        registers,
        collect() {
          for (const [camera, h] of Object.entries(health())) {
            const delta = h[field] - (seen.get(camera) ?? 0);
            if (delta > 0) this.inc({ camera }, delta);
            seen.set(camera, h[field]);
          }
        },
      });
    }
    new Gauge({
      name: 'outpost_camera_streaming',
      help: '1 while the camera delivers frames, 0 while it reconnects',
      labelNames: ['camera'],
      registers,
      collect() {
        for (const [camera, h] of Object.entries(health())) this.set({ camera }, h.state === 'streaming' ? 1 : 0);
      },
    });
  }

  /** Governor level (0 nominal … 3 critical), temperature and transitions. */
  watchGovernor(state: () => { level: string; temperatureC: number | null; powerState: string } | null): void {
    const registers = [this.registry];
    const levels = ['nominal', 'warm', 'hot', 'critical'];
    new Gauge({
      name: 'outpost_governor_level',
      help: 'Governor level: 0 nominal, 1 warm, 2 hot, 3 critical',
      registers,
      collect() {
        const s = state();
        if (s) this.set(levels.indexOf(s.level));
      },
    });
    new Gauge({
      name: 'outpost_board_temperature_celsius',
      help: 'The temperature the governor acts on',
      registers,
      collect() {
        const t = state()?.temperatureC;
        if (t !== null && t !== undefined) this.set(t);
      },
    });
    new Gauge({
      name: 'outpost_power_state',
      help: 'Power state (value 1 on the current one)',
      labelNames: ['state'],
      registers,
      collect() {
        const s = state();
        if (!s) return;
        for (const p of ['mains', 'battery', 'battery-low', 'undervoltage']) this.set({ state: p }, p === s.powerState ? 1 : 0);
      },
    });
  }

  setProvider(provider: string, variant: string): void {
    this.providerInfo.reset();
    this.providerInfo.set({ provider, variant }, 1);
  }
}
