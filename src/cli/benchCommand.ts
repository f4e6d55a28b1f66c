import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { imageFrame, listImages, renderDemoFrames } from '../camera/index.js';
import { loadConfig, type OutpostConfig } from '../config/index.js';
import { OutpostError } from '../errors.js';
import { benchCameras } from './benchCameras.js';
import { benchModels } from './benchModels.js';
import { benchFleet } from './benchFleet.js';
import { benchUpload } from './benchUpload.js';
import { benchOffload } from './benchOffload.js';
import { benchChaos } from './benchChaos.js';
import { benchLevels } from './benchLevels.js';
import { benchMemory } from './benchMemory.js';
import { benchCollect } from './benchCollect.js';
import { fileURLToPath } from 'node:url';
import { PipelineSet, runPipelined, type StagedPipeline } from '../pipeline/index.js';
import { InferenceEngine, LocalSession, ORT_VERSION, type SessionSpec, type TensorMap } from '../runtime/index.js';
import type { Frame } from '../types.js';
import type { ComponentContext } from '../component.js';
import { cliContext, configPath, runComponents } from './common.js';
import { median, rounded } from '../benchMath.js';
import { Progress } from './progress.js';

export interface BenchOptions {
  config?: string;
  frames?: string;
  count: number;
  repeats: number;
  json?: boolean;
  out?: string;
  /** Multi-camera mode: this many ffmpeg file cameras at 30 fps. */
  cameras?: number;
  /** Seconds measured: 30 by default, 60 in memory mode. */
  duration?: number;
  /** Model mode: time the variants in this optimize output folder and write autotune.json. */
  modelDir?: string;
  size: string;
  /** Governor mode: force each level's rung on the same frames. */
  levels?: boolean;
  /** Upload mode: sealing, the outbox and draining a backlog. */
  upload?: boolean;
  backlog: number;
  /** Fleet mode: simulated device counts (real MQTT connections) watched by outpost monitor. */
  fleet?: number[];
  broker?: string;
  interval: number;
  /** Offload mode: two agents, one core each, with the helper as peer against without. */
  offload?: boolean;
  /** Chaos mode: a broker, two collectors and three agents with faults injected for `duration` seconds. */
  chaos?: boolean;
  /** Memory mode: the config's daemon in a child process, its steady RSS and where it goes. */
  memory?: boolean;
  /** Collect mode: simulated devices into 1 and 2 collectors on this PostgreSQL (--backlog items in all, --broker for MQTT). */
  collect?: string;
  collectDevices: number;
}

const r2 = (v: number) => rounded(v);

async function loadFrames(opts: BenchOptions): Promise<Frame[]> {
  if (opts.frames) {
    const files = (await listImages(opts.frames)).slice(0, opts.count);
    if (files.length === 0) throw new OutpostError('OUTPOST_E_INPUT', `--frames ${opts.frames} holds no images`);
    return Promise.all(files.map((f, i) => imageFrame(f, 'bench', i)));
  }
  return renderDemoFrames(opts.count, 7);
}

/** (a) raw session.run of every stage on feeds recorded beforehand, in this thread. */
async function timeRaw(sessions: Map<string, LocalSession>, recorded: [string, TensorMap][][]): Promise<number> {
  const started = performance.now();
  for (const frame of recorded) for (const [key, feeds] of frame) await sessions.get(key)!.run(feeds);
  return (recorded.length * 1000) / (performance.now() - started);
}

/** (b) the whole pipeline with `depth` frames in flight, as the daemon's scheduler runs it. */
async function timePipeline(pipeline: StagedPipeline, frames: Frame[], depth: number): Promise<{ fps: number; loopP95Ms: number; loopMaxMs: number }> {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const started = performance.now();
  let i = 0;
  await runPipelined(
    async () => (i < frames.length ? pipeline.prepare(frames[i++]) : null),
    (prepared) => pipeline.finish(prepared),
    (_job, outcome) => {
      if (!outcome.ok) throw outcome.error;
    },
    depth,
  );
  const fps = (frames.length * 1000) / (performance.now() - started);
  loop.disable();
  return { fps, loopP95Ms: loop.percentile(95) / 1e6, loopMaxMs: loop.max / 1e6 };
}

/** Session creation without and with ORT's optimized-graph cache. */
async function timeStartup(config: OutpostConfig, spec: SessionSpec, repeats: number): Promise<Record<string, { coldMs: number; cachedMs: number }>> {
  const out: Record<string, { coldMs: number; cachedMs: number }> = {};
  for (const [name, model] of Object.entries(config.models)) {
    const cold: number[] = [];
    const cached: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-'));
      for (const into of [cold, cached]) {
        const s = await LocalSession.create(model.file, { ...spec, cacheDir: dir });
        into.push(s.info.loadMs);
        await s.release();
      }
      rmSync(dir, { recursive: true, force: true });
    }
    out[name] = { coldMs: r2(median(cold)), cachedMs: r2(median(cached)) };
  }
  return out;
}

