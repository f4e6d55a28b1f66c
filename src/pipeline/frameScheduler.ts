import type { EventBus } from '../core/index.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Frame, FrameSource, Result, SourceHealth } from '../types.js';
import { LatestFrameSlot } from './latestFrameSlot.js';
import { runPipelined } from './pipelinedLoop.js';
import type { PreparedFrame, RemoteRange, StagedPipeline } from './stagedPipeline.js';

/** Decides whether a frame is worth a model run (the motion gate). */
export interface FrameGate {
  check(jpeg: Buffer): Promise<{ pass: boolean }>;
}

export interface ScheduledCamera {
  source: FrameSource;
  pipeline: StagedPipeline;
  maxFps?: number;
  /** Share of the engine when cameras compete (smooth weighted round-robin). */
  weight?: number;
  gate?: FrameGate;
}

interface CameraState extends ScheduledCamera {
  slot: LatestFrameSlot;
  /** the newest frame the camera delivered, gated or not (snapshots): one per camera */
  newest: Frame | null;
  pump: Promise<void> | null;
  /** Stops this camera alone (pause) or with the others (stop). */
  abort: AbortController;
  paused: boolean;
  /** its frame loop ended with an error */
  dead: boolean;
  weight: number;
  current: number;
}

interface Job {
  camera: CameraState;
  frame: Frame;
  /** decoded and preprocessed here, or … */
  prepared?: PreparedFrame;
  /** … some stages placed on a peer */
  remote?: RemoteRange;
  takenAt: number;
}

/** Decides per frame whether some of its stages run on a peer (offload/ implements it). */
export interface FramePlacer {
  /** `localBusy`: frames in flight here now (what a frame placed here would wait behind). */
  place(camera: string, pipeline: string, frame: Frame, localBusy: number): RemoteRange | null;
  /** frames that may be on peers at once, on top of the local ones in flight */
  capacity(): number;
}

export interface SchedulerDeps {
  bus: EventBus;
  log: Logger;
  provider: string;
  /** Frames in flight at once: 2 overlaps decoding and post-processing with inference. */
  inflight: number;
  /** Places frames on peers (offload); absent: everything runs here. */
  placer?: FramePlacer;
}

/**
 * Moves frames from cameras to pipelines: a motion gate per camera, one latest-wins slot per camera (no
 * backlog can build up), cameras served by weighted round-robin, and up to `inflight` frames in flight so
 * decoding and post-processing overlap inference.
 */
export class FrameScheduler {
  private readonly cameras: CameraState[];
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  /** local frames taken and not yet delivered */
  private localBusy = 0;

  constructor(
    cameras: ScheduledCamera[],
    private readonly deps: SchedulerDeps,
  ) {
    this.cameras = cameras.map((c) => ({
      ...c,
      slot: new LatestFrameSlot(c.maxFps),
      newest: null,
      pump: null,
      weight: c.weight ?? 1,
      current: 0,
      abort: new AbortController(),
      paused: false,
      dead: false,
    }));
  }

  start(): void {
    for (const cam of this.cameras) cam.pump = this.pump(cam);
    this.loop = this.run();
  }

  /** Stops the cameras, lets the frame in flight finish, then resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const cam of this.cameras) cam.abort.abort();
    this.wake?.();
    await Promise.all(this.cameras.map((c) => c.pump));
    await this.loop;
  }

  /** Connection state and counters of each camera that has them. */
  sourceHealth(): Record<string, SourceHealth> {
    const out: Record<string, SourceHealth> = {};
    for (const c of this.cameras) {
      const h = c.source.health?.();
      if (h) out[c.source.name] = h;
    }
    return out;
  }

  /** Stops a camera's source (its ffmpeg too) until resume(); its waiting frame is dropped. */
  async pause(camera: string): Promise<void> {
    const cam = this.camera(camera);
    if (cam.paused) return;
    cam.paused = true;
    cam.abort.abort();
    await cam.pump;
    cam.slot.take();
  }

  resume(camera: string): void {
    const cam = this.camera(camera);
    if (!cam.paused || this.stopping) return;
    cam.paused = false;
    cam.dead = false;
    cam.abort = new AbortController();
    cam.pump = this.pump(cam);
  }

