import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectorySource, JpegStreamParser, MotionGate } from '../src/camera/index.js';
import type { Frame } from '../src/types.js';
import { jpegFrame } from './helpers/jpegs.js';
import { tempDir } from './helpers/paths.js';

async function take(source: { frames(s: AbortSignal): AsyncIterable<Frame> }, n: number, signal = new AbortController()): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of source.frames(signal.signal)) {
    out.push(f);
    if (out.length >= n) break;
  }
  return out;
}

describe('JPEG stream parser', () => {
  it('cuts concatenated JPEGs at SOI/EOI, whatever the chunking, and counts truncated frames', async () => {
    const jpegs = await Promise.all([0, 1, 2].map((i) => jpegFrame(i)));
    const truncated = jpegs[1].subarray(0, 500);
    const stream = Buffer.concat([
      Buffer.from('--boundary\r\nContent-Type: image/jpeg\r\n\r\n'),
      jpegs[0],
      Buffer.from('\r\n--b\r\n'),
      truncated,
      jpegs[1],
      jpegs[2],
    ]);
    for (const size of [1, 2, 7, 4096, stream.length]) {
      const parser = new JpegStreamParser();
      const frames: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) frames.push(...parser.push(stream.subarray(i, i + size)));
      expect(frames.map((f) => f.equals(jpegs[frames.indexOf(f)]))).toEqual([true, true, true]);
      expect(parser.truncated).toBe(1);
    }
  });

  it('drops a frame that grows past the size limit', () => {
    const parser = new JpegStreamParser(1000);
    expect(parser.push(Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(2000, 1)]))).toEqual([]);
    expect(parser.truncated).toBe(1);
  });
});

describe('motion gate', () => {
  const cfg = { enabled: true, threshold: 25, minArea: 0.01, width: 64, masks: [] as [number, number, number, number][], maxSkipSeconds: 0 };

  it('passes the first frame and moving scenes, skips still ones', async () => {
    const gate = new MotionGate(cfg);
    const still = await jpegFrame(0, 160, 120, { x: 10, y: 10 });
    const moved = await jpegFrame(0, 160, 120, { x: 100, y: 60 });
    expect((await gate.check(still)).reason).toBe('first');
    expect((await gate.check(still)).pass).toBe(false);
    const verdict = await gate.check(moved);
    expect(verdict).toMatchObject({ pass: true, reason: 'motion' });
    expect(verdict.changed).toBeGreaterThan(0.05);
  });

  it('ignores masked regions', async () => {
    const gate = new MotionGate({ ...cfg, masks: [[0.5, 0.4, 1, 1]] });
    await gate.check(await jpegFrame(0, 160, 120, { x: 100, y: 60 }));
    expect((await gate.check(await jpegFrame(0, 160, 120, { x: 120, y: 80 }))).pass).toBe(false);
  });

  it('lets a frame through after maxSkipSeconds of stillness', async () => {
    let now = 0;
    const gate = new MotionGate({ ...cfg, maxSkipSeconds: 5 }, () => now);
    const still = await jpegFrame(0);
    await gate.check(still);
    now = 4000;
    expect((await gate.check(still)).pass).toBe(false);
    now = 5000;
    expect((await gate.check(still)).reason).toBe('keepalive');
  });
});

describe('directory source', () => {
  it('plays a folder in name order, skipping unreadable files, and loops', async () => {
    const dir = tempDir();
    for (const i of [2, 0, 1]) writeFileSync(join(dir, `${i}.jpg`), await jpegFrame(i));
    writeFileSync(join(dir, '1b.jpg'), 'not a jpeg');
    const src = new DirectorySource('d', { path: dir, fps: 200, loop: true, watch: false });
    const frames = await take(src, 6);
    expect(frames.map((f) => f.data.equals(frames[frames.length - 3].data))).toEqual([true, false, false, true, false, false]);
    expect(frames[0].width).toBe(160);
    expect(src.health().skipped?.unreadable).toBeGreaterThanOrEqual(1);
  });

  it('watches a drop folder and delivers new images only', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'old.jpg'), await jpegFrame(0));
    const src = new DirectorySource('drop', { path: dir, fps: 10, loop: false, watch: true });
    const pending = take(src, 2);
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(join(dir, 'new1.jpg'), await jpegFrame(1));
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(join(dir, 'new2.jpg'), await jpegFrame(2));
    const frames = await pending;
    expect(frames.map((f) => f.seq)).toEqual([0, 1]);
    expect(frames[0].data.equals(await jpegFrame(1))).toBe(true);
  });
});

describe('video device listing', () => {
  it('reads v4l2-ctl --list-formats-ext output', async () => {
    const { parseV4l2Formats } = await import('../src/camera/index.js');
    const text = `ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t[1]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
`;
    expect(parseV4l2Formats(text)).toEqual({ MJPG: ['1280x720', '640x480'], YUYV: ['640x480'] });
  });

  it('names video devices from a sysfs tree', async () => {
    const { listVideoDevices } = await import('../src/camera/index.js');
    const root = tempDir();
    mkdirSync(join(root, 'sys/class/video4linux/video0'), { recursive: true });
    writeFileSync(join(root, 'sys/class/video4linux/video0/name'), 'HD Pro Webcam C920\n');
    const [dev] = await listVideoDevices(root);
    expect(dev).toMatchObject({ device: '/dev/video0', name: 'HD Pro Webcam C920' });
  });
});
