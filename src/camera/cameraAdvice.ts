import { GSTREAMER_INSTALL } from './gstreamerSource.js';
import { RPICAM_INSTALL } from './rpicamSource.js';
import type { CameraInventory } from './boardCameras.js';
import type { VideoDevice } from './videoDevices.js';

/** A camera found, with the `source:` line to paste under cameras[] (absent when the node is not one to use). */
export interface FoundCamera {
  where: string;
  detail: string;
  source?: Record<string, unknown>;
  yaml?: string;
  advice?: string;
}

export interface CameraReport {
  cameras: FoundCamera[];
  tools: { tool: string; detail: string }[];
  notFound: { what: string; fix: string }[];
}

/** `{ type: v4l2, device: /dev/video0 }`: a YAML flow mapping; strings quoted only when YAML needs it. */
export function flowYaml(source: Record<string, unknown>): string {
  const value = (v: unknown) => (typeof v === 'string' && !/^[\w/.-]+$/.test(v) ? JSON.stringify(v) : String(v));
  return `source: { ${Object.entries(source)
    .map(([k, v]) => `${k}: ${value(v)}`)
    .join(', ')} }`;
}

const found = (where: string, detail: string, source?: Record<string, unknown>, advice?: string): FoundCamera => ({
  where,
  detail,
  ...(source ? { source, yaml: flowYaml(source) } : {}),
  ...(advice ? { advice } : {}),
});

/** Driver names of nodes that are not a camera to read with ffmpeg. */
const PI_RAW = /unicam|rp1-cfe/;
/** The V4L2 node of a Pi camera module's raw receiver (Bookworm and later: only libcamera reads it properly). */
export const isPiRawNode = (driverName: string | null) => PI_RAW.test(driverName ?? '');
const PI_INTERNAL = /pispbe|bcm2835-isp|bcm2835-codec|rpi-hevc|rpivid|hevc-dec/;
const JETSON_CSI = /^vi-output/;

function v4l2Camera(dev: VideoDevice, hasRpicam: boolean): FoundCamera {
  const name = dev.name ?? 'unknown driver';
  const where = `${dev.device} (${name})`;
  if (PI_RAW.test(name))
    return found(
      where,
      'the raw Bayer receiver of a Raspberry Pi camera module (no ISP): ffmpeg gets unusable frames from it',
      undefined,
      hasRpicam ? 'use type: rpicam (listed above)' : `use type: rpicam; ${RPICAM_INSTALL}`,
    );
  if (PI_INTERNAL.test(name)) return found(where, "the Pi's ISP or codec, not a camera");
  if (JETSON_CSI.test(name))
    return found(
      where,
      'a Jetson CSI camera: read it through Argus, not V4L2',
      { type: 'gstreamer', pipeline: argusPipeline(0) },
      'sensor-id is the CSI port number (0 for the first camera)',
    );
  if (dev.formats && Object.keys(dev.formats).length === 0) return found(where, 'offers no capture format (a metadata or output node)');
  const formats = dev.formats ?? {};
  const summary = Object.entries(formats).map(([f, sizes]) => `${f} ${sizes.slice(0, 4).join(' ')}${sizes.length > 4 ? ' …' : ''}`);
  const format = formats.MJPG ? 'mjpeg' : formats.YUYV ? 'yuyv422' : 'auto';
  const sizes = formats.MJPG ?? formats.YUYV ?? [];
  const size = sizes.includes('1280x720') ? '1280x720' : sizes[0];
  const [width, height] = size ? size.split('x').map(Number) : [];
  return found(
    where,
    summary.join('; ') || 'formats not listed',
    { type: 'v4l2', device: dev.device, ...(width ? { width, height } : {}), format },
    format === 'auto' && dev.formats ? 'neither MJPG nor YUYV: ffmpeg picks the format' : undefined,
  );
}

export const argusPipeline = (sensor: number) =>
  `nvarguscamerasrc sensor-id=${sensor} ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvjpegenc`;

