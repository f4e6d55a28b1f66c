import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../src/camera/index.js';
import { configSchema, type CameraConfig } from '../src/config/index.js';
import type { Frame, FrameSource } from '../src/types.js';
import { freePort } from './helpers/daemonProcess.js';
import { jpegFrame } from './helpers/jpegs.js';
import { missingTool } from './helpers/optional.js';
import { testVideo } from './helpers/video.js';

const log = pino({ level: 'silent' });
const noFfmpeg = missingTool('ffmpeg', 'ffmpeg');

function camera(source: Record<string, unknown>, extra: Record<string, unknown> = {}): CameraConfig {
  return configSchema.parse({ cameras: [{ name: 'cam', source, ...extra }] }).cameras[0];
}

/** Collects frames until `until` says stop (or the source ends), then aborts the source. */
async function collect(source: FrameSource, until: (frames: Frame[]) => boolean): Promise<Frame[]> {
  const abort = new AbortController();
  const frames: Frame[] = [];
  for await (const f of source.frames(abort.signal)) {
    frames.push(f);
    if (until(frames)) break;
  }
  abort.abort();
  return frames;
}

/** A multipart MJPEG server like an IP camera's, with basic auth; `stallAfter` stops sending but keeps the socket. */
class MjpegServer {
  server: Server | null = null;
  clients = new Set<ServerResponse>();
  served = 0;
  constructor(
    readonly port: number,
    private readonly frames: Buffer[],
    private readonly opts: { stallAfter?: number; auth?: string } = {},
  ) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (this.opts.auth && req.headers.authorization !== `Basic ${Buffer.from(this.opts.auth).toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="cam"' }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=frame' });
      this.clients.add(res);
      let i = 0;
      const timer = setInterval(() => {
        if (this.opts.stallAfter !== undefined && i >= this.opts.stallAfter) return;
        const jpeg = this.frames[i++ % this.frames.length];
        res.write(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
        res.write(jpeg);
        res.write('\r\n');
        this.served++;
      }, 40);
      res.on('close', () => {
        clearInterval(timer);
        this.clients.delete(res);
      });
    });
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }
}

const servers: MjpegServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

describe('mjpeg-http source', () => {
  let jpegs: Buffer[];
  beforeAll(async () => {
    jpegs = await Promise.all([0, 1, 2, 3].map((i) => jpegFrame(i)));
  });

  it('reads an authenticated stream, and reconnects after the camera is killed and restarted', async () => {
    const port = await freePort();
    const first = new MjpegServer(port, jpegs, { auth: 'admin:s3cret' });
    servers.push(first);
    await first.start();
    const source = createSource(
      camera(
        { type: 'mjpeg-http', url: `http://127.0.0.1:${port}/video`, username: 'admin', password: 's3cret' },
        { reconnect: { initialMs: 50, maxMs: 200 } },
      ),
      { log },
    );
    let restarted = false;
    const frames = await collect(source, (f) => {
      if (f.length === 5 && !restarted) {
        restarted = true;
        void first.stop().then(async () => {
          await new Promise((r) => setTimeout(r, 300)); // the camera is gone for a while
          const second = new MjpegServer(port, jpegs, { auth: 'admin:s3cret' });
          servers.push(second);
          await second.start();
        });
      }
      return f.length >= 12;
    });
    expect(frames[0].data.equals(jpegs[0])).toBe(true);
    expect(frames[0]).toMatchObject({ camera: 'cam', encoding: 'jpeg', width: 160, height: 120 });
    const health = source.health!();
    expect(health.reconnects).toBeGreaterThanOrEqual(1);
    expect(health.connects).toBeGreaterThanOrEqual(2);
  });

  it('says so when the credentials are wrong', async () => {
    const port = await freePort();
    const server = new MjpegServer(port, jpegs, { auth: 'admin:right' });
    servers.push(server);
    await server.start();
    const source = createSource(camera({ type: 'mjpeg-http', url: `http://admin:wrong@127.0.0.1:${port}/` }, { reconnect: { initialMs: 20, maxMs: 20 } }), {
      log,
    });
    const abort = new AbortController();
    const it = source.frames(abort.signal)[Symbol.asyncIterator]();
    const next = it.next();
    await new Promise((r) => setTimeout(r, 150));
    abort.abort();
    expect((await next).done).toBe(true);
    expect(source.health!().lastError).toMatch(/refused the credentials \(401\)/);
  });

  it('restarts a stalled stream (the watchdog) and counts corrupt and truncated frames', async () => {
    const port = await freePort();
    const corrupt = Buffer.concat([Buffer.from([0xff, 0xd8, 0x00, 0x01, 0x02]), Buffer.from([0xff, 0xd9])]); // SOI..EOI, no header
    const truncated = jpegs[1].subarray(0, 300);
    const server = new MjpegServer(port, [jpegs[0], corrupt, truncated, jpegs[2]], { stallAfter: 4 });
    servers.push(server);
    await server.start();
    const source = createSource(
      camera({ type: 'mjpeg-http', url: `http://127.0.0.1:${port}/` }, { stallSeconds: 0.5, reconnect: { initialMs: 20, maxMs: 50 } }),
      { log },
    );
    const frames = await collect(source, (f) => f.length >= 4); // 2 good frames per connection: needs a restart
    expect(frames).toHaveLength(4);
    const h = source.health!();
    expect(h.stalls).toBeGreaterThanOrEqual(1);
    expect(h.lastError).toMatch(/no frame for 500 ms/);
    expect(h.corrupt).toBeGreaterThanOrEqual(2);
    expect(h.truncated).toBeGreaterThanOrEqual(2);
  });
});

