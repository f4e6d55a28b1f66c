import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { median, rounded } from '../../benchMath.js';
import type { ComponentContext } from '../../core/index.js';
import type { LevelPolicy, ModelConfig, ResolvedConfig } from '../../config/index.js';
import { runPipelined, type PipelineSet, type StagedPipeline } from '../../pipeline/index.js';
import { buildInBackground, variantsDir } from '../../runtime/index.js';
import type { Frame } from '../../types.js';
import type { Rung } from '../../vocabulary.js';
import { exitOnError } from '../common.js';
import { Progress } from '../progress.js';
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

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));
const r3 = (v: number) => rounded(v, 3);

export interface LevelsBenchOptions extends ReportFlags {
  config?: string;
  frames?: string;
  count: number;
  repeats: number;
}

/** `outpost bench levels`: each governor level's rung on the same frames. */
export function levelsMode(bench: Command): Command {
  const cmd = bench
    .command('levels')
    .description("build the variants, force each governor level's rung on the same frames: frames/s, CPU per frame, and the stall of a hot swap")
    .addOption(configOption());
  return withReportFlags(framesOptions(cmd).addOption(repeatsOption(5))).action((o: LevelsBenchOptions) => benchLevels(o).catch(exitOnError));
}

async function benchLevels(o: LevelsBenchOptions): Promise<void> {
  const { ctx, pipeline } = benchTarget(o.config);
  const report = await measureLevels(ctx, pipeline, await loadFrames(o.frames, o.count), o.repeats);
  emitReport(o, { ...report, createdAt: new Date().toISOString() });
}

/** A precision at a thread count: the setting a level's policy asks for. */
const settingOf = (p: LevelPolicy, threads: number) => `${p.precision}@${p.threads ?? threads}`;

/**
 * Builds the models' variants (as the daemon would in the background) in a state folder of its own, then
 * forces each governor level's rung on the same frames: frames/s, CPU seconds per frame, and the stall a hot
 * swap causes in a steady stream of frames.
 */
