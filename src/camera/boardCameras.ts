import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { childEnv } from '../childEnv.js';
import { findOnPath, RPICAM_BINARIES } from './rpicamSource.js';
import { listVideoDevices, type VideoDevice } from './videoDevices.js';

const run = promisify(execFile);

/** One camera as `rpicam-vid --list-cameras` prints it: `0 : imx708 [4608x2592 10-bit RGGB] (/base/…/imx708@1a)`. */
export interface RpicamCamera {
  index: number;
  sensor: string;
  /** The bracket's text: full size, bit depth, colour filter. */
  detail: string;
  /** Sensor mode sizes, from the `Modes:` lines. */
  modes: string[];
}

/** Parses `rpicam-vid --list-cameras` (the layout core/options.cpp prints). */
export function parseRpicamCameras(text: string): RpicamCamera[] {
  const cameras: RpicamCamera[] = [];
  for (const line of text.split('\n')) {
    const cam = /^(\d+) : (\S+) \[([^\]]*)\]/.exec(line);
    if (cam) cameras.push({ index: Number(cam[1]), sensor: cam[2], detail: cam[3], modes: [] });
    else if (cameras.length) for (const size of line.matchAll(/(?:^|\s|: )(\d+x\d+) \[/g)) cameras.at(-1)!.modes.push(size[1]);
  }
  return cameras;
}

/** The GStreamer elements Outpost's pipelines use or that reveal a board's cameras. */
export const GST_ELEMENTS = [
  'jpegenc',
  'videoconvert',
  'fdsink',
  'videotestsrc',
  'v4l2src',
  'rtspsrc',
  'libcamerasrc',
  'nvarguscamerasrc',
  'nvvidconv',
  'nvjpegenc',
];

export interface CameraInventory {
  /** rpicam-vid (or libcamera-vid) when on PATH, with the cameras it lists (or why it could not). */
  rpicam: { binary: string; cameras: RpicamCamera[]; error: string | null } | null;
  /** gst-launch-1.0's version line when installed, and which elements gst-inspect-1.0 finds. */
  gstreamer: { version: string; elements: Record<string, boolean> } | null;
  v4l2: VideoDevice[];
  v4l2Ctl: boolean;
  ffmpeg: boolean;
}

const firstLine = (text: string) =>
  text
    .split('\n')
    .find((l) => l.trim())
    ?.trim() ?? '';

async function probeRpicam(): Promise<CameraInventory['rpicam']> {
  const binary = findOnPath(RPICAM_BINARIES);
  if (!binary) return null;
  try {
    const { stdout } = await run(binary, ['--list-cameras'], { timeout: 15_000, env: childEnv() });
    return { binary, cameras: parseRpicamCameras(stdout), error: /No cameras available/.test(stdout) ? 'no cameras available' : null };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { binary, cameras: [], error: firstLine(e.stderr ?? '') || e.message };
  }
}

async function probeGstreamer(): Promise<CameraInventory['gstreamer']> {
  if (!findOnPath(['gst-launch-1.0'])) return null;
  const version = await run('gst-launch-1.0', ['--version'], { timeout: 10_000, env: childEnv() })
    .then((r) => r.stdout.split('\n')[1]?.trim() || firstLine(r.stdout))
    .catch(() => 'unknown version');
  const exists = (element: string) =>
    run('gst-inspect-1.0', ['--exists', element], { timeout: 10_000, env: childEnv() }).then(
      () => true,
      () => false,
    );
  const found = await Promise.all(GST_ELEMENTS.map(exists));
  return { version, elements: Object.fromEntries(GST_ELEMENTS.map((e, i) => [e, found[i]])) };
}

/** What this board offers for cameras: libcamera's cameras, GStreamer and its elements, V4L2 nodes. */
export async function probeCameras(root = '/'): Promise<CameraInventory> {
  const [rpicam, gstreamer, v4l2] = await Promise.all([probeRpicam(), probeGstreamer(), listVideoDevices(root)]);
  return { rpicam, gstreamer, v4l2, v4l2Ctl: findOnPath(['v4l2-ctl']) !== null, ffmpeg: findOnPath(['ffmpeg']) !== null };
}
