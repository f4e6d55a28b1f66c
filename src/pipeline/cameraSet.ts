import { Counter, Gauge } from 'prom-client';
import { createSource, MotionGate } from '../camera/index.js';
import type { Component, ComponentContext } from '../core/index.js';
import type { LevelPolicy, OutpostConfig } from '../config/index.js';
import type { Frame, SourceHealth } from '../types.js';
import { imageCacheBytes } from '../vision/index.js';
import { FrameScheduler, type FramePlacer } from './frameScheduler.js';
import type { PipelineSet } from './pipelineSet.js';

/**
 * The enabled cameras and the scheduler that feeds their frames to the pipelines. Each camera's fps cap is the
 * lower of its own `maxFps` (live on reload) and the governor level's.
 */
export class CameraSet implements Component {
  readonly name = 'cameras';
  private scheduler: FrameScheduler | null = null;
  private config: Readonly<OutpostConfig>;
  private policy: LevelPolicy | null = null;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly set: PipelineSet,
    private readonly provider: () => string,
    private readonly placer?: FramePlacer,
  ) {
    this.config = ctx.config;
  }

  async start(): Promise<void> {
    const cameras = this.config.cameras.filter((c) => c.enabled);
    this.scheduler = new FrameScheduler(
      cameras.map((c) => ({
        source: createSource(c, { log: this.ctx.log }),
        pipeline: this.set.get(c.pipeline),
        maxFps: c.maxFps,
        weight: c.weight,
        gate: c.motion.enabled ? new MotionGate(c.motion) : undefined,
      })),
      { bus: this.ctx.bus, log: this.ctx.log, provider: this.provider(), inflight: this.config.runtime.inflightFrames, placer: this.placer },
    );
    this.ctx.bus.on('governor.policy', this.name, ({ policy }) => {
      this.policy = policy;
      this.applyCaps();
    });
    this.registerMetrics();
    this.scheduler.start();
    this.ctx.log.info({ cameras: cameras.map((c) => c.name) }, 'cameras started');
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    this.scheduler = null;
  }

  reload(config: Readonly<OutpostConfig>): void {
    this.config = config;
    this.applyCaps();
  }

  names(): string[] {
    return this.config.cameras.filter((c) => c.enabled).map((c) => c.name);
  }

  /** The newest frame of a camera (snapshots); null before its first, or for a camera that is not running. */
  latestFrame(camera: string): Frame | null {
    return this.scheduler?.newest(camera) ?? null;
  }

  async pause(camera: string): Promise<void> {
    await this.scheduler?.pause(camera);
    this.ctx.log.info({ camera }, 'camera paused');
  }

  resume(camera: string): void {
    this.scheduler?.resume(camera);
    this.ctx.log.info({ camera }, 'camera resumed');
  }

  /** Cameras whose frame loop ended with an error (not paused, not stopping): the service watchdog stops on them. */
  deadCameras(): string[] {
    return this.scheduler?.dead() ?? [];
  }

  sourceHealth(): Record<string, SourceHealth> {
    return this.scheduler?.sourceHealth() ?? {};
  }

  status(): Record<string, unknown> {
    const paused = this.scheduler?.paused() ?? [];
    const health = this.sourceHealth();
    return {
      cameras: Object.fromEntries(this.names().map((name) => [name, { paused: paused.includes(name), ...(health[name] ? { source: health[name] } : {}) }])),
      imageCacheBytes: imageCacheBytes(),
    };
  }

  /** Connection counters of the cameras that connect to something, read from the sources at scrape time. */
  private registerMetrics(): void {
    const registers = [this.ctx.registry];
    const health = () => this.sourceHealth();
    for (const field of ['reconnects', 'stalls', 'corrupt', 'truncated'] as const) {
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
    const skipped = new Map<string, number>();
    new Counter({
      name: 'outpost_camera_files_skipped_total',
      help: 'Files a folder camera skipped (empty, not an image, unreadable after a retry)',
      labelNames: ['camera', 'reason'],
      registers,
      collect() {
        for (const [camera, h] of Object.entries(health())) {
          for (const [reason, n] of Object.entries(h.skipped ?? {})) {
            const delta = n - (skipped.get(`${camera}/${reason}`) ?? 0);
            if (delta > 0) this.inc({ camera, reason }, delta);
            skipped.set(`${camera}/${reason}`, n);
          }
        }
      },
    });
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

  private applyCaps(): void {
    for (const cam of this.config.cameras) {
      const caps = [cam.maxFps, this.policy?.maxFps].filter((v): v is number => v !== undefined);
      this.scheduler?.setMaxFps(cam.name, caps.length ? Math.min(...caps) : undefined);
    }
  }
}
