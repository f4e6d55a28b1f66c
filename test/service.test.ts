import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderDemoFrames } from '../src/camera/index.js';
import { configSchema } from '../src/config/index.js';
import { generateKeys } from '../src/crypto/index.js';
import { ServiceWatchdog, SystemdNotifier, type CameraLiveness, type NotifyFields } from '../src/service/index.js';
import { testContext } from './helpers/context.js';
import { camera, configYaml, detector, folder, merged, node, trusted, type ConfigData } from './helpers/config.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { NotifySocket } from './helpers/notifySocket.js';
import { missingTool } from './helpers/optional.js';
import { CLI, ROOT, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 14: the systemd unit, the installer, and the notify protocol against a real unix datagram socket. */
const UNIT = join(ROOT, 'systemd/outpost.service');

describe.skipIf(missingTool('systemd-analyze', 'systemd'))('the unit', () => {
  it('passes systemd-analyze verify (ExecStart pointed at a real program)', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'outpost.service'), readFileSync(UNIT, 'utf8').replaceAll('/opt/outpost/bin/outpost', join(ROOT, 'scripts/install.sh')));
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'outpost.service')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('has an exposure of at most 2.5 in systemd-analyze security --offline=yes, with the camera and the network still allowed', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', UNIT], { encoding: 'utf8' });
    const level = Number(/Overall exposure level for outpost\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(level).toBeLessThanOrEqual(2.5);
    const unit = readFileSync(UNIT, 'utf8');
    expect(unit).toMatch(/^DeviceAllow=char-video4linux rw$/m);
    expect(unit).toMatch(/^SupplementaryGroups=video$/m);
    expect(unit).toMatch(/^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK$/m);
    expect(unit).not.toMatch(/^(MemoryDenyWriteExecute|PrivateDevices)=yes/m); // V8's JIT; /dev/video*
    expect(unit).toMatch(/^RestartPreventExitStatus=78$/m);
  });
});

/** Path, type, mode, owner and content hash of every entry under `dir`. */
function manifest(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      const rel = relative(dir, p);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${rel}/ ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
        if (rel !== 'opt/outpost/node_modules') walk(p);
      } else
        out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`);
    }
  };
  walk(dir);
  return out;
}

describe('scripts/install.sh into a DESTDIR', () => {
  const dest = tempDir('outpost-destdir-');
  const install = (...args: string[]) =>
    spawnSync('bash', [join(ROOT, 'scripts/install.sh'), ...args], { env: { ...process.env, DESTDIR: dest }, encoding: 'utf8', timeout: 300_000 });
  let first: ReturnType<typeof install>;
  beforeAll(() => {
    first = install();
  });

  it('a dry run changes nothing', () => {
    const dry = tempDir('outpost-dry-');
    const r = spawnSync('bash', [join(ROOT, 'scripts/install.sh'), '--dry-run'], { env: { ...process.env, DESTDIR: dry }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\+ install -D -m 0644 .*dist/m);
    expect(readdirSync(dry)).toEqual([]);
  });

  it('installs the program, a starter config and the enabled unit, and no keys', () => {
    expect(first.status, first.stderr + first.stdout).toBe(0);
    const files = manifest(dest);
    expect(files).toContainEqual(expect.stringMatching(/^opt\/outpost\/bin\/outpost 755 /));
    expect(files).toContainEqual(expect.stringMatching(/^etc\/outpost\/ 750 /));
    expect(files).toContainEqual(expect.stringMatching(/^etc\/outpost\/outpost\.yaml 640 /));
    // no secret key in a package tree: every board installed from it would share one identity
    expect(files.filter((f) => f.startsWith('var/lib/outpost/keys'))).toEqual([]);
    expect(first.stdout).toMatch(/DESTDIR: no keys written/);
    expect(files).toContainEqual(expect.stringMatching(/^etc\/systemd\/system\/outpost\.service 644 /));
    expect(files).toContain('etc/systemd/system/multi-user.target.wants/outpost.service -> /etc/systemd/system/outpost.service');
    expect(files).toContain('usr/local/bin/outpost -> /opt/outpost/bin/outpost');
    // only this platform's onnxruntime binaries are kept
    expect(readdirSync(join(dest, 'opt/outpost/node_modules/onnxruntime-node/bin/napi-v6'))).toEqual(['linux']);
    // the installed program runs on its own dependencies and reads the starter config
    const check = spawnSync(process.execPath, [join(dest, 'opt/outpost/dist/cli.js'), 'check-config', '--config', join(dest, 'etc/outpost/outpost.yaml')], {
      encoding: 'utf8',
    });
    expect(check.stdout, check.stderr).toMatch(/: ok \(2 models, 1 pipelines, 1 cameras\)/);
  });

  it('a second run changes nothing and never touches an edited config', () => {
    const config = join(dest, 'etc/outpost/outpost.yaml');
    writeFileSync(config, `${readFileSync(config, 'utf8')}# edited by hand\n`);
    const before = manifest(dest);
    const again = install();
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/Done: 0 change\(s\)/);
    expect(again.stdout).toMatch(/kept \/etc\/outpost\/outpost\.yaml/);
    expect(manifest(dest)).toEqual(before);
  });

  it('outpost doctor --root checks the installed tree', () => {
    const r = runCli(['doctor', '--root', dest, '--config', join(dest, 'etc/outpost/outpost.yaml'), '--json']);
    const found = Object.fromEntries((JSON.parse(r.stdout).findings as { check: string; ok: boolean }[]).map((f) => [f.check, f.ok]));
    expect(found).toMatchObject({ config: true, 'service unit': true, 'service enabled': true, keys: true, 'state folder': true });
    expect(found['service user']).toBe(false); // a DESTDIR has no outpost user: the package's postinst makes it
  });

  it('uninstall keeps the config; --purge removes it and the state folder', () => {
    const un = (...a: string[]) => spawnSync('bash', [join(ROOT, 'scripts/uninstall.sh'), ...a], { env: { ...process.env, DESTDIR: dest }, encoding: 'utf8' });
    expect(un().status).toBe(0);
    expect(existsSync(join(dest, 'opt/outpost'))).toBe(false);
    expect(existsSync(join(dest, 'etc/systemd/system/outpost.service'))).toBe(false);
    expect(existsSync(join(dest, 'etc/outpost/outpost.yaml'))).toBe(true);
    expect(un('--purge').status).toBe(0);
    expect(existsSync(join(dest, 'etc/outpost'))).toBe(false);
    expect(existsSync(join(dest, 'var/lib/outpost'))).toBe(false);
  });
});

