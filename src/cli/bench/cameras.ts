import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createSource, MotionGate } from '../../camera/index.js';
import { configSchema, type OutpostConfig } from '../../config/index.js';
import { OutpostError } from '../../errors.js';
import { EventBus } from '../../core/index.js';
import type { Logger } from '../../log.js';
import { FrameScheduler, type StagedPipeline } from '../../pipeline/index.js';
import { LatencyWindow } from '../../telemetry/index.js';
import { rounded } from '../../benchMath.js';
import { Progress } from '../progress.js';
import { childEnv } from '../../childEnv.js';
import { exitOnError, positiveInt, runComponents } from '../common.js';
import { benchTarget, configOption, durationOption, emitReport, enginePipeline, sleep, withReportFlags, type ReportFlags } from './shared.js';

export interface CamerasBenchOptions extends ReportFlags {
  config?: string;
  count: number;
  duration: number;
}

/** What one camera run is given. */
interface CameraRun {
  cameras: number;
  durationSeconds: number;
  log: Logger;
}

/** `outpost bench cameras`: N ffmpeg file cameras at 30 fps through the scheduler. */
export function camerasMode(bench: Command): Command {
  const cmd = bench
    .command('cameras')
    .description(
      'N ffmpeg test cameras at 30 fps through the scheduler: fps, drops, capture-to-result p50/p99, RSS drift, and CPU with the motion gate on a still scene',
    )
    .addOption(configOption())
    .option('-n, --count <n>', 'cameras', positiveInt, 2)
    .addOption(durationOption(30, 'seconds measured with the moving pattern (half that, at least 5, for each still-scene run)'));
  return withReportFlags(cmd).action((o: CamerasBenchOptions) => benchCameras(o).catch(exitOnError));
}

async function benchCameras(o: CamerasBenchOptions): Promise<void> {
  const { ctx, pipeline: name } = benchTarget(o.config);
  const { engine, set } = enginePipeline(ctx, name);
  await runComponents(ctx, [engine, set], async () => {
    const report = await measureCameras(ctx.config, set.get(name), engine.provider, { cameras: o.count, durationSeconds: o.duration, log: ctx.log });
    emitReport(o, { ...report, createdAt: new Date().toISOString(), provider: engine.provider, pipeline: name });
  });
}

const r2 = (v: number | null) => (v === null ? null : rounded(v));

/** A 10 s, 30 fps test video made by ffmpeg: a moving test pattern, or a still scene for the motion gate. */
function testVideo(dir: string, kind: 'moving' | 'still'): string {
  const file = join(dir, `${kind}.mp4`);
  const source = kind === 'moving' ? 'testsrc=size=640x480:rate=30' : 'color=c=0x406080:size=640x480:rate=30';
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-t', '10', '-pix_fmt', 'yuv420p', file], {
    env: childEnv(),
  });
  if (r.status !== 0)
    throw new OutpostError('OUTPOST_E_CAMERA', `ffmpeg could not make a test video (${r.error?.message ?? String(r.stderr).trim()}); install ffmpeg`);
  return file;
}

type RunOptions = CameraRun & { gate: boolean; label: string };

/** What the bus says of the frames: results (with their capture-to-result latency), drops and gate skips. */
function countResults(bus: EventBus) {
  const counts = { processed: 0, dropped: 0, skipped: 0, latency: new LatencyWindow(100_000) };
  bus.on('result', 'bench', ({ result: r }) => {
    counts.processed++;
    counts.latency.add(r.finishedAt - r.capturedAt);
  });
  bus.on('frame.dropped', 'bench', () => counts.dropped++);
  bus.on('frame.skipped', 'bench', () => counts.skipped++);
  return counts;
}

