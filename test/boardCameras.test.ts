import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createSource } from '../src/camera/index.js';
import { configSchema, pipelineWords, type CameraConfig } from '../src/config/index.js';
import type { SourceHealth } from '../src/types.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { NotifySocket } from './helpers/notifySocket.js';
import { missingTool } from './helpers/optional.js';
import { ROOT, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Issue 24: the cameras boards actually have. GStreamer runs for real (Debian's gst-launch-1.0 and
 * videotestsrc); rpicam-vid, which Debian does not package, is test/fixtures/rpicam/rpicam-vid: a stand-in
 * that takes exactly the options rpicam-apps declares (its comments name the source) and streams ffmpeg's
 * testsrc as MJPEG.
 */
const STANDIN = join(ROOT, 'test/fixtures/rpicam');
const noGst = missingTool('gst-launch-1.0', 'gstreamer1.0-tools');
const noFfmpeg = missingTool('ffmpeg', 'ffmpeg');
const TEST_PIPELINE = 'videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=15/1';

const camera = (source: Record<string, unknown>): CameraConfig =>
  configSchema.parse({ cameras: [{ name: 'cam', source, reconnect: { initialMs: 5000, maxMs: 5000 } }] }).cameras[0];

/** Runs a source until its health says it failed, then returns that health (the backoff is long, so it is read once). */
async function firstFailure(source: Record<string, unknown>): Promise<SourceHealth> {
  const src = createSource(camera(source), { log: pino({ level: 'silent' }) });
  const abort = new AbortController();
  const reading = (async () => {
    for await (const _ of src.frames(abort.signal));
  })();
  try {
    await waitUntil(() => src.health!().lastError !== null, 'the source to fail', 400);
    return src.health!();
  } finally {
    abort.abort();
    await reading;
  }
}

/** With PATH set to `path` for the duration of `fn` (children are spawned with process.env). */
async function withPath<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

const childrenOf = (pid: number, name: string) =>
  spawnSync('pgrep', ['-P', String(pid), '-x', name], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function daemonConfig(dir: string, port: number, source: string): string {
  return `node: { name: board, stateDir: ${join(dir, 'state')} }
cameras:
  - { name: cam, source: ${source}, stallSeconds: 2, reconnect: { initialMs: 100, maxMs: 200 } }
models:
  det: { file: builtin:ppocrv4-det }
  rec: { file: builtin:ppocrv4-rec }
pipelines:
  text:
    stages:
      - { name: detect, model: det, decoder: { type: db } }
      - { name: recognise, model: rec, input: crops, decoder: { type: ctc, dictionary: builtin:ppocr-keys } }
status: { port: ${port} }
power: { enabled: false }
logging: { format: json, results: false }
`;
}

const status = async (port: number) => (await fetch(`http://127.0.0.1:${port}/status`)).json();

describe.skipIf(noGst)('type: gstreamer', () => {
  it('serves OCR results from videotestsrc and survives SIGKILL and SIGSTOP of its gst-launch-1.0; nothing is left at stop', async () => {
    const dir = tempDir();
    const port = await freePort();
    const notify = await NotifySocket.bind(); // as under systemd: the daemon's own, never its children's
    const daemon = DaemonProcess.start(dir, daemonConfig(dir, port, `{ type: gstreamer, pipeline: "${TEST_PIPELINE}" }`), {
      NOTIFY_SOCKET: notify.path,
    });
    const pid = daemon.child.pid!;
    const health = async () => (await status(port).catch(() => null))?.cameras?.cam?.source;
    const processed = async () => (await status(port)).cameras.cam.processed as number;
    const seen: number[] = [];
    try {
      const first = await daemon.waitFor('an OCR result from the gstreamer camera', async () => {
        const s = await status(port).catch(() => null);
        return s?.lastResult?.camera === 'cam' ? s.lastResult : undefined;
      });
      expect(first.output).toHaveProperty('lines');
      const [gst] = childrenOf(pid, 'gst-launch-1.0');
      seen.push(gst);
      expect(readFileSync(`/proc/${gst}/environ`, 'utf8').split('\0')).not.toContainEqual(expect.stringMatching(/^NOTIFY_SOCKET=/));
      process.kill(gst, 'SIGKILL');
      const killed = await daemon.waitFor('a new gst-launch-1.0 after SIGKILL', async () => {
        const h = await health();
        const [now] = childrenOf(pid, 'gst-launch-1.0');
        return h?.reconnects >= 1 && h.state === 'streaming' && now && now !== gst ? { h, now } : undefined;
      });
      expect(killed.h.lastError).toBe('gst-launch-1.0 exited with SIGKILL: killed by a signal from outside Outpost');
      seen.push(killed.now);
      process.kill(killed.now, 'SIGSTOP');
      const stalled = await daemon.waitFor('the stall watchdog to replace a SIGSTOPped gst-launch-1.0', async () => {
        const h = await health();
        const [now] = childrenOf(pid, 'gst-launch-1.0');
        return h?.stalls >= 1 && h.state === 'streaming' && now && !seen.includes(now) ? { h, now } : undefined;
      });
      expect(stalled.h.lastError).toMatch(/no frame for 2000 ms/);
      expect(alive(killed.now)).toBe(false); // killed, not left stopped
      seen.push(stalled.now);
      const before = await processed();
      await daemon.waitFor('results after both restarts', async () => ((await processed()) > before ? true : undefined));
    } finally {
      expect(await daemon.stop()).toBe(0);
      notify.close();
    }
    expect(seen.filter(alive)).toEqual([]);
  });

  it("a bad pipeline fails with gst's own error line as the reason", async () => {
    const parse = await firstFailure({ type: 'gstreamer', pipeline: 'nosuchsrc ! video/x-raw,width=64,height=64' });
    expect(parse.lastError).toBe('gst-launch-1.0 exited with 1: erroneous pipeline: no element "nosuchsrc"');
    const run = await firstFailure({ type: 'gstreamer', pipeline: 'filesrc location=/nonexistent/clip.mjpeg ! jpegdec' });
    expect(run.lastError).toMatch(/^gst-launch-1.0 exited with \d+: filesrc0: Resource not found\. \(No such file "\/nonexistent\/clip.mjpeg"\)$/);
  });

  it('a pipeline ending in a JPEG encoder gets only the sink; quoted words stay whole', async () => {
    const src = createSource(camera({ type: 'gstreamer', pipeline: 'videotestsrc ! video/x-raw,width=96,height=64 ! jpegenc quality=50' }), {
      log: pino({ level: 'silent' }),
    });
    const abort = new AbortController();
    for await (const f of src.frames(abort.signal)) {
      expect([f.width, f.height]).toEqual([96, 64]);
      break;
    }
    abort.abort();
    expect(pipelineWords(`a name="b c" ! d prop='e "f"' g\\ h`)).toEqual(['a', 'name=b c', '!', 'd', 'prop=e "f"', 'g h']);
  });
});

describe('the config refuses what would break the stream', () => {
  const problem = (source: Record<string, unknown>) => configSchema.safeParse({ cameras: [{ name: 'cam', source }] }).error?.issues[0];
  it('a gstreamer pipeline with its own sink, gst-launch flags or an open quote; rpicam args that Outpost sets', () => {
    expect(problem({ type: 'gstreamer', pipeline: 'videotestsrc ! jpegenc ! fdsink fd=1' })?.message).toMatch(/leave the sink out/);
    expect(problem({ type: 'gstreamer', pipeline: '-e videotestsrc' })?.message).toMatch(/gst-launch-1.0 -q itself/);
    expect(problem({ type: 'gstreamer', pipeline: 'videotestsrc name="x' })?.message).toMatch(/quote is not closed/);
    expect(problem({ type: 'rpicam', args: ['--codec', 'h264'] })?.message).toMatch(/Outpost sets .*--codec/);
    expect(problem({ type: 'rpicam', args: ['--list-cameras'] })?.message).toMatch(/exit instead of streaming/);
    expect(problem({ type: 'rpicam', rotation: 90 })?.path).toEqual(['cameras', 0, 'source', 'rotation']);
  });
});

describe.skipIf(noFfmpeg)('type: rpicam against the rpicam-vid stand-in', () => {
  it('a daemon runs it with the documented flags for every control', async () => {
    const dir = tempDir();
    const port = await freePort();
    const argvFile = join(dir, 'argv.jsonl');
    const source =
      '{ type: rpicam, camera: 0, width: 320, height: 240, fps: 10, quality: 70, rotation: 180, hflip: true, vflip: true, shutterUs: 20000, gain: 2.5, awb: daylight, autofocus: manual, lensPosition: 0.5, args: [--denoise, cdn_fast] }';
    const daemon = DaemonProcess.start(dir, daemonConfig(dir, port, source), { PATH: `${STANDIN}:${process.env.PATH}`, RPICAM_STANDIN_ARGV: argvFile });
    try {
      await daemon.waitFor('a result from the rpicam camera', async () =>
        (await status(port).catch(() => null))?.lastResult?.camera === 'cam' ? true : undefined,
      );
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    const [argv] = readFileSync(argvFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(argv).toEqual(
      [
        '--codec mjpeg -o - -t 0 -n --flush --camera 0 --width 320 --height 240 --framerate 10 --quality 70 --rotation 180 --hflip --vflip',
        '--shutter 20000 --gain 2.5 --awb daylight --autofocus-mode manual --lens-position 0.5 --denoise cdn_fast',
      ]
        .join(' ')
        .split(' '),
    );
  });

  it('frames have the configured size; a camera rpicam-vid does not have fails with its own line; libcamera-vid is the fallback name', async () => {
    const src = createSource(camera({ type: 'rpicam', width: 160, height: 120, fps: 10 }), { log: pino({ level: 'silent' }) });
    await withPath(`${STANDIN}:${process.env.PATH}`, async () => {
      const abort = new AbortController();
      for await (const f of src.frames(abort.signal)) {
        expect([f.width, f.height]).toEqual([160, 120]);
        break;
      }
      abort.abort();
      const missing = await firstFailure({ type: 'rpicam', camera: 1 });
      expect(missing.lastError).toBe('rpicam-vid exited with 255: selected camera is not available');
    });
    const old = tempDir();
    symlinkSync(join(STANDIN, 'rpicam-vid'), join(old, 'libcamera-vid'));
    const bullseye = await withPath(`${old}:${process.env.PATH}`, () => firstFailure({ type: 'rpicam', camera: 1 }));
    expect(bullseye.lastError).toBe('libcamera-vid exited with 255: selected camera is not available');
  });
});

describe('missing tools give the install hint', () => {
  it('sources say what to install; outpost cameras says what it did not find and how to get it', async () => {
    const empty = tempDir();
    const [gst, rpicam, ffmpeg] = await withPath(empty, () =>
      Promise.all([
        firstFailure({ type: 'gstreamer', pipeline: TEST_PIPELINE }),
        firstFailure({ type: 'rpicam' }),
        firstFailure({ type: 'rtsp', url: 'rtsp://127.0.0.1:9/none' }),
      ]),
    );
    expect(ffmpeg.lastError).toBe('cannot start ffmpeg (ENOENT); install it (apt-get install ffmpeg)'); // was "Premature close"
    expect(gst.lastError).toBe(
      'cannot start gst-launch-1.0 (ENOENT); install it (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)',
    );
    expect(rpicam.lastError).toMatch(/^cannot start rpicam-vid \(ENOENT\); rpicam-vid and libcamera-vid are not on PATH: install rpicam-apps/);
    const r = runCli(['cameras', '--json'], { PATH: empty });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.notFound).toEqual(
      expect.arrayContaining([
        { what: 'rpicam-vid (or libcamera-vid)', fix: expect.stringMatching(/install rpicam-apps/) },
        { what: 'gst-launch-1.0', fix: expect.stringMatching(/apt-get install gstreamer1.0-tools/) },
        { what: 'ffmpeg', fix: expect.stringMatching(/apt-get install ffmpeg/) },
      ]),
    );
  });
});

describe('outpost cameras', () => {
  /** Each suggested `source:` line, pasted under a camera, makes a valid config. */
  const pastes = (yaml: string) => configSchema.safeParse({ cameras: [{ name: 'cam', ...parseYaml(yaml) }] }).success;

  it.skipIf(noGst)('on this machine: lists what it finds and says what it did not (text and --json)', () => {
    const text = runCli(['cameras']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^cameras found/m);
    expect(text.stdout).toMatch(/^ {2}gst-launch-1.0 +GStreamer 1\.\d+.*elements: jpegenc, videoconvert, fdsink/m);
    expect(text.stdout).toMatch(/^not found\n/m);
    const json = JSON.parse(runCli(['cameras', '--json']).stdout);
    expect(json.tools.map((t: { tool: string }) => t.tool)).toContain('gst-launch-1.0');
    for (const c of json.cameras) if (c.yaml) expect(pastes(c.yaml)).toBe(true);
  });

  it.skipIf(noFfmpeg)('with rpicam-vid on PATH: its cameras with the YAML to paste', () => {
    const r = runCli(['cameras', '--json'], { PATH: `${STANDIN}:${process.env.PATH}` });
    const cam = JSON.parse(r.stdout).cameras.find((c: { where: string }) => c.where === 'rpicam camera 0');
    expect(cam).toMatchObject({ detail: expect.stringMatching(/^imx708 \[4608x2592 10-bit RGGB\] modes 1536x864 2304x1296 4608x2592/) });
    expect(cam.yaml).toBe('source: { type: rpicam, camera: 0, width: 1280, height: 720, fps: 15 }');
    expect(pastes(cam.yaml)).toBe(true);
  });

  it("a board's V4L2 nodes: a Pi module's raw receiver points to type: rpicam, a Jetson CSI node to Argus", () => {
    const root = tempDir();
    const nodes = { video0: 'unicam-image', video1: 'UVC Camera (046d:0825)', video2: 'vi-output, imx219 9-0010', video20: 'pispbe-input' };
    for (const [node, name] of Object.entries(nodes)) {
      mkdirSync(join(root, 'sys/class/video4linux', node), { recursive: true });
      writeFileSync(join(root, 'sys/class/video4linux', node, 'name'), `${name}\n`);
    }
    const r = runCli(['cameras', '--json', '--root', root]);
    const byNode = Object.fromEntries(JSON.parse(r.stdout).cameras.map((c: { where: string }) => [c.where.split(' ')[0], c]));
    expect(byNode['/dev/video0']).toMatchObject({ detail: expect.stringMatching(/raw Bayer receiver/), advice: expect.stringMatching(/^use type: rpicam/) });
    expect(byNode['/dev/video0'].yaml).toBeUndefined();
    expect(byNode['/dev/video1'].yaml).toBe('source: { type: v4l2, device: /dev/video1, format: auto }');
    expect(byNode['/dev/video2'].yaml).toMatch(/^source: \{ type: gstreamer, pipeline: "nvarguscamerasrc sensor-id=0 ! .* ! nvjpegenc" \}$/);
    expect(byNode['/dev/video20']).toMatchObject({ detail: "the Pi's ISP or codec, not a camera" });
    for (const c of Object.values(byNode) as { yaml?: string }[]) if (c.yaml) expect(pastes(c.yaml)).toBe(true);
  });
});

describe('outpost doctor', () => {
  it('fails when a configured camera lacks its tool or its GStreamer element, with the fix', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'outpost.yaml'),
      `node: { stateDir: ${join(dir, 'state')} }
cameras:
  - { name: pi, source: { type: rpicam } }
  - { name: jetson, source: { type: gstreamer, pipeline: "nvarguscamerasrc sensor-id=0 ! nvjpegenc" } }
models: { det: { file: builtin:ppocrv4-det } }
pipelines: { text: { stages: [{ name: detect, model: det, decoder: { type: db } }] } }
`,
    );
    const empty = tempDir();
    const r = runCli(['doctor', '--json', '--config', join(dir, 'outpost.yaml')], { PATH: empty });
    expect(r.code).toBe(1);
    const findings = JSON.parse(r.stdout).findings as { check: string; ok: boolean; fix?: string; optional?: boolean }[];
    const rpicam = findings.find((f) => f.check === 'rpicam-vid');
    expect(rpicam).toMatchObject({ ok: false, optional: false, fix: expect.stringMatching(/install rpicam-apps/) });
    expect(findings.find((f) => f.check === 'gstreamer')).toMatchObject({ ok: false, optional: false, fix: expect.stringMatching(/gstreamer1.0-tools/) });
    if (!noGst) {
      const withGst = JSON.parse(runCli(['doctor', '--json', '--config', join(dir, 'outpost.yaml')]).stdout).findings;
      expect(withGst.find((f: { check: string }) => f.check === 'gstreamer')).toMatchObject({
        ok: false,
        detail: expect.stringMatching(/missing elements: .*nvarguscamerasrc/),
        fix: expect.stringMatching(/JetPack/),
      });
    }
  });
});
