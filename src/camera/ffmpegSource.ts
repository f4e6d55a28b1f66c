import type { CauseReader, FrameTool } from './childFrames.js';

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

/** The last error-level line explains an exit; warnings do not. A line without a level (an old ffmpeg) is kept too. */
function ffmpegCauses(): CauseReader {
  let last = '';
  return {
    line(text) {
      const m = LEVEL_LINE.exec(text);
      if (m && ['error', 'fatal', 'panic'].includes(m[1])) last = m[2];
      else if (!m) last = text;
    },
    cause: () => last,
  };
}

/** The ffmpeg run that turns any input into a stream of JPEGs on stdout. */
export function ffmpegTool(input: FfmpegInput, binary = 'ffmpeg'): FrameTool {
  return { tool: 'ffmpeg', command: binary, args: ffmpegArgs(input), install: 'install it (apt-get install ffmpeg)', causes: ffmpegCauses };
}
