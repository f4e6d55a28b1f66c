import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './paths.js';

/** An H.264 clip of ffmpeg's test pattern (320x240, 10 fps), made by a real ffmpeg. */
export function testVideo(seconds: number): string {
  const file = join(tempDir(), 'clip.mp4');
  const r = spawnSync('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=320x240:rate=10',
    '-t',
    String(seconds),
    '-pix_fmt',
    'yuv420p',
    file,
  ]);
  if (r.status !== 0) throw new Error(`ffmpeg could not make a test video: ${r.stderr}`);
  return file;
}
