import sharp from 'sharp';
import { OutpostError } from '../errors.js';
import type { Frame, FrameSource } from '../types.js';
import { FramePacer } from './abortableSleep.js';
import { NO_FONTS_HINT, canDrawText } from './textRendering.js';

export interface DemoCameraOptions {
  width: number;
  height: number;
  fps: number;
  seed: number;
}

/** mulberry32: a tiny seeded PRNG so the demo renders the same sequence on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['TEMP', 'PUMP', 'VALVE', 'LINE', 'BATCH', 'ZONE', 'TANK', 'GATE'];
const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono', 'Liberation Sans', 'sans-serif'];

function label(rand: () => number): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('');
  switch (Math.floor(rand() * 3)) {
    case 0:
      return `${pick(WORDS)} ${1 + Math.floor(rand() * 99)}`;
    case 1:
      return `${String.fromCharCode(65 + Math.floor(rand() * 26), 65 + Math.floor(rand() * 26), 65 + Math.floor(rand() * 26))}-${digits(4)}`;
    default:
      return `${digits(4 + Math.floor(rand() * 2))}.${digits(1)}`;
  }
}

const hsl = (rand: () => number, light: number) => `hsl(${Math.floor(rand() * 360)},${40 + Math.floor(rand() * 40)}%,${light}%)`;

/** One frame: a coloured scene with 1-3 non-overlapping text panels (meter readings, labels). */
function renderDemoSvg(width: number, height: number, rand: () => number): { svg: string; texts: string[] } {
  const count = 1 + Math.floor(rand() * 3);
  const band = height / count;
  const texts: string[] = [];
  let body = `<rect width="100%" height="100%" fill="${hsl(rand, 30)}"/>`;
  for (let i = 0; i < count; i++) {
    const text = label(rand);
    const size = Math.round(Math.min(band * 0.45, 22 + rand() * 26));
    const textWidth = text.length * size * 0.62;
    const x = Math.round(10 + rand() * Math.max(1, width - textWidth - 40));
    const y = Math.round(i * band + band / 2 + size / 3);
    body += `<rect x="${x - 8}" y="${y - size}" width="${Math.round(textWidth + 16)}" height="${Math.round(size * 1.35)}" fill="${hsl(rand, 90)}"/>`;
    body += `<text x="${x}" y="${y}" font-family="${FONTS[Math.floor(rand() * FONTS.length)]}" font-size="${size}" font-weight="${rand() < 0.5 ? 'bold' : 'normal'}" fill="#111">${text}</text>`;
    texts.push(text);
  }
  return { svg: `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`, texts };
}

/** The built-in synthetic camera: renders changing text with sharp, so the demo needs no files. */
export class DemoCamera implements FrameSource {
  constructor(
    readonly name: string,
    private readonly opts: DemoCameraOptions,
  ) {}

  async *frames(signal: AbortSignal): AsyncIterable<Frame> {
    // frames of empty boxes would be read as garbage while /healthz said ok: refuse to start instead
    if (!(await canDrawText())) throw new OutpostError('OUTPOST_E_CAMERA', `camera ${this.name} (demo): ${NO_FONTS_HINT}`);
    const rand = prng(this.opts.seed);
    const pacer = new FramePacer(this.opts.fps);
    for (let seq = 0; await pacer.wait(signal); seq++) {
      const { svg, texts } = renderDemoSvg(this.opts.width, this.opts.height, rand);
      const data = await sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer();
      yield {
        id: `${this.name}-${seq}`,
        camera: this.name,
        seq,
        capturedAt: Date.now(),
        data,
        encoding: 'jpeg',
        width: this.opts.width,
        height: this.opts.height,
        truth: texts,
      };
    }
  }
}

/** `count` demo frames rendered as fast as they can be (benchmarks, calibration without a camera). */
export async function renderDemoFrames(count: number, seed: number, width = 640, height = 480): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const f of new DemoCamera('demo', { width, height, fps: 1000, seed }).frames(new AbortController().signal)) {
    frames.push(f);
    if (frames.length >= count) break;
  }
  return frames;
}
