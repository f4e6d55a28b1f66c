import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import { STAGES } from '../vocabulary.js';

/**
 * The process and frame series of /metrics, fed by the event bus. Other components register their own series
 * (governor, cameras, provider, MQTT, outbox) on the same registry next to the data they describe.
 */
export class FrameMetrics implements Component {
  readonly name = 'metrics';
  private readonly eventLoop = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly ctx: ComponentContext) {}

  async start(): Promise<void> {
    const registers = [this.ctx.registry];
    collectDefaultMetrics({ register: this.ctx.registry, prefix: 'outpost_' });
    // prom-client names these gauges *_total, which promtool rejects; the handle counts are not worth a lint failure.
    for (const n of ['active_handles_total', 'active_requests_total', 'active_resources_total']) this.ctx.registry.removeSingleMetric(`outpost_nodejs_${n}`);
    const frames = new Counter({ name: 'outpost_frames_processed_total', help: 'Frames that produced a result', labelNames: ['camera'], registers });
    const dropped = new Counter({
      name: 'outpost_frames_dropped_total',
      help: 'Frames dropped before inference (superseded by a newer frame or over the fps cap)',
      labelNames: ['camera', 'reason'],
      registers,
    });
    const failed = new Counter({ name: 'outpost_frames_failed_total', help: 'Frames whose processing failed', labelNames: ['camera'], registers });
    const skipped = new Counter({
      name: 'outpost_frames_skipped_total',
      help: 'Frames the motion gate kept from the models (no motion)',
      labelNames: ['camera'],
      registers,
    });
    const stageSeconds = new Histogram({
      name: 'outpost_stage_seconds',
      help: 'Time per pipeline stage for one frame',
      labelNames: ['stage'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
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
    const bus = this.ctx.bus;
    bus.on('result', this.name, ({ result: r }) => {
      frames.inc({ camera: r.camera });
      for (const s of STAGES) stageSeconds.observe({ stage: s }, r.timings[`${s}Ms`] / 1000);
    });
    bus.on('frame.dropped', this.name, (d) => dropped.inc({ camera: d.camera, reason: d.reason }));
    bus.on('frame.failed', this.name, (f) => failed.inc({ camera: f.camera }));
    bus.on('frame.skipped', this.name, (f) => skipped.inc({ camera: f.camera }));
    this.eventLoop.enable();
  }

  async stop(): Promise<void> {
    this.eventLoop.disable();
  }
}
