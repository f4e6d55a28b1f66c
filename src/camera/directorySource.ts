import { watch } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { OutpostError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Frame, FrameSource, SourceHealth } from '../types.js';
import { FramePacer, sleep } from './abortableSleep.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);
const isImage = (name: string) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase());
/** Hidden files are a writer's work in progress (write `.x.jpg.tmp`, then rename into place): never read, never counted. */
const isHidden = (name: string) => name.startsWith('.');

/** How often a drop is looked at while it settles, how long a writer may take, and the pause before the one retry. */
const SETTLE_POLL_MS = 200;
const SETTLE_MAX_MS = 5000;
const RETRY_AFTER_MS = 1000;
/** How often an empty or missing folder is looked at again. */
const EMPTY_POLL_MS = 1000;

export type SkipReason = 'empty' | 'not-an-image' | 'unreadable';

export async function listImages(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new OutpostError('OUTPOST_E_CAMERA', `cannot list ${dir} (${err.code}); check the folder path`);
  });
  return names
    .filter((n) => isImage(n) && !isHidden(n))
    .sort()
    .map((n) => join(dir, n));
}

/** Reads one image file as a frame; the header alone gives its size. */
export async function imageFrame(file: string, camera: string, seq: number): Promise<Frame> {
  const data = await readFile(file);
  if (data.length === 0) throw new OutpostError('OUTPOST_E_INPUT', `${file} is empty`);
  const meta = await sharp(data)
    .metadata()
    .catch(() => {
      throw new OutpostError('OUTPOST_E_INPUT', `${file} is not a readable JPEG or PNG image`);
    });
  const encoding = meta.format === 'png' ? 'png' : 'jpeg';
  return { id: `${camera}-${seq}`, camera, seq, capturedAt: Date.now(), data, encoding, width: meta.width ?? 0, height: meta.height ?? 0 };
}

/** Whether an image file ends where its format says it ends (JPEG's EOI marker, PNG's IEND chunk): a writer is done. */
async function looksComplete(file: string, size: number): Promise<boolean> {
  if (size < 12) return false;
  const fh = await open(file, 'r');
  try {
    const tail = Buffer.alloc(12);
    await fh.read(tail, 0, 12, size - 12);
    if (/\.png$/i.test(file)) return tail.subarray(0, 8).toString('latin1', 4, 8) === 'IEND';
    const end = tail.lastIndexOf(Buffer.from([0xff, 0xd9]));
    return end >= 0 && tail.subarray(end + 2).every((b) => b === 0 || b === 0x0a);
  } finally {
    await fh.close();
  }
}

export interface DirectorySourceOptions {
  path: string;
  fps: number;
  loop: boolean;
  watch: boolean;
}

/**
 * Images of a folder in name order, once or looped; or, with `watch`, a drop folder whose new images are
 * delivered once each has settled (size steady and the image complete). A file that fails is retried once, then
 * skipped, logged and counted by reason. An empty or missing folder is waited on, not given up on.
 */
export class DirectorySource implements FrameSource {
  private seq = 0;
  private readonly skips: Record<SkipReason, number> = { empty: 0, 'not-an-image': 0, unreadable: 0 };
  private readonly stats: SourceHealth = { state: 'idle', connects: 0, reconnects: 0, stalls: 0, corrupt: 0, truncated: 0, lastError: null };
  private readonly reported = new Set<string>();

  constructor(
    readonly name: string,
    private readonly opts: DirectorySourceOptions,
    private readonly log?: Logger,
  ) {}

  frames(signal: AbortSignal): AsyncIterable<Frame> {
    return this.opts.watch ? this.watched(signal) : this.listed(signal);
  }

  health(): SourceHealth {
    return { ...this.stats, corrupt: this.skips.unreadable, skipped: { ...this.skips } };
  }

