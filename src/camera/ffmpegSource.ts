import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import type { Logger } from '../log.js';
import { JpegStreamParser } from './jpegStreamParser.js';
import { stopGroup, trackGroup } from './processGroups.js';
import { childEnv } from '../childEnv.js';

export type SpawnFn = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

export type FfmpegInput =
  | { type: 'v4l2'; device: string; width?: number; height?: number; fps?: number; format: 'auto' | 'mjpeg' | 'yuyv422' }
  | { type: 'rtsp'; url: string; transport: 'tcp' | 'udp'; fps?: number }
  | { type: 'file'; path: string; loop: boolean; realtime: boolean; fps?: number };

/** ffmpeg arguments that turn any input into a stream of JPEGs on stdout (MJPEG cameras are copied, not re-encoded). */
function ffmpegArgs(input: FfmpegInput): string[] {
  const head = ['-hide_banner', '-nostdin', '-loglevel', 'level+warning'];
  let inArgs: string[];
  let copy = false;
  switch (input.type) {
    case 'v4l2':
      copy = input.format === 'mjpeg' && !input.fps;
      inArgs = [
        '-f',
        'v4l2',
        ...(input.format !== 'auto' ? ['-input_format', input.format] : []),
        ...(input.width && input.height ? ['-video_size', `${input.width}x${input.height}`] : []),
        ...(input.fps ? ['-framerate', String(input.fps)] : []),
        '-i',
        input.device,
      ];
      break;
    case 'rtsp':
      inArgs = [...(input.url.startsWith('rtsp') ? ['-rtsp_transport', input.transport, '-timeout', '10000000'] : []), '-i', input.url];
      break;
    case 'file':
      inArgs = [...(input.realtime ? ['-re'] : []), ...(input.loop ? ['-stream_loop', '-1'] : []), '-i', input.path];
      break;
  }
  const fps = input.type !== 'v4l2' && input.fps ? ['-vf', `fps=${input.fps}`] : [];
  const out = copy ? ['-c:v', 'copy'] : [...fps, '-c:v', 'mjpeg', '-q:v', '4', '-pix_fmt', 'yuvj420p'];
  return [...head, ...inArgs, '-an', ...out, '-f', 'image2pipe', 'pipe:1'];
}

/** ffmpeg's own stderr line prefix with `-loglevel level+…`: `[context @ 0x…] [error] message`. */
const LEVEL_LINE = /^(?:\[[^\]]* @ 0x[0-9a-f]+\] )*\[(trace|debug|verbose|info|warning|error|fatal|panic)\] (.*)$/;

/**
 * Runs one ffmpeg process for as long as the signal allows and yields its JPEG frames. ffmpeg runs in its own
 * process group; on abort the group is stopped with escalation (a hung or SIGSTOPped ffmpeg is SIGKILLed after
 * two seconds), so the frame loop always ends and no child or grandchild is left behind. The last error-level
 * line ffmpeg printed explains an exit; warnings only go to the debug log.
 */
export async function* ffmpegFrames(
  input: FfmpegInput,
  signal: AbortSignal,
  deps: { log: Logger; spawn?: SpawnFn; parser: JpegStreamParser; binary?: string },
): AsyncIterable<Buffer> {
  const child = (deps.spawn ?? spawn)(deps.binary ?? 'ffmpeg', ffmpegArgs(input), { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: childEnv() });
  trackGroup(child);
  const exited = once(child, 'exit').catch(() => undefined);
  let lastError = '';
  // Whole lines only: ffmpeg writes a line's context, level and message in separate writes, so a chunk (or a
  // kill) can end mid-line, and half a warning read alone would look like a level-less cause.
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!.slice(-4096); // bounded: a line that never ends is not a cause either
    for (const line of lines.map((l) => l.trim()).filter(Boolean)) {
      const m = LEVEL_LINE.exec(line);
      if (m && ['error', 'fatal', 'panic'].includes(m[1])) lastError = m[2];
      else if (!m) lastError = line; // a line without a level (an old ffmpeg): keep it as the cause
      deps.log.debug({ ffmpeg: line }, 'ffmpeg');
    }
  });
  let spawnError: Error | null = null;
  child.once('error', (err) => {
    spawnError = err;
    child.stdout!.destroy();
  });
  const kill = () => void stopGroup(child);
  signal.addEventListener('abort', kill, { once: true });
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      for (const frame of deps.parser.push(chunk)) yield frame;
    }
    if (spawnError) throw new Error(`cannot start ffmpeg (${(spawnError as NodeJS.ErrnoException).code ?? spawnError}); install it (apt-get install ffmpeg)`);
    await exited;
    if (!signal.aborted && child.exitCode !== 0) {
      const how = child.exitCode ?? child.signalCode;
      throw new Error(`ffmpeg exited with ${how}: ${lastError || (child.signalCode ? 'killed by a signal from outside Outpost' : 'no message')}`);
    }
  } finally {
    signal.removeEventListener('abort', kill);
    await stopGroup(child);
  }
}
