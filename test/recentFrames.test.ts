import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { renderDemoFrames } from '../src/camera/index.js';
import { configSchema } from '../src/config/index.js';
import { fromB64, generateKeys, readKeys } from '../src/crypto/index.js';
import type { Frame, Result } from '../src/types.js';
import { HttpTransport, Uploader } from '../src/upload/index.js';
import { testContext } from './helpers/context.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { CLI, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Issue 20: results carry the frame they were computed on, so nothing looks a frame up again by id. A folder
 * camera at 30 fps outran every buffer of recent frames on a machine that takes more than a few frame times per
 * frame: the live page answered 404 for the whole run, and uploads went without their frames.
 */

/** The collector's result items: OUT/<device>/<epoch>/<seq>.json, beside <seq>.jpg when the frame came (a drop notice is <seq>.dropped.json). */
function storedItems(out: string) {
  return (existsSync(out) ? readdirSync(out, { recursive: true, encoding: 'utf8' }) : [])
    .filter((f) => /^cam-01\/[^/]+\/\d+\.json$/.test(f))
    .map((f) => ({
      seq: Number(f.split('/')[2].split('.')[0]),
      capturedAt: JSON.parse(readFileSync(join(out, f), 'utf8')).header.capturedAt as number,
      withFrame: existsSync(join(out, f.replace(/json$/, 'jpg'))),
    }));
}

const status = async (port: number) => (await fetch(`http://127.0.0.1:${port}/status`)).json();

describe('results carry their frames', () => {
  let collector: ChildProcess | null = null;
  afterAll(() => collector?.kill());

  it('at 30 fps the live page shows a frame on every poll, and every upload carries its frame, the first after each start too', async () => {
    const dir = tempDir();
    const frames = join(dir, 'frames');
    const out = join(dir, 'out');
    mkdirSync(frames);
    (await renderDemoFrames(30, 20, 640, 480)).forEach((f, i) => writeFileSync(join(frames, `${String(i).padStart(2, '0')}.jpg`), f.data));
    const device = generateKeys(join(dir, 'state', 'keys'));
    const hq = generateKeys(join(dir, 'collector'));
    writeFileSync(join(dir, 'trust.yaml'), stringify([{ name: 'cam-01', sign: device.sign }]));
    const collectorPort = await freePort();
    collector = spawn(
      process.execPath,
      [CLI, 'collect', '--listen', `127.0.0.1:${collectorPort}`, '--keys', join(dir, 'collector'), '--trust', join(dir, 'trust.yaml'), '--out', out],
      { stdio: 'ignore' },
    );
    const port = await freePort();
    const config = stringify({
      node: { name: 'cam-01', stateDir: join(dir, 'state') },
      keyring: [{ name: 'hq', sign: hq.sign, box: hq.box, roles: ['collector'] }],
      cameras: [{ name: 'door', source: { type: 'directory', path: frames, fps: 30, loop: true }, pipeline: 'text' }],
      models: { det: { file: 'builtin:ppocrv4-det' } },
      pipelines: { text: { stages: [{ name: 'detect', model: 'det', decoder: { type: 'db' } }] } },
      status: { port },
      power: { enabled: false },
      logging: { format: 'json', results: false },
      upload: {
        collector: { url: `http://127.0.0.1:${collectorPort}`, key: 'hq' },
        select: { '*': { mode: 'all', minScore: 0 } },
        frames: { include: true },
        delivery: { retry: { initialMs: 100, maxMs: 400 }, timeoutSeconds: 3 },
      },
    });
    const up = () =>
      fetch(`http://127.0.0.1:${collectorPort}/metrics`).then(
        () => true,
        () => false,
      );
    await waitUntil(up, 'the collector', 100, 50);

    const startedAt: number[] = [];
    for (let start = 0; start < 2; start++) {
      startedAt.push(Date.now());
      const agent = DaemonProcess.start(dir, config);
      try {
        await agent.waitFor('the first result', async () => ((await status(port).catch(() => null))?.cameras?.door?.processed > 0 ? true : undefined));
        if (start === 0) {
          const answers: number[] = [];
          for (let poll = 0; poll < 32; poll++) {
            const res = await fetch(`http://127.0.0.1:${port}/cameras/door/latest.jpg`);
            const body = Buffer.from(await res.arrayBuffer());
            answers.push(res.status);
            if (res.status === 200) expect(body.subarray(0, 2), `poll ${poll}: a JPEG`).toEqual(Buffer.from([0xff, 0xd8]));
            await new Promise((r) => setTimeout(r, 250));
          }
          expect(answers, 'latest.jpg, polled every 250 ms for 8 s').toEqual(answers.map(() => 200));
        }
        // the camera loops: this start's items keep coming until it stops (the next start delivers what is left)
        const upload = await agent.waitFor('an item of this start at the collector', async () => {
          const u = (await status(port).catch(() => null))?.upload;
          return u && storedItems(out).some((i) => i.capturedAt >= startedAt[start]) ? u : undefined;
        });
        expect(upload).toMatchObject({ frameMissing: 0, anonymiseFailed: 0 });
      } finally {
        expect(await agent.stop()).toBe(0);
      }
    }

    const items = storedItems(out);
    const ofStart = (k: number) => items.filter((i) => i.capturedAt >= startedAt[k] && i.capturedAt < (startedAt[k + 1] ?? Infinity));
    const firsts = startedAt.map((_, k) => Math.min(...ofStart(k).map((i) => i.seq)));
    expect(items.filter((i) => firsts.includes(i.seq))).toEqual(firsts.map((seq) => expect.objectContaining({ seq, withFrame: true })));
    expect(
      items.filter((i) => !i.withFrame).map((i) => i.seq),
      'result items stored without their frame',
    ).toEqual([]);
  });
});

