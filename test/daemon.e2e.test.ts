import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { probeProvider } from '../src/runtime/index.js';
import { characterAccuracy } from '../src/vision/index.js';
import { camera, configYaml, detector, merged, node, ocr, type ConfigData } from './helpers/config.js';
import { DaemonProcess, freePort, optimizeDetector, runCli } from './helpers/daemonProcess.js';
import { missingTool } from './helpers/optional.js';
import { boards } from './helpers/boards.js';
import { jpegFrame } from './helpers/jpegs.js';
import { ROOT, tempDir } from './helpers/paths.js';

const noPromtool = missingTool('promtool', 'prometheus');

const DEMO = { type: 'demo', fps: 4, seed: 3 };
const CONFIG = (port: number, stateDir: string): ConfigData => merged(node('e2e', stateDir, port), camera('demo', DEMO), ocr(), { logging: { level: 'info' } });

/** The governor on a copy of a board's sysfs, stepping at once. */
const fastGovernor = (sysfsRoot: string): ConfigData => ({
  power: { sysfsRoot, intervalSeconds: 0.2, dwellSeconds: { up: 0, down: 0 }, trend: { enabled: false } },
});

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('the daemon, end to end (real process, demo camera, PP-OCRv4, HTTP)', () => {
  let daemon: DaemonProcess;
  let port: number;
  let configFile: string;
  let firstHealth: { status: number; body: string };

  beforeAll(async () => {
    port = await freePort();
    const dir = tempDir();
    configFile = join(dir, 'outpost.yaml');
    writeFileSync(configFile, configYaml(CONFIG(port, join(dir, 'state'))));
    // Asking for CUDA on a machine without it must log why and carry on with the CPU.
    daemon = new DaemonProcess(['run', '--config', configFile], { OUTPOST_RUNTIME_PROVIDERS: 'cuda' });
    firstHealth = await daemon.waitFor('the daemon to answer /healthz', () => get(port, '/healthz').catch(() => undefined));
  });

  afterAll(async () => {
    daemon.kill('SIGKILL');
    await daemon.exited;
  });

  it('answers 503 on /healthz while starting and until frames flow, then 200', async () => {
    // the status server starts before the models load, so the first answer is a 503 with its reason
    expect(firstHealth.status).toBe(503);
    expect(['starting', 'stats: no frame processed yet']).toContain(JSON.parse(firstHealth.body).reason);
    await daemon.waitFor('/healthz 200', async () => ((await get(port, '/healthz')).status === 200 ? true : undefined));
  });

  it('falls back from the requested cuda to cpu and says so (or runs on cuda where it works)', async () => {
    if ((await probeProvider('cuda')).ok) {
      expect(JSON.parse((await get(port, '/status')).body).provider).toBe('cuda');
      return;
    }
    const fallback = await daemon.waitForLog('none of the requested providers (cuda) works here; falling back to cpu');
    expect(fallback.level).toBe(40);
    const status = JSON.parse((await get(port, '/status')).body);
    expect(status.provider).toBe('cpu');
    expect(status.providerAttempts.map((a: { provider: string; ok: boolean }) => [a.provider, a.ok])).toEqual([
      ['cuda', false],
      ['cpu', true],
    ]);
  });

  it('reads the text the demo camera renders', async () => {
    const results = await daemon.waitFor('8 results', () => {
      const r = daemon.logs.filter((l) => l.msg === 'result');
      return r.length >= 8 ? r : undefined;
    });
    const scores = results.map((r) => characterAccuracy((r.truth as string[]).join(''), (r.text as string[]).join('')));
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    expect(mean).toBeGreaterThanOrEqual(0.9);
  });

  it('reports per-camera counters, provider, variant and per-stage latency on /status', async () => {
    const status = JSON.parse((await get(port, '/status')).body);
    expect(status).toMatchObject({ node: 'e2e', variant: 'fp32', healthy: true });
    expect(status.cameras.demo.processed).toBeGreaterThan(0);
    expect(status.cameras.demo.fps).toBeGreaterThan(0);
    for (const stage of ['queue', 'decode', 'preprocess', 'infer', 'post'])
      expect(status.latencyMs[stage].p95).toBeGreaterThanOrEqual(status.latencyMs[stage].p50);
    expect(status.latencyMs.infer.p50).toBeGreaterThan(0);
    expect(status.lastResult.output.lines.length).toBeGreaterThan(0);
    expect(status.eventLoopDelayMs.p95).toBeGreaterThan(0);
  });

  it('serves a status page at / that shows the cameras and the last result', async () => {
    await daemon.waitForLog('result');
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    const status = JSON.parse((await get(port, '/status')).body);
    expect(html).toMatch(/<title>Outpost e2e<\/title>/);
    expect(html).toMatch(/<td>demo<\/td><td>[\d.]+<\/td><td>[1-9]\d*<\/td>/);
    expect(html).toContain(`provider ${status.provider}`);
    expect(html).toMatch(/<h2>Last result<\/h2><div id="last"><p>demo at [\dT:.Z-]+<\/p><ul><li>[A-Z0-9][^<]*<\/li>/);
  });

  it.skipIf(missingTool('chromium', 'chromium'))(
    'keeps the page live in a real browser: numbers change without a reload, the overlay image loads',
    async () => {
      const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
      try {
        const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
        await page.goto(`http://127.0.0.1:${port}/`);
        await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true));
        const processed = () => page.locator('#cameras tr:first-child td:nth-child(3)').innerText();
        const first = Number(await processed());
        await page.waitForFunction((n) => Number(document.querySelector('#cameras tr:first-child td:nth-child(3)')?.textContent) > n, first, {
          timeout: 20_000,
        });
        expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true); // the same page, not a reload
        expect(Number(await page.getAttribute('body', 'data-updates'))).toBeGreaterThan(0);
        await page.waitForFunction(() => (document.getElementById('img-demo') as HTMLImageElement | null)?.dataset.frame !== '', null, { timeout: 20_000 });
        await page.waitForFunction(() => {
          const img = document.getElementById('img-demo') as HTMLImageElement;
          return img.complete && img.naturalWidth === 640;
        });
        expect(await page.locator('#events li').count()).toBeGreaterThan(1);
        expect(await page.locator('#chart-svg').count()).toBe(1);
        mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
        await page.screenshot({ path: join(ROOT, 'test-artifacts', 'live-page.png'), fullPage: true });
      } finally {
        await browser.close();
      }
      const overlay = await fetch(`http://127.0.0.1:${port}/cameras/demo/latest.jpg`);
      expect(overlay.headers.get('content-type')).toBe('image/jpeg');
      expect((await sharp(Buffer.from(await overlay.arrayBuffer())).metadata()).width).toBe(640);
    },
  );

  it('serves /metrics that promtool accepts', async () => {
    const { status, body } = await get(port, '/metrics');
    expect(status).toBe(200);
    expect(body).toMatch(/^outpost_frames_processed_total\{camera="demo"\} [1-9]/m);
    expect(body).toMatch(/^outpost_execution_provider_info\{provider="(cpu|cuda)",variant="fp32"\} 1$/m);
    if (noPromtool) return; // the series checks above still ran
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('reloads on SIGHUP: applies live settings, names the ones that need a restart', async () => {
    const base = CONFIG(port, join(dirname(configFile), 'state'));
    writeFileSync(configFile, configYaml(base, camera('demo', DEMO, { maxFps: 2 }), { logging: { level: 'debug' }, runtime: { threads: 1 } }));
    daemon.child.kill('SIGHUP');
    const reloaded = await daemon.waitForLog('configuration reloaded');
    expect(reloaded.applied).toEqual(expect.arrayContaining(['logging.level', 'cameras[0].maxFps']));
    const restart = await daemon.waitForLog('these changed settings take effect after a restart');
    expect(restart.settings).toEqual(['runtime.threads']);
  });

  it('keeps running on an invalid reload and names the problem', async () => {
    writeFileSync(configFile, configYaml(CONFIG(port, join(dirname(configFile), 'state')), { status: { port: 'x' } }));
    daemon.child.kill('SIGHUP');
    const refused = await daemon.waitForLog(/reload refused/);
    expect(String((refused.problems as string[])[0])).toMatch(/outpost\.yaml:\d+:\d+: status\.port: /);
    expect((await get(port, '/healthz')).status).toBe(200);
  });

  it('stops on SIGTERM: finishes in-flight work and exits 0', async () => {
    daemon.kill('SIGTERM');
    const { code } = await daemon.exited;
    expect(code).toBe(0);
    expect(daemon.logs.map((l) => l.msg)).toContain('stopped');
  });
});

