import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeys, ItemSealer, readKeys } from '../src/crypto/index.js';
import { openBroker } from '../src/mqtt/index.js';
import { encodeBatch, RESULT_TYPE } from '../src/upload/index.js';
import { Mosquitto } from './helpers/broker.js';
import { DaemonProcess, freePort, runCli } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { CLI, tempDir } from './helpers/paths.js';
import { waitUntil } from './helpers/wait.js';

/** Issue 19 items 4, 6, 8, 9 (keys show) and 10 (ffmpeg, fonts) with the real CLI and a real Mosquitto. */
const noBroker = missingTool('mosquitto', 'mosquitto') || missingTool('mosquitto_passwd', 'mosquitto') || missingTool('mosquitto_pub', 'mosquitto-clients');

/** A CLI process left running: its stdout lines and its stderr as they come. */
class Cli {
  readonly lines: string[] = [];
  stderr = '';
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      const parts = (buf + c.toString()).split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  rows(): { device: string; state: string; stale: boolean }[] {
    return this.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  }

  async waitFor(what: string, check: () => boolean): Promise<void> {
    await waitUntil(check, `${what}; stderr: ${this.stderr.slice(-1500)}`, 400, 50);
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}

const stack = /\n\s+at /;

describe('the CLI refuses bad input with exit 64 before anything is sent', () => {
  const dir = tempDir();
  const keys = join(dir, 'op');
  generateKeys(keys);
  const trust = join(dir, 'trust.yaml');
  writeFileSync(trust, `- { name: cam-01, sign: ${generateKeys(join(dir, 'cam-01')).sign} }\n`);
  const url = 'mqtt://127.0.0.1:1'; // nothing listens: every case must fail before connecting
  it.each([
    [['command', '+', 'status', '-b', url, '-k', keys, '--trust', trust], /device id "\+" cannot be a topic level/],
    [['command', 'cam#01', 'status', '-b', url, '-k', keys, '--trust', trust], /device id "cam#01"/],
    [['command', 'cam/01', 'status', '-b', url, '-k', keys, '--trust', trust], /device id "cam\/01"/],
    [
      ['command', 'cam-01', 'status', '-b', url, '-k', keys, '--trust', trust, '--timeout', 'abc'],
      /--timeout <seconds>' argument 'abc' is invalid: expected a number/,
    ],
    [['monitor', '-b', url, '--for', 'abc'], /--for <seconds>' argument 'abc' is invalid/],
    [['command', 'cam-01', 'status', '-b', url], /required option '-k, --key <dir>' not specified; see outpost command --help/],
    [['monitor', '-b', url, '--bogus'], /unknown option '--bogus'; see outpost monitor --help/],
    [
      ['command', 'cam-01', 'status', '-b', url, '-k', join(keys, 'secret.json'), '--trust', trust],
      /--key \S+secret\.json is a file; give the folder .*: --key \S+op$/m,
    ],
    [['monitor', '-b', '127.0.0.1:1883'], /--broker 127\.0\.0\.1:1883: it has no scheme; .* such as mqtt:\/\/127\.0\.0\.1:1883/],
    [
      ['command', 'cam-01', 'status', '-b', 'http://127.0.0.1:1883', '-k', keys, '--trust', trust],
      /http:\/\/ is not a broker scheme; .* such as mqtt:\/\/127\.0\.0\.1:1883/,
    ],
    [['collect', '--out', dir, '--keys', keys, '--trust', keys, '--mqtt', 'https://h:8883'], /--mqtt https:\/\/h:8883: .* such as mqtts:\/\/h:8883/],
    [['monitor'], /--broker URL is needed \(or --config FILE/],
    [['keys', 'show', '--dir', keys, '--role', 'boss'], /--role boss: expected one of operator, peer, collector/],
  ])('%j', (args, message) => {
    const r = runCli(args);
    expect(r.stderr).toMatch(/^outpost: OUTPOST_E_USAGE: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(stack);
    expect(r.code).toBe(64);
  });

  it('a --trust file that does not exist exits 66 and says what belongs there', () => {
    const r = runCli(['command', 'cam-01', 'status', '-b', url, '-k', keys, '--trust', join(dir, 'missing.yaml')]);
    expect(r.stderr).toMatch(/^outpost: OUTPOST_E_NOINPUT: --trust \S+missing\.yaml does not exist; .*outpost keys show/);
    expect(r.code).toBe(66);
  });

  it('keys show --role prints the keyring line for that role', () => {
    expect(runCli(['keys', 'show', '--dir', keys]).stdout).toMatch(/- \{ name: NAME, sign: \S+, box: \S+, roles: \[peer\] \}/);
    const r = runCli(['keys', 'show', '--dir', keys, '--role', 'operator']);
    expect(r.stdout).toMatch(/- \{ name: NAME, sign: \S+, box: \S+, roles: \[operator\] \}/);
    expect(r.code).toBe(0);
  });
});

/** A node's config as `outpost doctor` finds it installed under a root. */
const boardConfig = (o: { broker: string; collectorPort: number; box: string; sign: string }) => `node:
  name: CHANGE-ME
  stateDir: /var/lib/outpost
keyring:
  - { name: hq, box: ${o.box}, sign: ${o.sign}, roles: [collector] }
cameras:
  - { name: demo, source: { type: demo, width: 320, height: 240, fps: 1 }, pipeline: text }
  - { name: gate, source: { type: rtsp, url: "rtsp://127.0.0.1:1/stream" }, pipeline: text }
models:
  det: { file: builtin:ppocrv4-det }
pipelines:
  text: { stages: [{ name: detect, model: det, decoder: { type: db } }] }
telemetry:
  mqtt: { url: "${o.broker}" }
upload:
  collector: { url: "http://127.0.0.1:${o.collectorPort}", key: hq }
`;

describe.skipIf(noBroker)('operator tools on a real Mosquitto', () => {
  let broker: Mosquitto;
  const running: Cli[] = [];
  const dir = tempDir();

  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(async () => {
    running.forEach((c) => c.stop());
    await broker?.down();
  });

  const start = (args: string[], env?: NodeJS.ProcessEnv) => {
    const c = new Cli(args, env);
    running.push(c);
    return c;
  };

  it('monitor shows a retained online status at once, not STALE until the next telemetry', () => {
    broker.pub('outpost/cam-07/status', JSON.stringify({ state: 'online', bdSeq: 1 }), true);
    const json = runCli(['monitor', '-b', broker.url, '--json', '--for', '1']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout.split('\n').find((l) => l.includes('cam-07'))!)).toMatchObject({ device: 'cam-07', state: 'online', stale: false });
    const table = runCli(['monitor', '-b', broker.url, '--for', '1']);
    expect(table.stdout).toMatch(/^cam-07 +online/m);
    expect(table.stdout).not.toContain('STALE');
  });

  it('monitor | head -1: the reader going away ends monitor quietly with exit 0', async () => {
    const shell = spawn('bash', ['-c', `"${process.execPath}" "${CLI}" monitor -b ${broker.url} --json | head -1; exit \${PIPESTATUS[0]}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    shell.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => shell.on('exit', (code) => r(code)));
    let code: number | null | undefined;
    void exited.then((c) => (code = c));
    // telemetry keeps coming, so monitor writes again after head has gone
    for (let i = 0; i < 200 && code === undefined; i++) {
      broker.pub('outpost/cam-07/telemetry', JSON.stringify({ at: new Date().toISOString(), intervalSeconds: 1 }));
      await new Promise((r) => setTimeout(r, 100));
    }
    if (code === undefined) shell.kill('SIGKILL');
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/EPIPE|Error/);
  });

  it('monitor and collect --mqtt survive a broker restart: both receive again once it is back', async () => {
    const collectorKeys = join(dir, 'collector');
    generateKeys(collectorKeys);
    writeFileSync(join(dir, 'trust.yaml'), `- { name: cam-01, sign: ${generateKeys(join(dir, 'cam-01')).sign} }\n`);
    const device = readKeys(join(dir, 'cam-01'));
    const collectorBox = readKeys(collectorKeys).box.publicKey;
    let seq = 0;
    const monitor = start(['monitor', '-b', broker.url, '--json']);
    const collect = start([
      'collect',
      '--listen',
      '127.0.0.1:0',
      '--keys',
      collectorKeys,
      '--trust',
      join(dir, 'trust.yaml'),
      '--out',
      join(dir, 'out'),
      '--mqtt',
      broker.url,
    ]);
    /** A batch of cam-01's on its upload topic gets the collector's signed answer on upload/ack. */
    const collectorAnswers = async (): Promise<boolean> => {
      const client = await openBroker(broker.url);
      try {
        const acked = new Promise<boolean>((r) => client.on('message', () => r(true)));
        await client.subscribeAsync('outpost/cam-01/upload/ack', { qos: 1 });
        const item = new ItemSealer(device.sign, collectorBox).seal(
          { device: 'cam-01', epoch: 'ab'.repeat(16), seq: ++seq, contentType: RESULT_TYPE, capturedAt: Date.now() },
          Buffer.from('{}'),
        );
        const batch = randomBytes(16).toString('hex');
        await client.publishAsync('outpost/cam-01/upload', encodeBatch([item]), { qos: 1, properties: { correlationData: Buffer.from(batch) } });
        return await Promise.race([acked, new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
      } finally {
        await client.endAsync();
      }
    };
    broker.pub('outpost/cam-08/status', JSON.stringify({ state: 'online', bdSeq: 1 }), true);
    await monitor.waitFor('monitor shows cam-08', () => monitor.rows().some((r) => r.device === 'cam-08'));
    await waitUntil(collectorAnswers, 'the collector answering before the restart', 30, 100);

    await broker.down();
    await monitor.waitFor('monitor saying it lost the broker', () => /lost the broker .*reconnecting in/.test(monitor.stderr));
    await collect.waitFor('collect saying it lost the broker', () => /lost the broker .*reconnecting in/.test(collect.stderr));
    await broker.up();
    await monitor.waitFor('monitor reconnected', () => monitor.stderr.includes('reconnected to the broker'));
    broker.pub('outpost/cam-09/status', JSON.stringify({ state: 'online', bdSeq: 1 }), true);
    await monitor.waitFor('monitor shows cam-09, published after the restart', () => monitor.rows().some((r) => r.device === 'cam-09' && r.state === 'online'));
    await waitUntil(collectorAnswers, 'the collector answering after the restart', 60, 100);
    expect(monitor.child.exitCode).toBeNull();
    expect(collect.child.exitCode).toBeNull();
  });

  it('monitor logs in with --username/--password-file or a node config, and says a refused login is one', async () => {
    const passwords = join(tempDir('outpost-passwd-'), 'mosquitto.passwd');
    chmodSync(dirname(passwords), 0o755); // mosquitto reads it as its own user
    spawnSync('mosquitto_passwd', ['-c', '-b', passwords, 'operator', 's3cret'], { stdio: 'ignore' });
    const secured = await Mosquitto.start({ passwordFile: passwords });
    try {
      const pub = (topic: string) =>
        spawnSync('mosquitto_pub', ['-p', String(secured.port), '-u', 'operator', '-P', 's3cret', '-t', topic, '-m', '{"state":"online"}', '-r', '-q', '1']);
      expect(pub('outpost/cam-10/status').status).toBe(0);
      expect(pub('site/cam-11/status').status).toBe(0);
      writeFileSync(join(dir, 'password'), 's3cret\n');

      const anonymous = runCli(['monitor', '-b', secured.url, '--for', '1']);
      expect(anonymous.stderr).toMatch(/^outpost: OUTPOST_E_REFUSED: the broker mqtt:\/\/127\.0\.0\.1:\d+ refused the login \(.*\); check --username/);
      expect(anonymous.code).toBe(1);

      const flags = runCli(['monitor', '-b', secured.url, '--username', 'operator', '--password-file', join(dir, 'password'), '--json', '--for', '1']);
      expect(flags.stdout).toContain('"device":"cam-10"');
      expect(flags.code).toBe(0);

      const node = join(dir, 'node.yaml');
      writeFileSync(
        node,
        `node: { name: cam-11, stateDir: ${join(dir, 'state')} }\ntelemetry:\n  mqtt: { url: "${secured.url}", username: operator, password: !file ${join(dir, 'password')}, baseTopic: site }\n`,
      );
      const fromConfig = runCli(['monitor', '--config', node, '--json', '--for', '1']);
      expect(fromConfig.stdout).toContain('"device":"cam-11"');
      expect(fromConfig.code).toBe(0);
    } finally {
      await secured.down();
    }
  });

  it('doctor under --root reads the installed config: paths under the root once, CHANGE-ME, broker, collector, ffmpeg and fonts', async () => {
    const root = tempDir('outpost-root-');
    mkdirSync(join(root, 'etc/outpost'), { recursive: true });
    const hq = generateKeys(join(dir, 'hq'));
    generateKeys(join(root, 'var/lib/outpost/keys'));
    writeFileSync(join(root, 'etc/outpost/outpost.yaml'), boardConfig({ broker: broker.url, collectorPort: await freePort(), box: hq.box, sign: hq.sign }));
    // no ffmpeg on this PATH, and the fixture tree has no fontconfig
    const r = runCli(['doctor', '--root', root, '--json'], { PATH: '/nonexistent', OUTPOST_CONFIG: '' });
    const found = Object.fromEntries(
      (JSON.parse(r.stdout).findings as { check: string; ok: boolean; detail: unknown; fix?: string; optional?: boolean }[]).map((f) => [f.check, f]),
    );
    expect(found.config).toMatchObject({ ok: true, detail: `${join(root, 'etc/outpost/outpost.yaml')}: valid` });
    expect(String(found.keys.detail)).toMatch(new RegExp(`^${join(root, 'var/lib/outpost/keys')}: 0700`));
    expect(String(found['state folder'].detail).split(root).length).toBe(2);
    expect(found['node name']).toMatchObject({ ok: false });
    expect(found.broker).toMatchObject({ ok: true, detail: `${broker.url}: connected` });
    expect(found.collector).toMatchObject({ ok: false });
    expect(found.ffmpeg).toMatchObject({ ok: false, optional: false });
    expect(found.ffmpeg.fix).toContain('cameras gate need it');
    expect(found.fonts).toMatchObject({ ok: false, optional: false, fix: 'apt-get install fontconfig fonts-dejavu-core' });
    expect(r.code).toBe(1);

    const bare = runCli(['doctor', '--root', tempDir('outpost-root-'), '--json'], { OUTPOST_CONFIG: '' });
    const config = (JSON.parse(bare.stdout).findings as { check: string; detail: string }[]).find((f) => f.check === 'config')!;
    expect(config.detail).toMatch(/no installed config at \S+\/etc\/outpost\/outpost\.yaml; checked \S+ instead/);
  });
});

describe('a camera whose ffmpeg is not installed', () => {
  it('says "cannot start ffmpeg (ENOENT); install it", not "Premature close"', async () => {
    const dir = tempDir();
    const daemon = DaemonProcess.start(
      dir,
      `node: { name: cam-12, stateDir: ${join(dir, 'state')} }
cameras:
  - { name: gate, source: { type: rtsp, url: "rtsp://127.0.0.1:1/stream" } }
models:
  det: { file: builtin:ppocrv4-det }
pipelines:
  text: { stages: [{ name: detect, model: det, decoder: { type: db } }] }
status: { port: ${await freePort()} }
power: { enabled: false }
logging: { format: json, results: false }
`,
      { PATH: '/nonexistent' },
    );
    try {
      const failed = await daemon.waitForLog('camera connection failed');
      expect(failed.err).toBe('cannot start ffmpeg (ENOENT); install it (apt-get install ffmpeg)');
    } finally {
      await daemon.stop();
    }
  });
});