describe("the uploader holds a result's frame until its item is written", () => {
  it('at most 16 MiB of frames at once: past that a result goes without its frame (frameMissing), and nothing stays held', async () => {
    const dir = tempDir();
    generateKeys(join(dir, 'keys'));
    const hq = generateKeys(join(dir, 'hq'));
    const config = configSchema.parse({
      node: { name: 'cam-01', stateDir: dir },
      keyring: [{ name: 'hq', sign: hq.sign, box: hq.box, roles: ['collector'] }],
      upload: { collector: { url: 'http://127.0.0.1:1', key: 'hq' }, select: { '*': { mode: 'all', minScore: 0 } }, frames: { include: true } },
    });
    // nobody listens on port 1: every item stays in the outbox, where the test counts it
    const ctx = testContext(config);
    const uploader = new Uploader(ctx, config.upload!, {
      deviceId: 'cam-01',
      keys: () => readKeys(join(dir, 'keys')),
      collector: { box: fromB64(hq.box)!, sign: fromB64(hq.sign)! },
      transport: new HttpTransport('http://127.0.0.1:1', 1000),
    });
    const [small] = await renderDemoFrames(1, 3, 320, 240);
    // a real JPEG that takes 6 MiB (what follows its end marker is not read): two fit under the bound, a third does not
    const frame: Frame = { ...small, data: Buffer.concat([small.data, Buffer.alloc(6 << 20)]) };
    const result: Result = {
      frameId: frame.id,
      camera: frame.camera,
      capturedAt: frame.capturedAt,
      finishedAt: frame.capturedAt,
      model: 'det',
      variant: 'fp32',
      provider: 'cpu',
      placement: 'local',
      timings: { queueMs: 0, decodeMs: 0, preprocessMs: 0, inferMs: 0, postMs: 0, totalMs: 0 },
      output: { text: 'PUMP 1' },
    };
    await uploader.start();
    try {
      const upload = () => uploader.status().upload as Record<string, number>;
      for (let i = 0; i < 4; i++) ctx.bus.emit('result', { result, frame });
      expect(upload()).toMatchObject({ preparing: 4, frameMissing: 2, heldFrameBytes: 2 * frame.data.length });
      await waitUntil(() => upload().preparing === 0, 'the four items written', 400);
      expect(upload()).toMatchObject({ pending: 4, frameMissing: 2, anonymiseFailed: 0, heldFrameBytes: 0 });
    } finally {
      await uploader.stop();
    }
  });
});
