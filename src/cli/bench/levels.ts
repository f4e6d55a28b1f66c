import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ComponentContext } from '../../component.js';
import type { OutpostConfig } from '../../config/index.js';
import { PipelineSet, runPipelined, type StagedPipeline } from '../../pipeline/index.js';
import { buildInBackground, InferenceEngine, variantsDir } from '../../runtime/index.js';
import type { Rung } from '../../vocabulary.js';
import type { Frame } from '../../types.js';
import { median, rounded } from '../../benchMath.js';
import { Progress } from '../progress.js';

const r3 = (v: number) => rounded(v, 3);

/**
 * `outpost bench --levels`: builds the models' variants (as the daemon would in the background), then forces
 * each governor level's rung on the same frames: frames/s, CPU seconds per frame, and the stall a hot swap
 * causes in a steady stream of frames.
 */
export async function benchLevels(base: ComponentContext, pipelineName: string, frames: Frame[], repeats: number, cli: string) {
  const stateDir = mkdtempSync(join(tmpdir(), 'outpost-bench-levels-'));
  const cfg: OutpostConfig = { ...base.config, node: { ...base.config.node, stateDir } };
  const ctx: ComponentContext = { ...base, config: cfg, stateDir };
  const log = ctx.log;
  const engine = new InferenceEngine({ ...cfg.runtime, stateDir, cacheOptimizedGraphs: false }, log);
  const set = new PipelineSet(ctx, engine, { names: [pipelineName] });
  try {
    const progress = new Progress('bench levels');
    const models = [...new Set(cfg.pipelines[pipelineName].stages.map((s) => s.model))];
    for (const [i, name] of models.entries()) {
      progress.update(i, models.length, `building variants of ${name}`);
      const m = cfg.models[name];
      const normalise = cfg.pipelines[pipelineName].stages.find((s) => s.model === name)!.decoder.type === 'ctc' ? 'half' : 'imagenet-bgr';
      const size = normalise === 'half' ? '320x48' : '640x480';
      const built = await buildInBackground(
        cli,
        { ...m, optimize: { ...m.optimize, enabled: true, precisions: ['fp32', 'int8-dynamic', 'int8-static'], normalise, size, minCosine: 0.9 } },
        variantsDir(m.file, stateDir),
        log,
        new AbortController().signal,
      );
      if (!built) log.warn({ model: name }, 'variants could not be built; that model stays fp32');
    }
    await engine.start();
    await set.start();
    const pipeline = set.get(pipelineName);
    const settings = [...new Map(Object.values(cfg.power.policy).map((p) => [`${p.precision}@${p.threads ?? cfg.runtime.threads}`, p])).values()];
    const measured: Record<string, { variant: string; fps: number[]; cpuPerFrame: number[] }> = {};
    const keyOf = (p: { precision: string; threads?: number }) => `${p.precision}@${p.threads ?? cfg.runtime.threads}`;
    const runFrames = async () => {
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
    };
    for (let r = 0; r < repeats; r++) {
      for (const p of settings) {
        progress.update(r, repeats, `rung ${p.precision}`);
        const { label, stages } = set.choose(pipelineName, p.precision as Rung);
        await pipeline.useVariant(label, stages, p.threads ?? cfg.runtime.threads);
        const m = await runFrames();
        const entry = (measured[keyOf(p)] ??= { variant: label, fps: [], cpuPerFrame: [] });
        entry.fps.push(m.fps);
        entry.cpuPerFrame.push(m.cpuPerFrame);
      }
    }
    const swap = await measureSwapStall(pipeline, frames, set, pipelineName);
    progress.done();
    const levels = Object.fromEntries(
      Object.entries(cfg.power.policy).map(([level, p]) => {
        const m = measured[keyOf(p)];
        return [
          level,
          {
            rung: p.precision,
            variant: m.variant,
            threads: p.threads ?? cfg.runtime.threads,
            maxFps: p.maxFps ?? null,
            framesPerSecond: r3(median(m.fps)),
            cpuSecondsPerFrame: r3(median(m.cpuPerFrame)),
          },
        ];
      }),
    );
    const ratio = levels.hot.cpuSecondsPerFrame / levels.nominal.cpuSecondsPerFrame;
    return {
      kind: 'outpost-bench-levels',
      provider: engine.provider,
      pipeline: pipelineName,
      frames: frames.length,
      repeats,
      levels,
      hotToNominalCpuPerFrame: r3(ratio),
      swap,
      goals: { hotCpuAtMost0_6xNominal: ratio <= 0.6, swapStallUnderOneFrameInterval: swap.stallMs < swap.frameIntervalMs },
    };
  } finally {
    await set.stop();
    await engine.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
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