describe('the motion gate in the daemon (a folder of one still picture)', () => {
  it('runs the models on the first frame only and counts the rest as skipped', async () => {
    const dir = tempDir();
    const frames = join(dir, 'frames');
    mkdirSync(frames);
    const still = await jpegFrame(3, 640, 480);
    for (let i = 0; i < 3; i++) writeFileSync(join(frames, `${i}.jpg`), still);
    const port = await freePort();
    const config = merged(
      CONFIG(port, join(dir, 'state')),
      camera('demo', { type: 'directory', path: frames, fps: 20 }, { motion: { enabled: true, maxSkipSeconds: 0 } }),
    );
    const daemon = DaemonProcess.start(dir, configYaml(config));
    try {
      const status = await daemon.waitFor('20 skipped frames', async () => {
        const s = await get(port, '/status').then(
          (r) => JSON.parse(r.body),
          () => undefined,
        );
        return s?.cameras?.demo?.skipped >= 20 ? s : undefined;
      });
      expect(status.cameras.demo.processed).toBe(1);
      expect((await get(port, '/metrics')).body).toMatch(/^outpost_frames_skipped_total\{camera="demo"\} [1-9]\d+$/m);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('the governor in the daemon (a Raspberry Pi 4 sysfs fixture heating up)', () => {
  it('logs each transition with its readings, caps the fps, and reports the level', async () => {
    const dir = tempDir();
    const root = boards.pi4Ok();
    const port = await freePort();
    const daemon = DaemonProcess.start(dir, configYaml(CONFIG(port, join(dir, 'state')), fastGovernor(root)));
    const temp = join(root, 'sys/class/thermal/thermal_zone0/temp');
    try {
      await daemon.waitForLog('result');
      const setTemp = (milli: number) => {
        writeFileSync(`${temp}.new`, `${milli}\n`);
        renameSync(`${temp}.new`, temp); // sysfs never shows a half-written value
      };
      setTemp(80500);
      const hot = await daemon.waitForLog('governor nominal → critical: 80.5 °C');
      expect(hot).toMatchObject({ level: 40, from: 'nominal', to: 'critical', temperatureC: 80.5, powerState: 'mains', policy: { maxFps: 0.2 } });
      const status = JSON.parse((await get(port, '/status')).body);
      expect(status.power.governor).toMatchObject({ level: 'critical', temperatureC: 80.5, thresholds: { warm: 65, hot: 72, critical: 78 } });
      expect(status.precision.rung).toBe('int8');
      expect((await get(port, '/metrics')).body).toMatch(/^outpost_governor_level 3$/m);
      await daemon.waitFor('frames refused by the critical fps cap', async () => {
        const body = (await get(port, '/metrics')).body;
        return /^outpost_frames_dropped_total\{camera="demo",reason="fps-cap"\} [1-9]/m.test(body) ? true : undefined;
      });
      setTemp(50000);
      await daemon.waitForLog('governor critical → nominal: 50.0 °C');
      expect((await get(port, '/metrics')).body).toMatch(/^outpost_governor_transitions_total\{from="critical",to="nominal"\} 1$/m);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('model variants in the daemon', () => {
  it('serves a folder written by outpost optimize and switches to int8 when the board gets hot', async () => {
    const dir = tempDir();
    const variants = join(dir, 'det-variants');
    const built = optimizeDetector(variants);
    expect(built.code, built.stderr).toBe(0);
    const root = boards.pi4Ok();
    const port = await freePort();
    const daemon = DaemonProcess.start(dir, configYaml(CONFIG(port, join(dir, 'state')), { models: { det: { file: variants } } }, fastGovernor(root)));
    const temp = join(root, 'sys/class/thermal/thermal_zone0/temp');
    try {
      await daemon.waitForLog('result');
      writeFileSync(`${temp}.new`, '74000\n');
      renameSync(`${temp}.new`, temp);
      const set = await daemon.waitFor('the int8 variant', () => daemon.logs.find((l) => l.msg === 'pipeline precision set' && l.rung === 'int8'));
      expect(set.variant).toBe('int8-static+fp32'); // the recogniser has no variants: it stays fp32
      const status = await daemon.waitFor('an int8 result', async () => {
        const s = JSON.parse((await get(port, '/status')).body);
        return s.lastResult?.variant === 'int8-static+fp32' ? s : undefined;
      });
      expect(status.precision).toMatchObject({ rung: 'int8', pipelines: { text: 'int8-static+fp32' }, variants: { det: ['fp32', 'int8-static'], rec: [] } });
      const after = daemon.logs.filter((l) => l.msg === 'result' && l.ms !== undefined).slice(-3);
      expect(after.every((r) => (r.text as string[]).length > 0)).toBe(true);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('records calibration frames from its camera, builds variants in the background while fp32 serves, keeps them by sha256', async () => {
    const dir = tempDir();
    const port = await freePort();
    const state = join(dir, 'state');
    // the detector alone: a 2-core board then has time left for the niced build beside the serving pipeline
    const optimize = {
      enabled: true,
      precisions: ['fp32', 'int8-static'],
      calibrationFrames: 4,
      heldOut: 2,
      normalise: 'imagenet-bgr',
      minCosine: 0.9,
      placements: ['float-stem'],
    };
    const config = merged(CONFIG(port, state), detector(), { models: { rec: undefined, det: { optimize } } });
    const daemon = DaemonProcess.start(dir, configYaml(config));
    try {
      const recording = await daemon.waitForLog('recording calibration frames from the cameras');
      expect(recording).toMatchObject({ cameras: ['demo'], frames: 6 });
      await daemon.waitForLog('result'); // fp32 serves meanwhile
      await daemon.waitForLog('building model variants in the background');
      expect(readdirSync(String(recording.dir)).filter((f) => f.endsWith('.jpg'))).toHaveLength(6);
      const ready = await daemon.waitForLog('model variants ready', 240);
      expect(existsSync(join(String(ready.outDir), 'manifest.json'))).toBe(true);
      expect(String(ready.outDir)).toMatch(new RegExp(`${state}/models/[0-9a-f]{64}$`));
      await daemon.waitFor('the rebuilt fp32 variant', () => daemon.logs.find((l) => l.msg === 'pipeline precision set'));
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('configuration errors at the CLI', () => {
  it('check-config exits 0 on the embedded demo config', () => {
    const r = runCli(['check-config', '--config', 'config/outpost.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok \(2 models, 1 pipelines, 1 cameras\)/);
  });

  it('check-config and run exit 78 with FILE:LINE:COL lines, before touching hardware', () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'cameras:\n  - name: a\n    source: { type: demo, fsp: 3 }\nstatus: { port: 70000 }\n');
    for (const cmd of ['check-config', 'run']) {
      const r = runCli([cmd, '--config', file]);
      expect(r.code).toBe(78);
      expect(r.stderr.trim().split('\n')).toEqual([
        `${file}:3:27: cameras[0].source.fsp: unknown key "fsp" (did you mean "fps"?); allowed: type, width, height, fps, seed`,
        `${file}:4:17: status.port: Too big: expected number to be <=65535`,
      ]);
    }
  });
});

describe('outpost infer on bad input', () => {
  it('names the unreadable image, still answers for the good ones, and exits 65', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a-good.jpg'), await jpegFrame(1, 320, 240));
    writeFileSync(join(dir, 'b-broken.jpg'), Buffer.from('not a jpeg at all'));
    const r = runCli(['infer', '--config', 'config/outpost.yaml', '--input', dir, '--json']);
    expect(r.code).toBe(65);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).file),
    ).toEqual([join(dir, 'a-good.jpg')]);
    expect(r.stderr).toContain(`outpost: ${join(dir, 'b-broken.jpg')} is not a readable JPEG or PNG image`);
  });
});
