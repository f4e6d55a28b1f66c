import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderDemoFrames } from '../src/camera/index.js';
import { generateKeys } from '../src/crypto/index.js';
import { camera, configYaml, detector, folder, node, trusted, type ConfigData } from './helpers/config.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { Mosquitto } from './helpers/broker.js';
import { missingShared, missingTool } from './helpers/optional.js';
import { CLI, sharedPath, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 12 with real processes: an agent uploading to `outpost collect`, killed and restarted. */
interface Setup {
  dir: string;
  collectorPort: number;
  /** the agent's config; `more` is merged over it */
  config: (opts: { frames: string; fps: number; port: number; more?: ConfigData }) => string;
}

function setup(): Setup {
  const dir = tempDir();
  const device = generateKeys(join(dir, 'state', 'keys'));
  const collector = generateKeys(join(dir, 'collector'));
  writeFileSync(join(dir, 'trust.yaml'), `- { name: cam-01, sign: ${device.sign} }\n`);
  const setupObj: Setup = {
    dir,
    collectorPort: 0,
    config: (o) =>
      configYaml(
        node('cam-01', join(dir, 'state'), o.port),
        { keyring: [trusted('hq', collector, 'collector')] },
        camera('door', folder(o.frames, o.fps)),
        detector(),
        {
          power: { enabled: false },
          upload: {
            collector: { url: `http://127.0.0.1:${setupObj.collectorPort}`, key: 'hq' },
            delivery: { retry: { initialMs: 100, maxMs: 400 }, batchItems: 8, timeoutSeconds: 3 },
          },
          logging: { results: false },
        },
        o.more ?? {},
      ),
  };
  return setupObj;
}

function startCollector(s: Setup, extra: string[] = []): ChildProcess {
  return spawn(
    process.execPath,
    [
      CLI,
      'collect',
      '--listen',
      `127.0.0.1:${s.collectorPort}`,
      '--keys',
      join(s.dir, 'collector'),
      '--trust',
      join(s.dir, 'trust.yaml'),
      '--out',
      join(s.dir, 'out'),
      ...extra,
    ],
    { stdio: 'ignore' },
  );
}

async function collectorUp(s: Setup): Promise<void> {
  await waitUntil(
    () =>
      fetch(`http://127.0.0.1:${s.collectorPort}/metrics`).then(
        () => true,
        () => false,
      ),
    'the collector',
    100,
    50,
  );
}

/** The device's one epoch folder: OUT/cam-01/<epoch>. */
function epochDir(s: Setup): string {
  const device = join(s.dir, 'out', 'cam-01');
  const epochs = readdirSync(device);
  expect(epochs).toHaveLength(1);
  return join(device, epochs[0]);
}

const status = async (port: number) => (await fetch(`http://127.0.0.1:${port}/status`)).json();

describe('uploads through the outbox to outpost collect', () => {
  let frames: string;
  beforeAll(async () => {
    frames = tempDir();
    (await renderDemoFrames(16, 21, 320, 240)).forEach((f, i) => writeFileSync(join(frames, `${String(i).padStart(3, '0')}.jpg`), f.data));
  });

  let collector: ChildProcess | null = null;
  afterAll(() => collector?.kill());

  it('SIGKILLed 10 times at random moments, some while the collector is down: seqs run 1..max, no gap, no duplicate', async () => {
    const s = setup();
    s.collectorPort = await freePort();
    const port = await freePort();
    writeFileSync(join(s.dir, 'outpost.yaml'), s.config({ frames, fps: 8, port }));
    collector = startCollector(s);
    await collectorUp(s);
    for (let round = 0; round < 10; round++) {
      const collectorDown = round >= 3 && round < 6;
      if (collectorDown && collector) {
        collector.kill('SIGKILL');
        collector = null;
      }
      if (!collectorDown && !collector) {
        collector = startCollector(s);
        await collectorUp(s);
      }
      const agent = new DaemonProcess(['run', '--config', join(s.dir, 'outpost.yaml')]);
      await agent.waitForLog('uploads started');
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 1300));
      agent.kill('SIGKILL');
      await agent.exited;
    }
    collector ??= startCollector(s);
    await collectorUp(s);
    const last = new DaemonProcess(['run', '--config', join(s.dir, 'outpost.yaml')]);
    try {
      // the folder camera plays its 16 frames once; then everything drains
      await last.waitFor('the outbox drained', async () => {
        const u = (await status(port).catch(() => null))?.upload;
        const door = u ? (await status(port)).cameras.door : undefined;
        // a loaded machine drops frames (latest wins): every frame is either processed or dropped
        return u && u.pending === 0 && u.preparing === 0 && u.delivered > 0 && door?.processed + door?.dropped >= 16 ? true : undefined;
      });
      expect(await last.stop()).toBe(0);
    } finally {
      last.kill('SIGKILL');
    }
    const verify = runCli(['collect', '--verify', '--out', join(s.dir, 'out'), '--json']);
    expect(verify.code, verify.stdout).toBe(0);
    const [device] = JSON.parse(verify.stdout).devices;
    expect(device.device).toBe('cam-01');
    expect(device.epochs).toHaveLength(1); // the outbox, and so its epoch, survives every SIGKILL
    const [report] = device.epochs;
    expect(report).toMatchObject({ missing: [], dropped: {}, conflicts: 0 });
    expect(report.items).toBe(report.highest);
    expect(report.highest).toBeGreaterThan(16);
  });

  it('holds a backlog while the collector is away and drains it in seq order', async () => {
    const s = setup();
    s.collectorPort = await freePort();
    const port = await freePort();
    const agent = DaemonProcess.start(s.dir, s.config({ frames, fps: 8, port }));
    try {
      await agent.waitFor('a backlog of 10', async () => ((await status(port).catch(() => null))?.upload?.pending >= 10 ? true : undefined));
      const c = startCollector(s);
      try {
        await collectorUp(s);
        await agent.waitFor('the outbox drained', async () => ((await status(port)).upload.pending === 0 ? true : undefined));
      } finally {
        c.kill();
      }
    } finally {
      expect(await agent.stop()).toBe(0);
    }
    const dir = epochDir(s);
    const bySeq = readdirSync(dir)
      .filter((f) => /^\d+\.json$/.test(f))
      .map((f) => ({ seq: Number(f.split('.')[0]), written: statSync(join(dir, f)).mtimeMs }))
      .sort((a, b) => a.seq - b.seq);
    expect(bySeq.length).toBeGreaterThanOrEqual(10);
    for (let i = 1; i < bySeq.length; i++) expect(bySeq[i].written, `seq ${bySeq[i].seq}`).toBeGreaterThanOrEqual(bySeq[i - 1].written);
  });
});