  /** The newest frame a camera delivered; null before its first (or for no such camera). */
  newest(camera: string): Frame | null {
    return this.cameras.find((c) => c.source.name === camera)?.newest ?? null;
  }

  dead(): string[] {
    return this.cameras.filter((c) => c.dead && !c.paused).map((c) => c.source.name);
  }

  paused(): string[] {
    return this.cameras.filter((c) => c.paused).map((c) => c.source.name);
  }

  private camera(name: string): CameraState {
    const cam = this.cameras.find((c) => c.source.name === name);
    if (!cam) throw new Error(`no camera ${name}`);
    return cam;
  }

  setMaxFps(camera: string, maxFps: number | undefined): void {
    this.cameras.find((c) => c.source.name === camera)?.slot.setMaxFps(maxFps);
  }

  private async pump(cam: CameraState): Promise<void> {
    const log = this.deps.log.child({ camera: cam.source.name });
    try {
      for await (const frame of cam.source.frames(cam.abort.signal)) {
        cam.newest = frame;
        this.deps.bus.emit('frame.received', frame);
        if (cam.gate && !(await cam.gate.check(frame.data).catch(() => ({ pass: true }))).pass) {
          this.deps.bus.emit('frame.skipped', { camera: frame.camera, reason: 'no-motion' });
          continue;
        }
        const lost = cam.slot.put(frame, performance.now());
        if (lost) this.deps.bus.emit('frame.dropped', { camera: frame.camera, reason: lost.reason });
        this.wake?.();
      }
    } catch (err) {
      if (this.stopping || cam.paused) return;
      cam.dead = true;
      log.error({ err: errorMessage(err) }, 'camera stopped with an error');
    }
  }

  /** The next waiting frame by smooth weighted round-robin over the cameras that have one; null once stopping. */
  private async nextFrame(): Promise<{ cam: CameraState; frame: Frame } | null> {
    for (;;) {
      if (this.stopping) return null;
      let best: CameraState | undefined;
      let total = 0;
      for (const cam of this.cameras) {
        if (!cam.slot.waiting) continue;
        cam.current += cam.weight;
        total += cam.weight;
        if (!best || cam.current > best.current) best = cam;
      }
      if (best) {
        best.current -= total;
        return { cam: best, frame: best.slot.take()! };
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
        const remote = this.deps.placer?.place(next.frame.camera, next.cam.pipeline.name, next.frame, this.localBusy) ?? null;
        if (remote) return { camera: next.cam, frame: next.frame, remote, takenAt };
        const prepared = await next.cam.pipeline.prepare(next.frame);
        this.localBusy++;
        return { camera: next.cam, frame: next.frame, prepared, takenAt };
      } catch (err) {
        this.failed(next.frame, err);
      }
    }
  }

  private run(): Promise<void> {
    return runPipelined(
      () => this.prepareNext(),
      (job) => (job.remote ? job.camera.pipeline.placed(job.frame, job.remote) : job.camera.pipeline.finish(job.prepared!)),
      (job, outcome) => {
        if (!job.remote) this.localBusy--;
        if (outcome.ok) this.publish(job, outcome.value);
        else this.failed(job.frame, outcome.error);
      },
      () => this.deps.inflight + (this.deps.placer?.capacity() ?? 0),
      (job) => !job.remote,
    );
  }

  private publish(job: Job, outcome: Awaited<ReturnType<StagedPipeline['finish']>>): void {
    const frame = job.frame;
    const timings = { ...outcome.timings, queueMs: Math.max(0, job.takenAt - frame.capturedAt) };
    timings.totalMs += timings.queueMs;
    const result: Result = {
      frameId: frame.id,
      camera: frame.camera,
      capturedAt: frame.capturedAt,
      finishedAt: Date.now(),
      model: job.camera.pipeline.modelLabel,
      variant: outcome.variant,
      provider: outcome.provider || this.deps.provider,
      placement: outcome.placement,
      timings,
      output: outcome.output,
      ...(frame.truth ? { truth: frame.truth } : {}),
    };
    this.deps.bus.emit('result', { result, frame });
  }

  private failed(frame: Frame, err: unknown): void {
    this.deps.log.warn({ camera: frame.camera, frame: frame.id, err: errorMessage(err) }, 'frame failed');
    this.deps.bus.emit('frame.failed', { camera: frame.camera, frameId: frame.id, error: errorMessage(err) });
  }
}
