import { z } from 'zod';

/** The camera source types: one schema each, discriminated by `type`. */

const demoSource = z.strictObject({
  type: z.literal('demo'),
  width: z.number().int().min(64).max(4096).default(640),
  height: z.number().int().min(64).max(4096).default(480),
  fps: z.number().positive().max(120).default(2).describe('frames the synthetic camera renders per second'),
  seed: z.number().int().default(1).describe('seed for the rendered text, so runs are reproducible'),
});

const directorySource = z.strictObject({
  type: z.literal('directory'),
  path: z.string().min(1).describe('folder of .jpg/.jpeg/.png images'),
  fps: z.number().positive().max(120).default(5),
  loop: z.boolean().default(true),
  watch: z.boolean().default(false).describe('a drop folder: deliver images as they appear, then delete nothing'),
});

const v4l2Source = z.strictObject({
  type: z.literal('v4l2'),
  device: z.string().regex(/^\/dev\//, 'a device path such as /dev/video0'),
  width: z.number().int().min(16).max(8192).optional(),
  height: z.number().int().min(16).max(8192).optional(),
  fps: z.number().positive().max(240).optional(),
  format: z.enum(['auto', 'mjpeg', 'yuyv422']).default('mjpeg').describe('mjpeg is copied without re-encoding when the camera offers it'),
});

const rtspSource = z.strictObject({
  type: z.literal('rtsp'),
  url: z.string().min(1).describe('rtsp://user:pass@host/path, or any URL ffmpeg reads'),
  transport: z.enum(['tcp', 'udp']).default('tcp'),
  fps: z.number().positive().max(120).optional().describe('frames per second taken from the stream'),
});

const fileSource = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1).describe('a video file (anything ffmpeg reads)'),
  loop: z.boolean().default(true),
  realtime: z.boolean().default(true).describe("read at the video's own pace (ffmpeg -re)"),
  fps: z.number().positive().max(120).optional(),
});

const mjpegHttpSource = z.strictObject({
  type: z.literal('mjpeg-http'),
  url: z.string().url().describe('a multipart/x-mixed-replace MJPEG stream'),
  username: z.string().optional(),
  password: z.string().optional().describe('use !file /path to keep it out of the config'),
});

/** Flags Outpost sets itself for rpicam-vid: the stream would break, or a field of this schema says it. */
const RPICAM_OWN_FLAGS = ['-o', '--output', '--codec', '-t', '--timeout', '-n', '--nopreview', '--camera', '--width', '--height', '--framerate'];
/** Flags that make rpicam-vid print something and exit instead of streaming. */
const RPICAM_EXITING_FLAGS = ['-h', '--help', '--version', '--list-cameras'];

const rpicamSource = z.strictObject({
  type: z.literal('rpicam'),
  camera: z.number().int().min(0).max(15).default(0).describe('index from `rpicam-vid --list-cameras` (or `outpost cameras`)'),
  width: z.number().int().min(64).max(9152).default(1280),
  height: z.number().int().min(64).max(6944).default(720),
  fps: z.number().positive().max(240).default(15).describe('frames per second the sensor runs at'),
  quality: z.number().int().min(1).max(100).default(80).describe('MJPEG quality (rpicam-vid --quality)'),
  rotation: z
    .union([z.literal(0), z.literal(180)])
    .default(0)
    .describe('0 or 180 (the ISP cannot transpose)'),
  hflip: z.boolean().default(false),
  vflip: z.boolean().default(false),
  shutterUs: z.number().int().positive().max(1_000_000_000).optional().describe('fixed exposure time in microseconds (default: auto)'),
  gain: z.number().positive().max(64).optional().describe('fixed analogue gain (default: auto)'),
  awb: z.enum(['auto', 'incandescent', 'tungsten', 'fluorescent', 'indoor', 'daylight', 'cloudy']).optional().describe('white balance mode'),
  autofocus: z.enum(['default', 'manual', 'auto', 'continuous']).optional().describe('Camera Module 3: autofocus mode'),
  lensPosition: z
    .union([z.number().min(0).max(32), z.literal('default')])
    .optional()
    .describe('Camera Module 3: focus as 1/distance in metres (0 = infinity), or "default" (hyperfocal); use with autofocus: manual'),
  args: z
    .array(z.string().max(256))
    .max(32)
    .default([])
    .refine((args) => !args.some((a) => RPICAM_OWN_FLAGS.includes(a.split('=')[0])), {
      message: `Outpost sets ${RPICAM_OWN_FLAGS.join(' ')} itself; use the fields camera, width, height, fps instead`,
    })
    .refine((args) => !args.some((a) => RPICAM_EXITING_FLAGS.includes(a.split('=')[0])), {
      message: `${RPICAM_EXITING_FLAGS.join(' ')} make rpicam-vid exit instead of streaming; run them by hand (or outpost cameras)`,
    })
    .describe('more rpicam-vid flags, passed as they are (e.g. ["--denoise", "cdn_fast", "--hdr"])'),
});

/**
 * Splits a pipeline into words as a shell would (quotes group and are removed, a backslash escapes the next
 * character): gst-launch-1.0 escapes the spaces inside each argument, so a whole pipeline in one argument
 * would be one word to it.
 */
export function pipelineWords(pipeline: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < pipeline.length; i++) {
    const c = pipeline[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < pipeline.length) word += pipeline[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < pipeline.length) word = (word ?? '') + pipeline[++i];
    else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? '') + c;
  }
  if (quote) throw new Error(`the pipeline has an unclosed ${quote}`);
  if (word !== null) words.push(word);
  return words;
}

/** The element name of a gst-launch pipeline's last stage: `… ! jpegenc quality=80` → `jpegenc`. */
export function lastGstElement(pipeline: string): string {
  return (pipeline.split('!').pop() ?? '').trim().split(/[\s,]/)[0];
}

const gstreamerPipeline = z
  .string()
  .min(1)
  .max(4000)
  .refine(
    (p) => {
      try {
        pipelineWords(p);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'a quote is not closed' },
  )
  .refine((p) => !p.trim().startsWith('-'), { message: 'give the pipeline only: Outpost runs gst-launch-1.0 -q itself' })
  .refine((p) => !/sink$/.test(lastGstElement(p)), {
    message: 'leave the sink out: Outpost ends the pipeline with its own (fdsink to its stdout)',
  });

const gstreamerSource = z.strictObject({
  type: z.literal('gstreamer'),
  pipeline: gstreamerPipeline.describe(
    'gst-launch-1.0 syntax without the sink; Outpost appends "! videoconvert ! jpegenc ! fdsink" unless it already ends in a JPEG encoder or image/jpeg caps',
  ),
  quality: z.number().int().min(1).max(100).default(85).describe('jpegenc quality, when Outpost adds the encoder'),
});

export const cameraSourceSchema = z.discriminatedUnion('type', [
  demoSource,
  directorySource,
  v4l2Source,
  rtspSource,
  fileSource,
  mjpegHttpSource,
  rpicamSource,
  gstreamerSource,
]);