describe.skipIf(noFfmpeg)('ffmpeg sources (a real ffmpeg process)', () => {
  let video: string;
  beforeAll(() => {
    video = testVideo(2);
  });

  it("plays a file once, every frame a JPEG of the video's size", async () => {
    const source = createSource(camera({ type: 'file', path: video, loop: false, realtime: false }), { log });
    const frames = await collect(source, () => false);
    expect(frames).toHaveLength(20);
    expect(frames.every((f) => f.width === 320 && f.height === 240 && f.data[0] === 0xff && f.data[1] === 0xd8)).toBe(true);
    expect(source.health!().state).toBe('stopped');
  });

  it('loops a file and resamples it to the requested fps', async () => {
    const source = createSource(camera({ type: 'file', path: video, loop: true, realtime: false, fps: 5 }), { log });
    const frames = await collect(source, (f) => f.length >= 25); // more than the 10 frames one pass gives at 5 fps
    expect(frames).toHaveLength(25);
  });

  it('reads a network stream through ffmpeg (rtsp type with any ffmpeg URL) and reconnects when the server restarts', async () => {
    const port = await freePort();
    const serve = () =>
      spawn(
        'ffmpeg',
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-re',
          '-f',
          'lavfi',
          '-i',
          'testsrc=size=320x240:rate=15',
          '-f',
          'mpjpeg',
          '-listen',
          '1',
          `http://127.0.0.1:${port}/live`,
        ],
        { stdio: 'ignore' },
      );
    let server: ChildProcess = serve();
    try {
      await new Promise((r) => setTimeout(r, 500));
      const source = createSource(camera({ type: 'rtsp', url: `http://127.0.0.1:${port}/live` }, { reconnect: { initialMs: 100, maxMs: 400 } }), { log });
      let killed = false;
      const frames = await collect(source, (f) => {
        if (f.length === 10 && !killed) {
          killed = true;
          server.kill('SIGKILL');
          setTimeout(() => (server = serve()), 300);
        }
        return f.length >= 20;
      });
      expect(frames).toHaveLength(20);
      expect(source.health!().reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it("stop() kills ffmpeg's process group and leaves no process behind", async () => {
    const children: ChildProcess[] = [];
    const source = createSource(camera({ type: 'file', path: video, loop: true, realtime: true }), {
      log,
      spawn: (cmd, args, opts) => {
        const c = spawn(cmd, args, opts);
        children.push(c);
        return c;
      },
    });
    await collect(source, (f) => f.length >= 3);
    await new Promise((r) => setTimeout(r, 200));
    expect(children).toHaveLength(1);
    const pid = children[0].pid!;
    expect(children[0].exitCode !== null || children[0].signalCode !== null).toBe(true);
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  it('backs off and says why when ffmpeg cannot open the input', async () => {
    const source = createSource(camera({ type: 'rtsp', url: 'rtsp://127.0.0.1:1/none' }, { reconnect: { initialMs: 50, maxMs: 100 } }), { log });
    const abort = new AbortController();
    const pending = (async () => {
      for await (const _ of source.frames(abort.signal)) break;
    })();
    await new Promise((r) => setTimeout(r, 1500));
    abort.abort();
    await pending;
    expect(source.health!().reconnects).toBeGreaterThanOrEqual(1);
    expect(source.health!().lastError).toMatch(/ffmpeg exited with/);
  });
});