function gstCameras(gst: NonNullable<CameraInventory['gstreamer']>): FoundCamera[] {
  const out: FoundCamera[] = [];
  if (gst.elements.nvarguscamerasrc)
    out.push(found('GStreamer nvarguscamerasrc', 'Jetson CSI cameras through Argus', { type: 'gstreamer', pipeline: argusPipeline(0) }));
  if (gst.elements.libcamerasrc)
    out.push(
      found('GStreamer libcamerasrc', 'libcamera cameras through GStreamer (type: rpicam is the simpler way on a Pi)', {
        type: 'gstreamer',
        pipeline: 'libcamerasrc ! video/x-raw,width=1280,height=720,framerate=15/1',
      }),
    );
  return out;
}

/** Turns what was probed into the report `outpost cameras` and doctor print: each camera with its YAML, and each gap with its fix. */
export function adviseCameras(inv: CameraInventory): CameraReport {
  const report: CameraReport = { cameras: [], tools: [], notFound: [] };
  if (inv.rpicam) {
    report.tools.push({ tool: inv.rpicam.binary, detail: inv.rpicam.error ?? `${inv.rpicam.cameras.length} camera(s)` });
    for (const c of inv.rpicam.cameras)
      report.cameras.push(
        found(`rpicam camera ${c.index}`, `${c.sensor} [${c.detail}]${c.modes.length ? ` modes ${c.modes.join(' ')}` : ''}`, {
          type: 'rpicam',
          camera: c.index,
          width: 1280,
          height: 720,
          fps: 15,
        }),
      );
    if (inv.rpicam.error)
      report.notFound.push({
        what: `cameras through ${inv.rpicam.binary}`,
        fix: `${inv.rpicam.error}: check the ribbon cable and camera_auto_detect=1 in /boot/firmware/config.txt; a camera in use (outpost running) cannot be listed`,
      });
  } else report.notFound.push({ what: 'rpicam-vid (or libcamera-vid)', fix: `Raspberry Pi camera modules need it: ${RPICAM_INSTALL}` });

  if (inv.gstreamer) {
    const present = Object.entries(inv.gstreamer.elements)
      .filter(([, ok]) => ok)
      .map(([e]) => e);
    report.tools.push({ tool: 'gst-launch-1.0', detail: `${inv.gstreamer.version}; elements: ${present.join(', ') || 'none'}` });
    report.cameras.push(...gstCameras(inv.gstreamer));
    for (const e of ['jpegenc', 'videoconvert', 'fdsink'].filter((e) => !inv.gstreamer!.elements[e]))
      report.notFound.push({ what: `GStreamer element ${e}`, fix: 'apt-get install gstreamer1.0-plugins-base gstreamer1.0-plugins-good' });
    if (!inv.gstreamer.elements.nvarguscamerasrc)
      report.notFound.push({ what: 'GStreamer element nvarguscamerasrc', fix: 'Jetson CSI cameras only: it comes with JetPack (nvidia-l4t-gstreamer)' });
    if (!inv.gstreamer.elements.libcamerasrc)
      report.notFound.push({ what: 'GStreamer element libcamerasrc', fix: 'optional on a Pi: apt install gstreamer1.0-libcamera' });
  } else report.notFound.push({ what: 'gst-launch-1.0', fix: `type: gstreamer needs it: ${GSTREAMER_INSTALL}` });

  report.cameras.push(...inv.v4l2.map((d) => v4l2Camera(d, (inv.rpicam?.cameras.length ?? 0) > 0)));
  if (!inv.v4l2.length) report.notFound.push({ what: 'V4L2 devices (/dev/video*)', fix: 'none on this machine: USB cameras appear there when plugged in' });
  else if (!inv.v4l2Ctl) report.notFound.push({ what: 'v4l2-ctl', fix: 'apt-get install v4l-utils (to list the formats of /dev/video*)' });
  if (inv.ffmpeg) report.tools.push({ tool: 'ffmpeg', detail: 'present (v4l2, rtsp and file cameras)' });
  else report.notFound.push({ what: 'ffmpeg', fix: 'apt-get install ffmpeg (v4l2, rtsp and file cameras need it)' });
  return report;
}