export async function benchCommand(opts: BenchOptions): Promise<void> {
  if (opts.collect)
    return printReport(
      opts,
      await benchCollect({
        store: opts.collect,
        devices: opts.collectDevices,
        itemsPerDevice: Math.ceil(opts.backlog / opts.collectDevices),
        broker: opts.broker,
      }),
    );
  if (opts.upload) {
    const { config } = loadConfig(configPath(opts.config));
    const ctx = cliContext(config, 'bench');
    const inferMs = await medianInferMs(ctx, config.cameras[0]?.pipeline ?? Object.keys(config.pipelines)[0]);
    const report = await benchUpload({ repeats: opts.repeats, backlog: opts.backlog }, inferMs);
    const text = JSON.stringify(report, null, 2) + '\n';
    if (opts.out) writeFileSync(opts.out, text);
    process.stdout.write(text);
    return;
  }
  if (opts.offload) {
    const report = await benchOffload({ repeats: opts.repeats, durationSeconds: opts.duration ?? 30 });
    const text = JSON.stringify(report, null, 2) + '\n';
    if (opts.out) writeFileSync(opts.out, text);
    process.stdout.write(text);
    return;
  }
  if (opts.chaos) {
    const report = await benchChaos({ durationSeconds: opts.duration ?? 30 });
    const text = JSON.stringify(report, null, 2) + '\n';
    if (opts.out) writeFileSync(opts.out, text);
    process.stdout.write(text);
    if (!report.passed) process.exitCode = 1;
    return;
  }
  if (opts.fleet) {
    const report = await benchFleet({ devices: opts.fleet, broker: opts.broker, intervalSeconds: opts.interval, durationSeconds: opts.duration ?? 30 });
    const text = JSON.stringify(report, null, 2) + '\n';
    if (opts.out) writeFileSync(opts.out, text);
    process.stdout.write(text);
    return;
  }
  if (opts.modelDir) {
    const report = await benchModels({ modelDir: opts.modelDir, repeats: opts.repeats, runs: 15, size: opts.size });
    const text = JSON.stringify(report, null, 2) + '\n';
    if (opts.out) writeFileSync(opts.out, text);
    if (opts.json) process.stdout.write(text);
    else
      for (const v of report.variants)
        process.stdout.write(
          `${v.provider.padEnd(6)} ${v.precision.padEnd(13)} ${String(v.threads).padStart(2)} threads ${String(v.msMedian).padStart(8)} ms  ×${v.speedupVsFp32 ?? '?'} vs the best fp32  size ×${v.bytesVsFp32}\n`,
        );
    return;
  }
  const { config } = loadConfig(configPath(opts.config));
  const ctx = cliContext(config, 'bench');
  const name = config.cameras[0]?.pipeline ?? Object.keys(config.pipelines)[0];
  if (opts.cameras) return cameraMode(ctx, name, opts);
  if (opts.levels) return levelsMode(ctx, name, opts);
  if (opts.memory) {
    const log = (line: string) => void process.stderr.write(`${line}\n`);
    const report = await benchMemory(ctx, configPath(opts.config), name, opts.duration ?? 60, log);
    return writeReport(opts, report.provider, report);
  }
  const frames = await loadFrames(opts);
  const engine = new InferenceEngine({ ...config.runtime, stateDir: config.node.stateDir, cacheOptimizedGraphs: false }, ctx.log);
  let recording: [string, TensorMap][] = [];
  const tap = (key: string, feeds: TensorMap) =>
    recording.push([key, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { ...t, data: t.data.slice() }]))]);
  const set = new PipelineSet(ctx, engine, { names: [name], tap });
  const raw = new Map<string, LocalSession>();
  try {
    await runComponents(ctx, [engine, set], async () => {
      const pipeline = set.get(name);
      const recorded: [string, TensorMap][][] = [];
      for (const f of frames) {
        recording = [];
        await pipeline.process(f); // also the warm-up of the worker's sessions
        recorded.push(recording);
      }
      recording = [];
      for (const s of config.pipelines[name].stages) raw.set(s.name, await LocalSession.create(config.models[s.model].file, engine.spec));
      await timeRaw(raw, recorded.slice(0, 2)); // warm-up
      const rawFps: number[] = [];
      const pipeRuns: Awaited<ReturnType<typeof timePipeline>>[] = [];
      const progress = new Progress('bench');
      for (let r = 0; r < opts.repeats; r++) {
        progress.update(r * 2, opts.repeats * 2, 'raw session.run');
        rawFps.push(await timeRaw(raw, recorded));
        progress.update(r * 2 + 1, opts.repeats * 2, 'whole pipeline');
        pipeRuns.push(await timePipeline(pipeline, frames, config.runtime.inflightFrames));
      }
      progress.update(opts.repeats * 2, opts.repeats * 2, 'session start-up');
      const startup = await timeStartup(config, { ...engine.spec }, Math.min(3, opts.repeats));
      progress.done();
      report(opts, pipelineReport(name, engine.provider, frames, opts, rawFps, pipeRuns, startup));
    });
  } finally {
    await Promise.all([...raw.values()].map((s) => s.release()));
  }
}

