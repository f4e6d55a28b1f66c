import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { childEnv } from '../childEnv.js';

const run = promisify(execFile);

export interface VideoDevice {
  device: string;
  name: string | null;
  /** fourcc → frame sizes, from `v4l2-ctl --list-formats-ext`; null when v4l2-ctl is not installed. */
  formats: Record<string, string[]> | null;
}

/** Parses `v4l2-ctl --list-formats-ext`: `[0]: 'MJPG' (Motion-JPEG, compressed)` then `Size: Discrete 640x480` lines. */
export function parseV4l2Formats(text: string): Record<string, string[]> {
  const formats: Record<string, string[]> = {};
  let current: string | null = null;
  for (const line of text.split('\n')) {
    const fmt = /\[\d+\]: '(\w+)'/.exec(line);
    if (fmt) formats[(current = fmt[1])] ??= [];
    const size = /Size: \w+ (\d+x\d+)/.exec(line);
    if (size && current && !formats[current].includes(size[1])) formats[current].push(size[1]);
  }
  return formats;
}

async function formatsOf(device: string): Promise<Record<string, string[]> | null> {
  try {
    const { stdout } = await run('v4l2-ctl', ['--list-formats-ext', '-d', device], { timeout: 5000, env: childEnv() });
    return parseV4l2Formats(stdout);
  } catch {
    return null;
  }
}

/** /dev/video* with the driver's name from sysfs and, when v4l2-ctl is installed (and root is /), the formats it offers. */
export async function listVideoDevices(root = '/'): Promise<VideoDevice[]> {
  const dir = join(root, 'sys/class/video4linux');
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(
    names.sort().map(async (n) => ({
      device: `/dev/${n}`,
      name: (await readFile(join(dir, n, 'name'), 'utf8').catch(() => null))?.trim() ?? null,
      formats: root === '/' ? await formatsOf(`/dev/${n}`) : null, // under a copied tree, /dev is not that board's
    })),
  );
}

/** The first line of `ffmpeg -version`, or null when ffmpeg is not installed. */
export async function ffmpegVersion(): Promise<string | null> {
  try {
    const { stdout } = await run('ffmpeg', ['-hide_banner', '-version'], { timeout: 5000, env: childEnv() });
    return stdout.split('\n')[0].trim();
  } catch {
    return null;
  }
}
