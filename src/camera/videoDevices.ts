import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface VideoDevice {
  device: string;
  name: string | null;
}

/** /dev/video* with the driver's name from sysfs (v4l2 format lists come with the camera issue). */
export async function listVideoDevices(root = '/'): Promise<VideoDevice[]> {
  const dir = join(root, 'sys/class/video4linux');
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(
    names.sort().map(async (n) => ({
      device: `/dev/${n}`,
      name: (await readFile(join(dir, n, 'name'), 'utf8').catch(() => null))?.trim() ?? null,
    })),
  );
}

/** The first line of `ffmpeg -version`, or null when ffmpeg is not installed. */
export async function ffmpegVersion(): Promise<string | null> {
  try {
    const { stdout } = await run('ffmpeg', ['-hide_banner', '-version'], { timeout: 5000 });
    return stdout.split('\n')[0].trim();
  } catch {
    return null;
  }
}
