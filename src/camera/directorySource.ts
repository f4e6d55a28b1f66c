import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { OutpostError } from '../errors.js';
import type { Frame, FrameSource } from '../types.js';
import { FramePacer } from './abortableSleep.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

export async function listImages(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new OutpostError('OUTPOST_E_CAMERA', `cannot list ${dir} (${err.code}); check the folder path`);
  });
  return names.filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase())).sort().map((n) => join(dir, n));
}

/** Reads one image file as a frame; the header alone gives its size. */
export async function imageFrame(file: string, camera: string, seq: number): Promise<Frame> {
  const data = await readFile(file);
  const meta = await sharp(data).metadata().catch(() => {
    throw new OutpostError('OUTPOST_E_INPUT', `${file} is not a readable JPEG or PNG image`);
  });
  const encoding = meta.format === 'png' ? 'png' : 'jpeg';
  return { id: `${camera}-${seq}`, camera, seq, capturedAt: Date.now(), data, encoding, width: meta.width ?? 0, height: meta.height ?? 0 };
}

export interface DirectorySourceOptions {
  path: string;
  fps: number;
  loop: boolean;
}

/** Images of a folder in name order, once or looped; unreadable files are skipped and counted. */
export class DirectorySource implements FrameSource {
  skipped = 0;
  constructor(
    readonly name: string,
    private readonly opts: DirectorySourceOptions,
  ) {}

  async *frames(signal: AbortSignal): AsyncIterable<Frame> {
    const pacer = new FramePacer(this.opts.fps);
    let seq = 0;
    do {
      const files = await listImages(this.opts.path);
      if (files.length === 0) throw new OutpostError('OUTPOST_E_CAMERA', `${this.opts.path} holds no .jpg/.jpeg/.png images`);
      for (const file of files) {
        if (!(await pacer.wait(signal))) return;
        try {
          yield await imageFrame(file, this.name, seq++);
        } catch {
          this.skipped++;
        }
      }
    } while (this.opts.loop && !signal.aborted);
  }
}