function pipelineReport(
  name: string,
  provider: string,
  frames: Frame[],
  opts: BenchOptions,
  rawFps: number[],
  pipeRuns: Awaited<ReturnType<typeof timePipeline>>[],
  startup: Awaited<ReturnType<typeof timeStartup>>,
) {
  const rawMedian = median(rawFps);
  const pipeMedian = median(pipeRuns.map((p) => p.fps));
  const loopP95 = median(pipeRuns.map((p) => p.loopP95Ms));
  return {
    kind: 'outpost-bench-pipeline',
    createdAt: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), arch: process.arch, node: process.version, ort: ORT_VERSION },
    provider,
    pipeline: name,
    frames: { count: frames.length, source: opts.frames ?? 'demo camera (640x480)' },
    repeats: opts.repeats,
    raw: { fpsMedian: r2(rawMedian), fps: rawFps.map(r2) },
    wholePipeline: {
      fpsMedian: r2(pipeMedian),
      fps: pipeRuns.map((p) => r2(p.fps)),
      eventLoopP95MsMedian: r2(loopP95),
      eventLoopMaxMs: pipeRuns.map((p) => r2(p.loopMaxMs)),
    },
    ratio: r2(pipeMedian / rawMedian),
    goals: { ratioAtLeast0_90: pipeMedian / rawMedian >= 0.9, eventLoopP95Under50ms: loopP95 < 50 },
    startup,
  };
}

function report(opts: BenchOptions, r: ReturnType<typeof pipelineReport>): void {
  const text = JSON.stringify(r, null, 2) + '\n';
  if (opts.out) writeFileSync(opts.out, text);
  if (opts.json) return void process.stdout.write(text);
  process.stdout.write(`pipeline "${r.pipeline}" on ${r.provider}, ${r.frames.count} frames x ${r.repeats} runs (medians)\n`);
  process.stdout.write(`  raw session.run     ${r.raw.fpsMedian} frames/s\n  whole pipeline      ${r.wholePipeline.fpsMedian} frames/s  (ratio ${r.ratio})\n`);
  process.stdout.write(`  event loop p95      ${r.wholePipeline.eventLoopP95MsMedian} ms while the pipeline ran\n`);
  for (const [m, st] of Object.entries(r.startup))
    process.stdout.write(`  start-up ${m.padEnd(10)} ${st.coldMs} ms cold, ${st.cachedMs} ms from the optimized-graph cache\n`);
}

/** Inference time of one frame through the config's pipeline (median of 8 demo frames): what sealing is compared with. */
async function medianInferMs(ctx: ComponentContext, name: string): Promise<number> {
  const engine = new InferenceEngine({ ...ctx.config.runtime, stateDir: ctx.stateDir, cacheOptimizedGraphs: false }, ctx.log);
  const set = new PipelineSet(ctx, engine, { names: [name] });
  return runComponents(ctx, [engine, set], async () => {
    const times: number[] = [];
    for (const f of await renderDemoFrames(8, 3)) times.push((await set.get(name).process(f)).timings.inferMs);
    return r2(median(times));
  });
}

/** A bench mode's JSON report, printed (and saved with --out). */
function writeReport(opts: BenchOptions, provider: string, report: object): void {
  const text = JSON.stringify({ ...report, createdAt: new Date().toISOString(), provider }, null, 2) + '\n';
  if (opts.out) writeFileSync(opts.out, text);
  process.stdout.write(text);
}

async function cameraMode(ctx: ComponentContext, name: string, opts: BenchOptions): Promise<void> {
  const engine = new InferenceEngine({ ...ctx.config.runtime, stateDir: ctx.stateDir, cacheOptimizedGraphs: false }, ctx.log);
  const set = new PipelineSet(ctx, engine, { names: [name] });
  await runComponents(ctx, [engine, set], async () => {
    const report = await benchCameras(ctx.config, set.get(name), engine.provider, {
      cameras: opts.cameras!,
      durationSeconds: opts.duration ?? 30,
      log: ctx.log,
    });
    writeReport(opts, engine.provider, { ...report, pipeline: name });
  });
}

async function levelsMode(ctx: ComponentContext, name: string, opts: BenchOptions): Promise<void> {
  const report = await benchLevels(ctx, name, await loadFrames(opts), opts.repeats, fileURLToPath(new URL('../cli.js', import.meta.url)));
  writeReport(opts, report.provider, report);
}

function printReport(opts: BenchOptions, r: unknown): void {
  const text = JSON.stringify(r, null, 2) + '\n';
  if (opts.out) writeFileSync(opts.out, text);
  process.stdout.write(text);
}
