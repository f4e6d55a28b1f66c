import sharp from 'sharp';
import { Backoff } from '../backoff.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Frame, FrameSource, SourceHealth } from '../types.js';
import { sleep } from './abortableSleep.js';

/** One connection's worth of JPEG frames; ends when the stream ends, throws when it breaks. */
export type Connect = (signal: AbortSignal) => AsyncIterable<Buffer>;

export interface ReconnectOptions {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Restart a connection that delivers nothing for this long. */
  stallMs: number;
  /** A finite source (a file played once) ends instead of reconnecting. */
  finite: boolean;
  /** the camera's child logger (it names the camera on every line) */
  log: Logger;
  random?: () => number;
}

class StallError extends Error {}

/**
 * Turns a connect function into a FrameSource that never gives up: exponential backoff with jitter between
 * attempts, a watchdog that restarts a stalled connection, and frames that fail to parse counted and skipped.
 */
export class ReconnectingSource implements FrameSource {
  private readonly stats: SourceHealth = { state: 'idle', connects: 0, reconnects: 0, stalls: 0, corrupt: 0, truncated: 0, lastError: null };

  constructor(
    readonly name: string,
    private readonly connect: Connect,
    private readonly opts: ReconnectOptions,
    /** Frames cut short inside the transport (the parser counts them). */
    private readonly truncatedCount: () => number = () => 0,
  ) {}

  health(): SourceHealth {
    return { ...this.stats, truncated: this.truncatedCount() };
  }

  async *frames(signal: AbortSignal): AsyncIterable<Frame> {
    const backoff = new Backoff({ initialMs: this.opts.initialBackoffMs, maxMs: this.opts.maxBackoffMs }, this.opts.random);
    let seq = 0;
    while (!signal.aborted) {
      const attempt = new AbortController();
      const onAbort = () => attempt.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      let watchdog: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => attempt.abort(new StallError(`no frame for ${this.opts.stallMs} ms`)), this.opts.stallMs);
      };
      this.stats.state = 'connecting';
      this.stats.connects++;
      let ended = false;
      let failure: unknown = null;
      try {
        arm();
        for await (const jpeg of this.connect(attempt.signal)) {
          arm();
          this.stats.state = 'streaming';
          backoff.reset();
          const frame = await this.toFrame(jpeg, seq);
          if (!frame) continue;
          seq++;
          yield frame;
        }
        ended = true;
      } catch (err) {
        failure = err;
      } finally {
        clearTimeout(watchdog);
        signal.removeEventListener('abort', onAbort);
        attempt.abort();
      }
      if (signal.aborted) break;
      const stalled = attempt.signal.reason instanceof StallError;
      if (stalled) this.stats.stalls++;
      if (stalled || failure) this.noteFailure(stalled ? attempt.signal.reason : failure);
      if (ended && this.opts.finite && !stalled) break;
      this.stats.state = 'backoff';
      const delay = backoff.next();
      this.opts.log.info({ inMs: Math.round(delay) }, 'camera reconnecting'); // the logger is the camera's child: it names the camera
      this.stats.reconnects++;
      if (!(await sleep(delay, signal))) break;
    }
    this.stats.state = 'stopped';
  }

  private noteFailure(err: unknown): void {
    this.stats.lastError = errorMessage(err);
    this.opts.log.warn({ err: this.stats.lastError }, err instanceof StallError ? 'camera stalled; restarting it' : 'camera connection failed');
  }

  /** The JPEG header gives the size; a frame whose header does not parse is corrupt. */
  private async toFrame(jpeg: Buffer, seq: number): Promise<Frame | null> {
    try {
      const meta = await sharp(jpeg).metadata();
      if (!meta.width || !meta.height) throw new Error('no size in the header');
      return {
        id: `${this.name}-${seq}`,
        camera: this.name,
        seq,
        capturedAt: Date.now(),
        data: jpeg,
        encoding: 'jpeg',
        width: meta.width,
        height: meta.height,
      };
    } catch {
      this.stats.corrupt++;
      return null;
    }
  }
}