/** N file cameras at 30 fps through the real scheduler for a while: throughput, drops, latency, RSS, CPU. */
async function runCameras(pipeline: StagedPipeline, provider: string, video: string, opts: RunOptions) {
  const bus = new EventBus(opts.log);
  const counts = countResults(bus);
  const cameras = Array.from({ length: opts.cameras }, (_, i) => {
    const cam = configSchema.parse({
      cameras: [{ name: `cam${i}`, source: { type: 'file', path: video, loop: true, realtime: true }, motion: { enabled: opts.gate, maxSkipSeconds: 0 } }],
    }).cameras[0];
    return { source: createSource(cam, { log: opts.log }), pipeline, gate: opts.gate ? new MotionGate(cam.motion) : undefined };
  });
  const scheduler = new FrameScheduler(cameras, { bus, log: opts.log, provider, inflight: 2 });
  const progress = new Progress(opts.label);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  scheduler.start();
  const rss = await sampleRss(opts.durationSeconds, (s) => progress.update(s, opts.durationSeconds, `${counts.processed} results`));
  await scheduler.stop();
  progress.done();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const { processed, dropped, skipped } = counts;
  return {
    cameras: opts.cameras,
    gate: opts.gate,
    seconds: r2(seconds),
    framesPerSecond: r2(processed / seconds),
    processed,
    dropped,
    skipped,
    captureToResultMs: latencySummary(counts.latency),
    rssMiB: rssDrift(rss),
    cpuSecondsPerSecond: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 1000) / 1000,
  };
}

/** This process's RSS once a second for `seconds`. */
async function sampleRss(seconds: number, tick: (elapsed: number) => void): Promise<number[]> {
  const rss: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await sleep(1000);
    rss.push(process.memoryUsage.rss());
    tick(Math.round((performance.now() - t0) / 1000));
  }
  return rss;
}

function latencySummary(latency: LatencyWindow) {
  const p50 = latency.percentile(50);
  const p99 = latency.percentile(99);
  return { p50: r2(p50), p99: r2(p99), p99OverP50: p50 && p99 ? r2(p99 / p50) : null };
}

/** Steady state: the first fifth is skipped (sessions warming, allocator growing) before judging RSS flatness. */
function rssDrift(rss: number[]) {
  const steady = rss.slice(Math.floor(rss.length / 5));
  const half = Math.floor(steady.length / 2);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    first: r2(steady[0] / 2 ** 20),
    last: r2(steady[steady.length - 1] / 2 ** 20),
    driftPercent: r2(((mean(steady.slice(half)) - mean(steady.slice(0, half))) / mean(steady.slice(0, half))) * 100),
  };
}

/** `outpost bench cameras`: the moving pattern with the gate off, then a still scene with the gate off and on. */
async function measureCameras(config: OutpostConfig, pipeline: StagedPipeline, provider: string, opts: CameraRun) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-cams-'));
  try {
    const moving = await runCameras(pipeline, provider, testVideo(dir, 'moving'), { ...opts, gate: false, label: 'cameras (moving)' });
    const still = testVideo(dir, 'still');
    const gateShort = { ...opts, durationSeconds: Math.max(5, Math.round(opts.durationSeconds / 2)) };
    const ungated = await runCameras(pipeline, provider, still, { ...gateShort, gate: false, label: 'still, no gate' });
    const gated = await runCameras(pipeline, provider, still, { ...gateShort, gate: true, label: 'still, gated' });
    return {
      kind: 'outpost-bench-cameras',
      node: config.node.name,
      moving,
      stillScene: { ungated, gated, cpuRatioGatedToUngated: r2(gated.cpuSecondsPerSecond / ungated.cpuSecondsPerSecond) },
      goals: {
        p99AtMost2xP50: (moving.captureToResultMs.p99OverP50 ?? Infinity) <= 2,
        rssFlatWithin5Percent: Math.abs(moving.rssMiB.driftPercent ?? Infinity) <= 5,
        gatedCpuAtMost10Percent: gated.cpuSecondsPerSecond <= 0.1 * ungated.cpuSecondsPerSecond,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