async function measureLevels(base: ComponentContext, pipelineName: string, frames: Frame[], repeats: number) {
  const stateDir = mkdtempSync(join(tmpdir(), 'outpost-bench-levels-'));
  const cfg: ResolvedConfig = { ...base.config, node: { ...base.config.node, stateDir } };
  const ctx: ComponentContext = { ...base, config: cfg, stateDir };
  const { engine, set } = enginePipeline(ctx, pipelineName);
  try {
    const progress = new Progress('bench levels');
    await buildVariants(ctx, pipelineName, progress);
    await engine.start();
    await set.start();
    const measured = await timeSettings(cfg, set, pipelineName, { frames, repeats, progress });
    const swap = await measureSwapStall(set.get(pipelineName), frames, set, pipelineName);
    progress.done();
    return levelsReport(cfg, measured, swap, { provider: engine.provider, pipeline: pipelineName, frames: frames.length, repeats });
  } finally {
    await set.stop();
    await engine.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** fp32, int8-dynamic and int8-static variants of each model of the pipeline, as the daemon's optimizer makes them. */
async function buildVariants(ctx: ComponentContext, pipelineName: string, progress: Progress): Promise<void> {
  const stages = ctx.config.pipelines[pipelineName].stages;
  const models = [...new Set(stages.map((s) => s.model))];
  for (const [i, name] of models.entries()) {
    progress.update(i, models.length, `building variants of ${name}`);
    const m = ctx.config.models[name];
    const text = stages.find((s) => s.model === name)!.decoder.type === 'ctc';
    const optimize: ModelConfig['optimize'] = {
      ...m.optimize,
      enabled: true,
      precisions: ['fp32', 'int8-dynamic', 'int8-static'],
      ...(text ? { normalise: 'half', size: '320x48' } : { normalise: 'imagenet-bgr', size: '640x480' }),
      minCosine: 0.9,
    };
    const built = await buildInBackground(CLI, { ...m, optimize }, variantsDir(m.file, ctx.stateDir), ctx.log, new AbortController().signal);
    if (!built) ctx.log.warn({ model: name }, 'variants could not be built; that model stays fp32');
  }
}

type Measured = Record<string, { variant: string; fps: number[]; cpuPerFrame: number[] }>;

/** Each distinct setting of the policy in turn, `repeats` rounds: frames/s and CPU seconds per frame. */
async function timeSettings(
  cfg: ResolvedConfig,
  set: PipelineSet,
  pipelineName: string,
  { frames, repeats, progress }: { frames: Frame[]; repeats: number; progress: Progress },
): Promise<Measured> {
  const threads = cfg.runtime.threads;
  const pipeline = set.get(pipelineName);
  const settings = [...new Map(Object.values(cfg.power.policy).map((p) => [settingOf(p, threads), p])).values()];
  const measured: Measured = {};
  const cases = Object.fromEntries(
    settings.map((p) => [
      `rung ${settingOf(p, threads)}`,
      async () => {
        const { label, stages } = set.choose(pipelineName, p.precision as Rung);
        await pipeline.useVariant(label, stages, p.threads ?? threads);
        const m = await runFrames(pipeline, frames);
        const entry = (measured[settingOf(p, threads)] ??= { variant: label, fps: [], cpuPerFrame: [] });
        entry.fps.push(m.fps);
        entry.cpuPerFrame.push(m.cpuPerFrame);
      },
    ]),
  );
  await interleaved(repeats, cases, progress);
  return measured;
}

/** Every frame through the pipeline, two in flight: frames/s and CPU seconds per frame. */
async function runFrames(pipeline: StagedPipeline, frames: Frame[]) {
  let i = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await runPipelined(
    async () => (i < frames.length ? pipeline.prepare(frames[i++]) : null),
    (p) => pipeline.finish(p),
    () => undefined,
    2,
  );
  const cpu = process.cpuUsage(cpu0);
  return { fps: (frames.length * 1000) / (performance.now() - t0), cpuPerFrame: (cpu.user + cpu.system) / 1e6 / frames.length };
}

function levelsReport(
  cfg: ResolvedConfig,
  measured: Measured,
  swap: Awaited<ReturnType<typeof measureSwapStall>>,
  run: { provider: string; pipeline: string; frames: number; repeats: number },
) {
  const threads = cfg.runtime.threads;
  const levels = Object.fromEntries(
    Object.entries(cfg.power.policy).map(([level, p]) => {
      const m = measured[settingOf(p, threads)];
      const figures = { framesPerSecond: r3(median(m.fps)), cpuSecondsPerFrame: r3(median(m.cpuPerFrame)) };
      return [level, { rung: p.precision, variant: m.variant, threads: p.threads ?? threads, maxFps: p.maxFps ?? null, ...figures }];
    }),
  );
  const ratio = levels.hot.cpuSecondsPerFrame / levels.nominal.cpuSecondsPerFrame;
  return {
    kind: 'outpost-bench-levels',
    ...run,
    levels,
    hotToNominalCpuPerFrame: r3(ratio),
    swap,
    goals: { hotCpuAtMost0_6xNominal: ratio <= 0.6, swapStallUnderOneFrameInterval: swap.stallMs < swap.frameIntervalMs },
  };
}

/** Frames at a steady pace; variants swap back and forth mid-stream; the stall is the worst gap beyond the pace. */
async function measureSwapStall(pipeline: StagedPipeline, frames: Frame[], set: PipelineSet, name: string) {
  const a = set.choose(name, 'fp32');
  const b = set.choose(name, 'int8');
  const intervalMs = 200;
  const done: number[] = [];
  const swaps: Promise<void>[] = [];
  let i = 0;
  await runPipelined(
    async () => {
      if (i >= frames.length * 2) return null;
      await new Promise((r) => setTimeout(r, intervalMs));
      if (i % 5 === 4) swaps.push(pipeline.useVariant(i % 10 === 4 ? b.label : a.label, i % 10 === 4 ? b.stages : a.stages));
      return pipeline.prepare(frames[i++ % frames.length]);
    },
    (p) => pipeline.finish(p),
    () => done.push(performance.now()),
    2,
  );
  await Promise.all(swaps);
  const gaps = done.slice(1).map((t, k) => t - done[k]);
  return {
    swaps: swaps.length,
    frameIntervalMs: intervalMs,
    worstGapMs: r3(Math.max(...gaps)),
    medianGapMs: r3(median(gaps)),
    stallMs: r3(Math.max(0, Math.max(...gaps) - intervalMs)),
  };
}
