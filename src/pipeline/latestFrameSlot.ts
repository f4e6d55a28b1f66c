import type { Frame } from '../types.js';

/** Holds at most one frame per camera: a newer frame replaces (and returns) the waiting one. */
export class LatestFrameSlot {
  private frame: Frame | undefined;
  private lastAcceptedAt = -Infinity;

  constructor(private maxFps: number | undefined) {}

  setMaxFps(maxFps: number | undefined): void {
    this.maxFps = maxFps;
  }

  /** Returns the frame that lost its place: the replaced one, or the new one when the fps cap refuses it. */
  put(frame: Frame, now: number): { dropped: Frame; reason: 'superseded' | 'fps-cap' } | null {
    if (this.maxFps !== undefined && now - this.lastAcceptedAt < 1000 / this.maxFps) return { dropped: frame, reason: 'fps-cap' };
    this.lastAcceptedAt = now;
    const old = this.frame;
    this.frame = frame;
    return old ? { dropped: old, reason: 'superseded' } : null;
  }

  take(): Frame | undefined {
    const f = this.frame;
    this.frame = undefined;
    return f;
  }

  get waiting(): boolean {
    return this.frame !== undefined;
  }
}
