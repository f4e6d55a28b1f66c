import { watch } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { OutpostError } from '../errors.js';
import type { Frame, FrameSource } from '../types.js';
import { FramePacer, sleep } from './abortableSleep.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);
const isImage = (name: string) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase()) && !name.startsWith('.');

export async function listImages(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new OutpostError('OUTPOST_E_CAMERA', `cannot list ${dir} (${err.code}); check the folder path`);
  });
  return names
    .filter(isImage)
    .sort()
    .map((n) => join(dir, n));
}

/** Reads one image file as a frame; the header alone gives its size. */
export async function imageFrame(file: string, camera: string, seq: number): Promise<Frame> {
  const data = await readFile(file);
  const meta = await sharp(data)
    .metadata()
    .catch(() => {
      throw new OutpostError('OUTPOST_E_INPUT', `${file} is not a readable JPEG or PNG image`);
    });
  const encoding = meta.format === 'png' ? 'png' : 'jpeg';
  return { id: `${camera}-${seq}`, camera, seq, capturedAt: Date.now(), data, encoding, width: meta.width ?? 0, height: meta.height ?? 0 };
}

export interface DirectorySourceOptions {
  path: string;
  fps: number;
  loop: boolean;
  watch: boolean;
}

/**
 * Images of a folder in name order, once or looped; or, with `watch`, a drop folder whose new images are
 * delivered as they appear. Unreadable files are skipped and counted.
 */
export class DirectorySource implements FrameSource {
  skipped = 0;
  private seq = 0;

  constructor(
    readonly name: string,
    private readonly opts: DirectorySourceOptions,
  ) {}

  frames(signal: AbortSignal): AsyncIterable<Frame> {
    return this.opts.watch ? this.watched(signal) : this.listed(signal);
  }

  private async *listed(signal: AbortSignal): AsyncIterable<Frame> {
    const pacer = new FramePacer(this.opts.fps);
    do {
      const files = await listImages(this.opts.path);
      if (files.length === 0) throw new OutpostError('OUTPOST_E_CAMERA', `${this.opts.path} holds no .jpg/.jpeg/.png images`);
      for (const file of files) {
        if (!(await pacer.wait(signal))) return;
        const frame = await this.read(file);
        if (frame) yield frame;
      }
    } while (this.opts.loop && !signal.aborted);
  }

  /** fs.watch says something changed; a listing says what. Files present at start count as already seen. */
  private async *watched(signal: AbortSignal): AsyncIterable<Frame> {
    const seen = new Set(await listImages(this.opts.path));
    let changed = true;
    let wake: (() => void) | null = null;
    const watcher = watch(this.opts.path, () => {
      changed = true;
      wake?.();
    });
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        if (!changed) await new Promise<void>((r) => (wake = r));
        changed = false;
        for (const file of await listImages(this.opts.path)) {
          if (seen.has(file) || signal.aborted) continue;
          await sleep(50, signal); // let the writer finish the file
          seen.add(file);
          const frame = await this.read(file);
          if (frame) yield frame;
        }
      }
    } finally {
      watcher.close();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async read(file: string): Promise<Frame | null> {
    try {
      return await imageFrame(file, this.name, this.seq++);
    } catch {
      this.skipped++;
      return null;
    }
  }
}
