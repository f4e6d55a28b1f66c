import type { EventBus } from '../eventBus.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Frame, FrameSource, Result } from '../types.js';
import { LatestFrameSlot } from './latestFrameSlot.js';
import { runPipelined } from './pipelinedLoop.js';
import type { PreparedFrame, StagedPipeline } from './stagedPipeline.js';

export interface ScheduledCamera {
  source: FrameSource;
  pipeline: StagedPipeline;
  maxFps?: number;
}

interface CameraState extends ScheduledCamera {
  slot: LatestFrameSlot;
  pump: Promise<void> | null;
}

interface Job {
  camera: CameraState;
  prepared: PreparedFrame;
  takenAt: number;
}

/**
 * Moves frames from cameras to pipelines: one latest-wins slot per camera (no backlog can build up),
 * cameras served round-robin, and up to `inflight` frames in flight so decoding and post-processing
 * overlap inference.
 */
export class FrameScheduler {
  private readonly cameras: CameraState[];
  private readonly abort = new AbortController();
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private cursor = 0;
  private stopping = false;

  constructor(
    cameras: ScheduledCamera[],
    private readonly deps: { bus: EventBus; log: Logger; provider: string; /** frames in flight at once (2 overlaps decode and post-processing with inference) */ inflight: number },
  ) {
    this.cameras = cameras.map((c) => ({ ...c, slot: new LatestFrameSlot(c.maxFps), pump: null }));
  }

  start(): void {
    for (const cam of this.cameras) cam.pump = this.pump(cam);
    this.loop = this.run();
  }

  /** Stops the cameras, lets the frame in flight finish, then resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    await Promise.all(this.cameras.map((c) => c.pump));
    await this.loop;
  }

  setMaxFps(camera: string, maxFps: number | undefined): void {
    this.cameras.find((c) => c.source.name === camera)?.slot.setMaxFps(maxFps);
  }

  private async pump(cam: CameraState): Promise<void> {
    const log = this.deps.log.child({ camera: cam.source.name });
    try {
      for await (const frame of cam.source.frames(this.abort.signal)) {
        this.deps.bus.emit('frame.received', { camera: frame.camera, id: frame.id, capturedAt: frame.capturedAt });
        const lost = cam.slot.put(frame, performance.now());
        if (lost) this.deps.bus.emit('frame.dropped', { camera: frame.camera, reason: lost.reason });
        this.wake?.();
      }
    } catch (err) {
      if (!this.stopping) log.error({ err: errorMessage(err) }, 'camera stopped with an error');
    }
  }

  /** The next waiting frame, round-robin over cameras; null once stopping. */
  private async nextFrame(): Promise<{ cam: CameraState; frame: Frame } | null> {
    for (;;) {
      if (this.stopping) return null;
      for (let i = 0; i < this.cameras.length; i++) {
        const cam = this.cameras[(this.cursor + i) % this.cameras.length];
        const frame = cam.slot.take();
        if (frame) {
          this.cursor = (this.cameras.indexOf(cam) + 1) % this.cameras.length;
          return { cam, frame };
        }
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  private async prepareNext(): Promise<Job | null> {
    for (;;) {
      const next = await this.nextFrame();
      if (!next) return null;
      const takenAt = Date.now();
      try {
        return { camera: next.cam, prepared: await next.cam.pipeline.prepare(next.frame), takenAt };
      } catch (err) {
        this.failed(next.frame, err);
      }
    }
  }

  private run(): Promise<void> {
    return runPipelined(
      () => this.prepareNext(),
      (job) => job.camera.pipeline.finish(job.prepared),
      (job, outcome) => (outcome.ok ? this.publish(job, outcome.value) : this.failed(job.prepared.frame, outcome.error)),
      this.deps.inflight,
    );
  }

  private publish(job: Job, outcome: Awaited<ReturnType<StagedPipeline['finish']>>): void {
    const frame = job.prepared.frame;
    const timings = { ...outcome.timings, queueMs: Math.max(0, job.takenAt - frame.capturedAt) };
    timings.totalMs += timings.queueMs;
    const result: Result = {
      frameId: frame.id,
      camera: frame.camera,
      capturedAt: frame.capturedAt,
      finishedAt: Date.now(),
      model: job.camera.pipeline.modelLabel,
      variant: 'fp32',
      provider: this.deps.provider,
      placement: 'local',
      timings,
      output: outcome.output,
      ...(frame.truth ? { truth: frame.truth } : {}),
    };
    this.deps.bus.emit('result', result);
  }

  private failed(frame: Frame, err: unknown): void {
    this.deps.log.warn({ camera: frame.camera, frame: frame.id, err: errorMessage(err) }, 'frame failed');
    this.deps.bus.emit('frame.failed', { camera: frame.camera, frameId: frame.id, error: errorMessage(err) });
  }
}