  private async *listed(signal: AbortSignal): AsyncIterable<Frame> {
    const pacer = new FramePacer(this.opts.fps);
    do {
      const files = await this.waitForImages(signal);
      this.stats.state = 'streaming';
      for (const file of files) {
        if (!(await pacer.wait(signal))) return;
        const frame = await this.read(file, signal);
        if (frame) yield frame;
      }
    } while (this.opts.loop && !signal.aborted);
    this.stats.state = 'stopped';
  }

  /** The folder's images; while there are none (or no folder), waits and says so once. */
  private async waitForImages(signal: AbortSignal): Promise<string[]> {
    for (let said = false; ; said = true) {
      const files = await listImages(this.opts.path).catch((err: Error) => {
        this.stats.lastError = err.message;
        return [];
      });
      if (files.length > 0 || signal.aborted) return files;
      this.stats.state = 'backoff';
      if (!said) this.log?.warn({ camera: this.name, folder: this.opts.path }, 'camera folder holds no images; waiting for some');
      if (!(await sleep(EMPTY_POLL_MS, signal))) return [];
    }
  }

  /** fs.watch says something changed; a listing says what. Files present at start count as already seen. */
  private async *watched(signal: AbortSignal): AsyncIterable<Frame> {
    const seen = new Set(await readdir(this.opts.path).catch(() => [] as string[]));
    let changed = true;
    let wake: (() => void) | null = null;
    const watcher = watch(this.opts.path, () => {
      changed = true;
      wake?.();
    });
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    this.stats.state = 'streaming';
    try {
      while (!signal.aborted) {
        if (!changed) await new Promise<void>((r) => (wake = r));
        changed = false;
        for (const name of (await readdir(this.opts.path).catch(() => [] as string[])).sort()) {
          if (seen.has(name) || isHidden(name) || signal.aborted) continue;
          seen.add(name);
          const file = join(this.opts.path, name);
          if (!isImage(name)) {
            this.skip(file, 'not-an-image', 'not a .jpg, .jpeg or .png file');
            continue;
          }
          const frame = await this.read(file, signal, true);
          if (frame) yield frame;
        }
      }
    } finally {
      watcher.close();
      signal.removeEventListener('abort', onAbort);
      this.stats.state = 'stopped';
    }
  }

  /** Waits (bounded) until a drop stops growing and is a whole image; false when it vanished or stayed empty. */
  private async settle(file: string, signal: AbortSignal): Promise<'ready' | 'gone' | 'empty'> {
    let last = -1;
    for (const deadline = Date.now() + SETTLE_MAX_MS; Date.now() < deadline;) {
      const st = await stat(file).catch(() => null);
      if (!st) return 'gone';
      if (st.size > 0 && st.size === last && (await looksComplete(file, st.size).catch(() => false))) return 'ready';
      last = st.size;
      if (!(await sleep(SETTLE_POLL_MS, signal))) return 'gone';
    }
    return last === 0 ? 'empty' : 'ready'; // a writer this slow: try it as it is
  }

  private async read(file: string, signal: AbortSignal, drop = false): Promise<Frame | null> {
    for (let attempt = 1; ; attempt++) {
      if (drop) {
        const state = await this.settle(file, signal);
        if (state === 'gone') return null;
        if (state === 'empty') return this.skip(file, 'empty', 'the file stayed empty');
      }
      try {
        const frame = await imageFrame(file, this.name, this.seq);
        this.seq++;
        return frame;
      } catch (err) {
        if (!drop || attempt >= 2 || signal.aborted) return this.skip(file, /is empty/.test(errorMessage(err)) ? 'empty' : 'unreadable', errorMessage(err));
        if (!(await sleep(RETRY_AFTER_MS, signal))) return null;
      }
    }
  }

  /** Counts every skip; logs each file once (a looping folder would repeat the line every pass). */
  private skip(file: string, reason: SkipReason, detail: string): null {
    this.skips[reason]++;
    this.stats.lastError = `${file}: ${detail}`;
    if (!this.reported.has(file)) this.log?.warn({ camera: this.name, file, reason, detail }, 'camera skipped a file');
    this.reported.add(file);
    return null;
  }
}
