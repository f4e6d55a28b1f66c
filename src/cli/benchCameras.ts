import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createSource, MotionGate } from '../camera/index.js';
import { configSchema, type OutpostConfig } from '../config/index.js';
import { OutpostError } from '../errors.js';
import { EventBus } from '../eventBus.js';
import type { Logger } from '../log.js';
import { FrameScheduler, type StagedPipeline } from '../pipeline/index.js';
import { LatencyWindow } from '../telemetry/index.js';
import { rounded } from '../benchMath.js';
import { Progress } from './progress.js';
import { childEnv } from '../childEnv.js';

export interface CameraBenchOptions {
  cameras: number;
  durationSeconds: number;
  log: Logger;
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

/** N file cameras at 30 fps through the real scheduler for a while: throughput, drops, latency, RSS, CPU. */
async function runCameras(pipeline: StagedPipeline, provider: string, video: string, opts: CameraBenchOptions & { gate: boolean; label: string }) {
  const bus = new EventBus(opts.log);
  const latency = new LatencyWindow(100_000);
  let processed = 0;
  let dropped = 0;
  let skipped = 0;
  bus.on('result', 'bench', ({ result: r }) => {
    processed++;
    latency.add(r.finishedAt - r.capturedAt);
  });
  bus.on('frame.dropped', 'bench', () => dropped++);
  bus.on('frame.skipped', 'bench', () => skipped++);
  const cameras = Array.from({ length: opts.cameras }, (_, i) => {
    const cam = configSchema.parse({
      cameras: [{ name: `cam${i}`, source: { type: 'file', path: video, loop: true, realtime: true }, motion: { enabled: opts.gate, maxSkipSeconds: 0 } }],
    }).cameras[0];
    return { source: createSource(cam, { log: opts.log }), pipeline, gate: opts.gate ? new MotionGate(cam.motion) : undefined };
  });
  const scheduler = new FrameScheduler(cameras, { bus, log: opts.log, provider, inflight: 2 });
  const rss: number[] = [];
  const progress = new Progress(opts.label);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  scheduler.start();
  while (performance.now() - t0 < opts.durationSeconds * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    rss.push(process.memoryUsage.rss());
    progress.update(Math.round((performance.now() - t0) / 1000), opts.durationSeconds, `${processed} results`);
  }
  await scheduler.stop();
  progress.done();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // Steady state: skip the first fifth (sessions warming, allocator growing) before judging RSS flatness.
  const steady = rss.slice(Math.floor(rss.length / 5));
  const half = Math.floor(steady.length / 2);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const p50 = latency.percentile(50);
  const p99 = latency.percentile(99);
  return {
    cameras: opts.cameras,
    gate: opts.gate,
    seconds: r2(seconds),
    framesPerSecond: r2(processed / seconds),
    processed,
    dropped,
    skipped,
    captureToResultMs: { p50: r2(p50), p99: r2(p99), p99OverP50: p50 && p99 ? r2(p99 / p50) : null },
    rssMiB: {
      first: r2(steady[0] / 2 ** 20),
      last: r2(steady[steady.length - 1] / 2 ** 20),
      driftPercent: r2(((mean(steady.slice(half)) - mean(steady.slice(0, half))) / mean(steady.slice(0, half))) * 100),
    },
    cpuSecondsPerSecond: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 1000) / 1000,
  };
}

/** `outpost bench --cameras N`: the moving pattern with the gate off, then a still scene with the gate off and on. */
export async function benchCameras(config: OutpostConfig, pipeline: StagedPipeline, provider: string, opts: CameraBenchOptions) {
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