describe.skipIf(missingTool('mosquitto', 'mosquitto'))('uploads over MQTT, for sites where only the broker is reachable', () => {
  it('publishes batches on <base>/<device>/upload; the collector answers on upload/ack; items leave only then', async () => {
    const frames = tempDir();
    (await renderDemoFrames(6, 22, 320, 240)).forEach((f, i) => writeFileSync(join(frames, `${i}.jpg`), f.data));
    const broker = await Mosquitto.start();
    const s = setup();
    s.collectorPort = await freePort();
    const port = await freePort();
    const more = { upload: { transport: 'mqtt' }, telemetry: { mqtt: { url: broker.url, reconnect: { initialMs: 200, maxMs: 400 } } } };
    const agent = DaemonProcess.start(s.dir, s.config({ frames, fps: 6, port, more }));
    let collector: ChildProcess | null = null;
    let processed = 0;
    try {
      await agent.waitFor('a backlog while no collector listens', async () =>
        (await status(port).catch(() => null))?.upload?.pending >= 3 ? true : undefined,
      );
      collector = startCollector(s, ['--mqtt', broker.url]);
      await agent.waitFor('the outbox drained over MQTT', async () => {
        const st = await status(port);
        const door = st.cameras.door;
        processed = door?.processed;
        // a loaded machine drops frames (latest wins): every frame is either processed or dropped
        return st.upload.pending === 0 && st.upload.preparing === 0 && door?.processed + door?.dropped >= 6 ? true : undefined;
      });
    } finally {
      expect(await agent.stop()).toBe(0);
      collector?.kill();
      await broker.down();
    }
    const verify = runCli(['collect', '--verify', '--out', join(s.dir, 'out'), '--json']);
    expect(verify.code, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout).devices[0]).toMatchObject({ device: 'cam-01', epochs: [{ highest: processed, items: processed, missing: [] }] });
  });
});

const ultraface = sharedPath('models/ultraface/version-RFB-320.onnx');
const faces = sharedPath('data/faces');

describe.skipIf(missingShared(!!ultraface && !!faces, '../shared UltraFace and faces'))('anonymised frames (../shared/data/faces)', () => {
  it('no uploaded frame has a face UltraFace can still find', async () => {
    const s = setup();
    s.collectorPort = await freePort();
    const port = await freePort();
    const more = {
      models: { det: undefined, ultraface: { file: ultraface } },
      pipelines: { text: { stages: [{ name: 'faces', model: 'ultraface', decoder: { type: 'ssd', scoreThreshold: 0.5, labels: ['background', 'face'] } }] } },
      upload: { frames: { include: true, maxWidth: 640, quality: 85 }, anonymise: { faces: { model: 'ultraface', minScore: 0.3, method: 'blur' } } },
    };
    const collector = startCollector(s);
    await collectorUp(s);
    const agent = DaemonProcess.start(s.dir, s.config({ frames: faces!, fps: 4, port, more }));
    const photos = readdirSync(faces!).filter((f) => f.endsWith('.jpg')).length;
    let anonymiseFailed = 0;
    try {
      await agent.waitFor('every photo uploaded', async () => {
        const st = await status(port).catch(() => null);
        return st?.upload?.pending === 0 && st.upload.preparing === 0 && st.cameras.door?.processed >= photos ? true : undefined;
      });
      anonymiseFailed = (await status(port)).upload.anonymiseFailed;
    } finally {
      expect(await agent.stop()).toBe(0);
      collector.kill();
    }
    const out = epochDir(s);
    const jpgs = readdirSync(out).filter((f) => f.endsWith('.jpg'));
    // a frame whose faces could not all be hidden is not uploaded (counted); its result still is
    expect(jpgs.length + anonymiseFailed).toBe(photos);
    expect(jpgs.length).toBeGreaterThanOrEqual(photos - 2);
    const check = join(s.dir, 'check');
    mkdirSync(check);
    writeFileSync(
      join(check, 'outpost.yaml'),
      configYaml({
        node: { stateDir: join(check, 'state') },
        models: { ultraface: { file: ultraface } },
        pipelines: { faces: { stages: [{ name: 'faces', model: 'ultraface', decoder: { type: 'ssd', labels: ['background', 'face'] } }] } },
      }),
    );
    const found = (input: string) =>
      runCli(['infer', '--config', join(check, 'outpost.yaml'), '--input', input, '--json'])
        .stdout.trim()
        .split('\n')
        .map((l) => JSON.parse(l).output.detections.length as number);
    expect(found(faces!).filter((n) => n > 0).length).toBe(photos); // the originals all have faces
    expect(found(out).filter((n) => n > 0)).toEqual([]);
  });
});
