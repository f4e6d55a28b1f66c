import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { renderDemoFrames } from '../src/camera/index.js';
import { generateKeys } from '../src/crypto/index.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { CLI, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Issue 20: results carry the frame they were computed on, so nothing looks a frame up again by id. A folder
 * camera at 30 fps outruns any buffer of recent frames on a machine that finishes a frame in more than a few
 * frame times: the live page and the uploads must still have the frame of every result.
 */
const FPS = 30;
const FRAMES = 30;

let frames: string;
beforeAll(async () => {
  frames = tempDir();
  (await renderDemoFrames(FRAMES, 20, 640, 480)).forEach((f, i) => writeFileSync(join(frames, `${String(i).padStart(3, '0')}.jpg`), f.data));
});

/** A daemon config with a folder camera looping at 30 fps, and PP-OCR (detector and recogniser) on 640×480 frames. */
function config(dir: string, port: number, extra: Record<string, unknown> = {}): string {
  return stringify({
    node: { name: 'cam-01', stateDir: join(dir, 'state') },
    cameras: [{ name: 'door', source: { type: 'directory', path: frames, fps: FPS, loop: true }, pipeline: 'text' }],
    models: { det: { file: 'builtin:ppocrv4-det' }, rec: { file: 'builtin:ppocrv4-rec' } },
    pipelines: {
      text: {
        stages: [
          { name: 'detect', model: 'det', decoder: { type: 'db' } },
          { name: 'recognise', model: 'rec', input: 'crops', decoder: { type: 'ctc', dictionary: 'builtin:ppocr-keys' } },
        ],
      },
    },
    status: { port },
    power: { enabled: false },
    logging: { format: 'json', results: false },
    ...extra,
  });
}

const status = async (port: number) => (await fetch(`http://127.0.0.1:${port}/status`)).json();

describe('results carry their frames', () => {
  it('at 30 fps, /cameras/door/latest.jpg answers 200 with a JPEG on every poll for 8 s', async () => {
    const dir = tempDir();
    const port = await freePort();
    const agent = DaemonProcess.start(dir, config(dir, port));
    try {
      const url = `http://127.0.0.1:${port}/cameras/door/latest.jpg`;
      await agent.waitFor('the first result', async () => ((await status(port).catch(() => null))?.cameras?.door?.processed > 0 ? true : undefined));
      const answers: number[] = [];
      for (let poll = 0; poll < 32; poll++) {
        const res = await fetch(url);
        const body = Buffer.from(await res.arrayBuffer());
        answers.push(res.status);
        if (res.status === 200) expect(body.subarray(0, 2), `poll ${poll}`).toEqual(Buffer.from([0xff, 0xd8]));
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(answers).toEqual(answers.map(() => 200));
      const door = (await status(port)).cameras.door;
      expect(door.received, 'the camera outran the pipeline, as on a slow board').toBeGreaterThan(door.processed);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  describe('uploads with frames.include', () => {
    let collector: ChildProcess | null = null;
    afterAll(() => collector?.kill());

    it('the first upload after every start carries its frame, and no upload goes without one', async () => {
      const dir = tempDir();
      const device = generateKeys(join(dir, 'state', 'keys'));
      const hq = generateKeys(join(dir, 'collector'));
      writeFileSync(join(dir, 'trust.yaml'), stringify([{ name: 'cam-01', sign: device.sign }]));
      const collectorPort = await freePort();
      const out = join(dir, 'out');
      collector = spawn(
        process.execPath,
        [CLI, 'collect', '--listen', `127.0.0.1:${collectorPort}`, '--keys', join(dir, 'collector'), '--trust', join(dir, 'trust.yaml'), '--out', out],
        { stdio: 'ignore' },
      );
      const up = () =>
        fetch(`http://127.0.0.1:${collectorPort}/metrics`).then(
          () => true,
          () => false,
        );
      await waitUntil(up, 'the collector', 100, 50);
      const port = await freePort();
      const yaml = config(dir, port, {
        keyring: [{ name: 'hq', sign: hq.sign, box: hq.box, roles: ['collector'] }],
        upload: {
          collector: { url: `http://127.0.0.1:${collectorPort}`, key: 'hq' },
          select: { '*': { mode: 'all', minScore: 0 } },
          frames: { include: true },
          delivery: { retry: { initialMs: 100, maxMs: 400 }, timeoutSeconds: 3 },
        },
      });
      /** the result items stored (OUT/cam-01/<epoch>/<seq>.json, beside <seq>.jpg when its frame came; a drop notice is <seq>.dropped.json) */
      const stored = () =>
        (existsSync(out) ? readdirSync(out, { recursive: true, encoding: 'utf8' }) : [])
          .filter((f) => /^cam-01\/[^/]+\/\d+\.json$/.test(f))
          .map((f) => ({
            seq: Number(f.split('/')[2].split('.')[0]),
            capturedAt: JSON.parse(readFileSync(join(out, f), 'utf8')).header.capturedAt as number,
            withFrame: existsSync(join(out, f.replace(/json$/, 'jpg'))),
          }));
      const startedAt: number[] = [];
      for (let start = 0; start < 2; start++) {
        startedAt.push(Date.now());
        const agent = DaemonProcess.start(dir, yaml);
        try {
          // the camera loops at 30 fps: this start's items keep coming until it stops (the next start delivers the rest)
          const upload = await agent.waitFor('an item of this start at the collector', async () => {
            const u = (await status(port).catch(() => null))?.upload;
            return u && stored().some((i) => i.capturedAt >= startedAt[start]) ? u : undefined;
          });
          expect(upload.frameMissing).toBe(0);
          expect(upload.anonymiseFailed).toBe(0);
        } finally {
          expect(await agent.stop()).toBe(0);
        }
      }
      const items = stored();
      const firsts = startedAt.map((at, k) =>
        Math.min(...items.filter((i) => i.capturedAt >= at && i.capturedAt < (startedAt[k + 1] ?? Infinity)).map((i) => i.seq)),
      );
      expect(items.filter((i) => firsts.includes(i.seq))).toEqual(firsts.map((seq) => expect.objectContaining({ seq, withFrame: true })));
      expect(
        items.filter((i) => !i.withFrame).map((i) => i.seq),
        'result items stored without their frame',
      ).toEqual([]);
    });
  });
});
