import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame, FrameSource } from '../types.js';

/**
 * Keeps up to `count` frames of a camera, at least `minGapMs` apart so they are not all the same moment,
 * written as JPEG files into `dir` for calibration. Bounded: frames past `count` are ignored.
 */
export class CalibrationRecorder {
  readonly files: string[] = [];
  private lastAt = -Infinity;
  private resolveFull!: (files: string[]) => void;
  /** Resolves with the files once `count` frames are in. */
  readonly full: Promise<string[]>;

  constructor(
    readonly dir: string,
    private readonly count: number,
    private readonly minGapMs = 250,
  ) {
    mkdirSync(dir, { recursive: true });
    this.full = new Promise((resolve) => (this.resolveFull = resolve));
  }

  get isFull(): boolean {
    return this.files.length >= this.count;
  }

  offer(frame: Frame): void {
    if (this.files.length >= this.count || frame.encoding !== 'jpeg' || frame.capturedAt - this.lastAt < this.minGapMs) return;
    this.lastAt = frame.capturedAt;
    const file = join(this.dir, `${String(this.files.length).padStart(4, '0')}.jpg`);
    writeFileSync(file, frame.data);
    this.files.push(file);
    if (this.files.length === this.count) this.resolveFull(this.files);
  }
}

/** Reads frames straight from a source until the recorder is full or `timeoutMs` passes (CLI use). */
export async function recordFrom(source: FrameSource, recorder: CalibrationRecorder, timeoutMs: number): Promise<string[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    for await (const frame of source.frames(abort.signal)) {
      recorder.offer(frame);
      if (recorder.isFull) break;
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return recorder.files;
}
