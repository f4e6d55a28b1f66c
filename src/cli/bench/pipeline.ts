import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Command } from 'commander';
import { median, rounded } from '../../benchMath.js';
import type { OutpostConfig } from '../../config/index.js';
import { runPipelined, type StagedPipeline } from '../../pipeline/index.js';
import { LocalSession, ORT_VERSION, type SessionSpec } from '../../runtime/index.js';
import type { Frame } from '../../types.js';
import { exitOnError, runComponents } from '../common.js';
import { Progress } from '../progress.js';
import { FeedRecorder, type RecordedRuns } from './recordedFeeds.js';
import {
  benchTarget,
  configOption,
  emitReport,
  enginePipeline,
  framesOptions,
  interleaved,
  loadFrames,
  repeatsOption,
  withReportFlags,
  type ReportFlags,
} from './shared.js';

export interface PipelineBenchOptions extends ReportFlags {
  config?: string;
  frames?: string;
  count: number;
  repeats: number;
}

/** `outpost bench pipeline`, also what `outpost bench` runs without a mode. */
export function pipelineMode(bench: Command): Command {
  const cmd = bench
    .command('pipeline', { isDefault: true })
    .description(
      'raw session.run vs the whole pipeline on the same frames, event-loop delay, session start-up with and without the graph cache (the default mode)',
    )
    .addOption(configOption());
  return withReportFlags(framesOptions(cmd).addOption(repeatsOption(5))).action((o: PipelineBenchOptions) => benchPipeline(o).catch(exitOnError));
}

type PipelineRun = Awaited<ReturnType<typeof timePipeline>>;

async function benchPipeline(o: PipelineBenchOptions): Promise<void> {
  const { ctx, pipeline: name } = benchTarget(o.config);
  const frames = await loadFrames(o.frames, o.count);
  const recorder = new FeedRecorder();
  const { engine, set } = enginePipeline(ctx, name, { tap: recorder.tap });
  const raw = new Map<string, LocalSession>();
  try {
    await runComponents(ctx, [engine, set], async () => {
      const pipeline = set.get(name);
      const recorded = await recorder.record(pipeline, frames); // also the warm-up of the worker's sessions
      for (const s of ctx.config.pipelines[name].stages) raw.set(s.name, await LocalSession.create(ctx.config.models[s.model].file, engine.spec));
      await timeRaw(raw, recorded.slice(0, 2)); // warm-up
      const progress = new Progress('bench');
      const runs = await interleaved(
        o.repeats,
        { 'raw session.run': () => timeRaw(raw, recorded), 'whole pipeline': () => timePipeline(pipeline, frames, ctx.config.runtime.inflightFrames) },
        progress,
      );
      progress.update(1, 1, 'session start-up');
      const startup = await timeStartup(ctx.config, { ...engine.spec }, Math.min(3, o.repeats));
      progress.done();
      const report = pipelineReport({
        name,
        provider: engine.provider,
        frames,
        source: o.frames,
        rawFps: runs['raw session.run'],
        pipeRuns: runs['whole pipeline'],
      });
      emitReport(o, { ...report, startup }, summary);
    });
  } finally {
    await Promise.all([...raw.values()].map((s) => s.release()));
  }
}

/** (a) raw session.run of every stage on feeds recorded beforehand, in this thread. */
async function timeRaw(sessions: Map<string, LocalSession>, recorded: RecordedRuns[]): Promise<number> {
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
    out[name] = { coldMs: rounded(median(cold)), cachedMs: rounded(median(cached)) };
  }
  return out;
}

function pipelineReport(m: { name: string; provider: string; frames: Frame[]; source?: string; rawFps: number[]; pipeRuns: PipelineRun[] }) {
  const rawMedian = median(m.rawFps);
  const pipeMedian = median(m.pipeRuns.map((p) => p.fps));
  const loopP95 = median(m.pipeRuns.map((p) => p.loopP95Ms));
  return {
    kind: 'outpost-bench-pipeline',
    createdAt: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), arch: process.arch, node: process.version, ort: ORT_VERSION },
    provider: m.provider,
    pipeline: m.name,
    frames: { count: m.frames.length, source: m.source ?? 'demo camera (640x480)' },
    repeats: m.rawFps.length,
    raw: { fpsMedian: rounded(rawMedian), fps: m.rawFps.map((v) => rounded(v)) },
    wholePipeline: {
      fpsMedian: rounded(pipeMedian),
      fps: m.pipeRuns.map((p) => rounded(p.fps)),
      eventLoopP95MsMedian: rounded(loopP95),
      eventLoopMaxMs: m.pipeRuns.map((p) => rounded(p.loopMaxMs)),
    },
    ratio: rounded(pipeMedian / rawMedian),
    goals: { ratioAtLeast0_90: pipeMedian / rawMedian >= 0.9, eventLoopP95Under50ms: loopP95 < 50 },
  };
}

function summary(r: ReturnType<typeof pipelineReport> & { startup: Awaited<ReturnType<typeof timeStartup>> }): string[] {
  return [
    `pipeline "${r.pipeline}" on ${r.provider}, ${r.frames.count} frames x ${r.repeats} runs (medians)`,
    `  raw session.run     ${r.raw.fpsMedian} frames/s`,
    `  whole pipeline      ${r.wholePipeline.fpsMedian} frames/s  (ratio ${r.ratio})`,
    `  event loop p95      ${r.wholePipeline.eventLoopP95MsMedian} ms while the pipeline ran`,
    ...Object.entries(r.startup).map(([m, st]) => `  start-up ${m.padEnd(10)} ${st.coldMs} ms cold, ${st.cachedMs} ms from the optimized-graph cache`),
  ];
}