let frames: string;
beforeAll(async () => {
  frames = tempDir();
  (await renderDemoFrames(16, 5, 320, 240)).forEach((f, i) => writeFileSync(join(frames, `${String(i).padStart(3, '0')}.jpg`), f.data));
});

const WATCHDOG = { WATCHDOG_USEC: '1000000' }; // a ping every 0.5 s while frames flow

/** A node named after its folder: the detector on a looping folder camera (unless `camera` is false); `more` merged over it. */
function config(dir: string, o: { port: number; more?: ConfigData; camera?: boolean } = { port: 0 }): string {
  return configYaml(
    node(dir.split('/').at(-1)!, join(dir, 'state'), o.port),
    o.camera === false ? {} : camera('door', folder(frames, 3, true)),
    detector(),
    { power: { enabled: false }, logging: { results: true } },
    o.more ?? {},
  );
}

describe('the notify protocol, on a real unix datagram socket', () => {
  it('READY after the first result, WATCHDOG with STATUS while frames flow, RELOADING then READY on SIGHUP, STOPPING on SIGTERM', async () => {
    const sock = await NotifySocket.bind();
    const dir = tempDir();
    const d = DaemonProcess.start(dir, config(dir, { port: await freePort() }), { NOTIFY_SOCKET: sock.path, ...WATCHDOG });
    try {
      await sock.waitFor('READY');
      const ready = sock.with('READY')[0];
      const firstResult = d.logs.find((l) => l.msg === 'result') as { time: number } | undefined;
      expect(firstResult, 'a result came before READY').toBeDefined();
      expect(ready.at).toBeGreaterThanOrEqual(firstResult!.time);
      expect(ready.fields).toEqual({ READY: '1', STATUS: 'running (first result)' });
      await sock.waitFor('WATCHDOG', 'pings', 4);
      expect(sock.with('WATCHDOG').at(-1)!.fields.STATUS).toMatch(/^\d+\.\d fps, level nominal$/);

      writeFileSync(join(dir, 'outpost.yaml'), config(dir, { port: 0, more: { logging: { results: false } } }));
      d.kill('SIGHUP');
      await sock.waitFor('READY', 'READY after the reload', 2);
      const reloading = sock.with('RELOADING')[0];
      expect(reloading.fields.MONOTONIC_USEC).toMatch(/^\d+$/);
      expect(sock.messages.indexOf(reloading)).toBeLessThan(sock.messages.indexOf(sock.with('READY')[1]));
      expect(sock.with('READY')[1].fields.STATUS).toBe('running (configuration reloaded)');

      expect(await d.stop()).toBe(0);
      await sock.waitFor('STOPPING');
      expect(sock.with('STOPPING')[0].fields.STATUS).toBe('stopping (SIGTERM)');
    } finally {
      d.kill('SIGKILL');
      sock.close();
    }
  });

  it('withholds WATCHDOG while frames wait and none finish (a frozen offload peer), and pings again once they run here', async () => {
    const sock = await NotifySocket.bind();
    const root = tempDir();
    const [a, b] = ['node-a', 'node-b'].map((n) => join(root, n));
    const [ka, kb] = [a, b].map((d) => generateKeys(join(d, 'state', 'keys')));
    const bPort = await freePort();
    const trust = (name: string, k: { sign: string; box: string }) => ({ keyring: [trusted(name, k, 'peer')] });
    const peer = DaemonProcess.start(
      b,
      config(b, { port: 0, camera: false, more: merged(trust('node-a', ka), { offload: { serve: { enabled: true, host: '127.0.0.1', port: bPort } } }) }),
    );
    await peer.waitForLog('serving frames for peers');
    const offload = {
      offload: {
        peers: [{ name: 'node-b', url: `http://127.0.0.1:${bPort}` }],
        stages: { text: ['detect'] },
        placement: { timeoutMs: 4000, maxInflightPerPeer: 64 },
        breaker: { failures: 100, restSeconds: 60 },
      },
      power: { policy: { nominal: { precision: 'fp32', offloadBias: 1, pauseOptionalJobs: false } } },
    };
    const requester = DaemonProcess.start(a, config(a, { port: 0, more: merged(trust('node-b', kb), offload) }), { NOTIFY_SOCKET: sock.path, ...WATCHDOG });
    try {
      await requester.waitForLog('peer passed its known-answer probe');
      await requester.waitFor('frames answered by the peer', () =>
        requester.logs.filter((l) => l.msg === 'result' && JSON.stringify(l.placement) === '{"peer":"node-b"}').length >= 3 ? true : undefined,
      );
      const pingsBefore = sock.with('WATCHDOG').length;
      expect(pingsBefore).toBeGreaterThan(0);
      peer.kill('SIGSTOP');
      const frozenAt = Date.now();
      const stalled = await requester.waitForLog('pipeline stalled: watchdog ping withheld');
      expect(String(stalled.why)).toMatch(/frames waited a whole interval and none finished/);
      await requester.waitForLog('offload failed; running the frame here');
      await waitUntil(() => sock.with('WATCHDOG').some((m) => m.at > frozenAt + 4000), 'pings again after the frames ran here', 400, 50);
      const pings = sock.with('WATCHDOG').map((m) => m.at);
      const gaps = pings.slice(1).map((at, i) => (at > frozenAt ? at - pings[i] : 0));
      expect(Math.max(...gaps)).toBeGreaterThan(2000); // no ping for seconds while the frames hung
      expect(sock.with('STATUS').some((m) => /stalled: \d+ frames waited/.test(m.fields.STATUS))).toBe(true);
    } finally {
      peer.kill('SIGKILL');
      await requester.stop();
      sock.close();
    }
  });

  it('exits 78 on a bad config without ever saying READY', async () => {
    const sock = await NotifySocket.bind();
    const dir = tempDir();
    const d = DaemonProcess.start(
      dir,
      config(dir, { port: 0, more: { pipelines: { text: { stages: [{ name: 'detect', model: 'det', decoder: { type: 'dbx' } }] } } } }),
      { NOTIFY_SOCKET: sock.path, ...WATCHDOG },
    );
    expect((await d.exited).code).toBe(78);
    await new Promise((r) => setTimeout(r, 300));
    expect(sock.with('READY')).toEqual([]);
    sock.close();
  });

  it('logs to journald as JSON with each line’s syslog priority (<6> info, <3> error, <2> fatal) when stderr is the journal stream', async () => {
    const dir = tempDir();
    /** Runs the daemon with stderr in a file announced as the journal stream; `until` ends it. */
    const journal = async (port: number, until: (child: ChildProcess) => void) => {
      writeFileSync(join(dir, 'outpost.yaml'), config(dir, { port, camera: false }));
      const file = join(dir, `journal-${port}.log`);
      const fd = openSync(file, 'w');
      const st = statSync(file);
      const env = { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` };
      const child = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'outpost.yaml')], { stdio: ['ignore', 'ignore', fd], env });
      closeSync(fd);
      until(child);
      const code = await new Promise((r) => child.on('exit', r));
      return { code, lines: readFileSync(file, 'utf8').split('\n').filter(Boolean) };
    };
    const running = await journal(await freePort(), (child) => setTimeout(() => child.kill('SIGTERM'), 5000)); // no cameras: up in ~2 s
    expect(running.code).toBe(0);
    expect(running.lines.every((l) => /^<\d>\{/.test(l) && JSON.parse(l.slice(3)).level > 0)).toBe(true);
    expect(running.lines.find((l) => l.includes('"outpost running"'))).toMatch(/^<6>\{"level":30/);

    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const failed = await journal((blocker.address() as { port: number }).port, () => undefined);
    blocker.close();
    expect(failed.code).toBe(75);
    expect(failed.lines.find((l) => l.includes('"start-up failed"'))).toMatch(/^<2>\{"level":60/);
    expect(failed.lines).toContainEqual(expect.stringMatching(/^<3>outpost: OUTPOST_E_PORT: status\.port \d+ .* already in use/));
  });
});

describe('the service watchdog’s rules', () => {
  class Captured extends SystemdNotifier {
    readonly sent: NotifyFields[] = [];
    override send(fields: NotifyFields): void {
      this.sent.push(fields);
    }
  }
  const frame = { id: 'f', camera: 'door', seq: 0, capturedAt: 0, data: Buffer.alloc(0), encoding: 'jpeg' as const, width: 0, height: 0 };
  const result = {
    frameId: 'f',
    camera: 'door',
    capturedAt: 0,
    finishedAt: 0,
    model: 'm',
    variant: 'fp32',
    provider: 'cpu',
    placement: 'local' as const,
    output: {},
  };
  const timings = { queueMs: 0, decodeMs: 0, preprocessMs: 0, inferMs: 0, postMs: 0, totalMs: 0 };

  async function watched(cameras: () => CameraLiveness) {
    const ctx = testContext(configSchema.parse({}));
    const notifier = new Captured('/nowhere', ctx.log);
    const dog = new ServiceWatchdog(ctx, notifier, cameras, 200_000); // a tick every 100 ms
    await dog.start();
    const ticks = async (n: number) => new Promise((r) => setTimeout(r, n * 100 + 30));
    return { ctx, notifier, dog, ticks, pings: () => notifier.sent.filter((f) => 'WATCHDOG' in f).length };
  }

  it('with no cameras: READY at once and a ping every interval', async () => {
    const w = await watched(() => ({ cameras: 0, dead: [] }));
    expect(w.notifier.sent[0]).toEqual({ READY: 1, STATUS: 'running (no cameras)' });
    await w.ticks(3);
    expect(w.pings()).toBeGreaterThanOrEqual(2);
    await w.dog.stop();
  });

  it('withholds pings while a frame waits and none finishes, pings again once one does; a motion-gate skip is progress', async () => {
    const w = await watched(() => ({ cameras: 1, dead: [] }));
    w.ctx.bus.emit('frame.received', frame);
    await w.ticks(3);
    expect(w.dog.stalled()).toMatch(/1 frames waited a whole interval and none finished/);
    const withheld = w.dog.withheld;
    expect(withheld).toBeGreaterThan(0);
    const before = w.pings();
    w.ctx.bus.emit('result', { result: { ...result, timings }, frame });
    await w.ticks(2);
    expect(w.pings()).toBeGreaterThan(before);
    expect(w.notifier.sent.find((f) => 'READY' in f)).toEqual({ READY: 1, STATUS: 'running (first result)' });
    w.ctx.bus.emit('frame.received', frame);
    w.ctx.bus.emit('frame.skipped', { camera: 'door', reason: 'no-motion' });
    const after = w.pings();
    await w.ticks(2);
    expect(w.pings()).toBeGreaterThan(after);
    await w.dog.stop();
  });

  it('withholds pings while a camera’s frame loop is dead, naming it', async () => {
    const dead: string[] = [];
    const w = await watched(() => ({ cameras: 2, dead }));
    await w.ticks(2);
    const before = w.pings();
    expect(before).toBeGreaterThan(0); // quiet cameras are not a hang
    dead.push('gate');
    await w.ticks(3);
    expect(w.pings()).toBe(before);
    expect(w.notifier.sent.at(-1)!.STATUS).toMatch(/stalled: the frame loop of gate ended/);
    await w.dog.stop();
  });
});
