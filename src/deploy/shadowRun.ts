import type { OutpostConfig } from '../config/index.js';
import type { EventBus } from '../core/index.js';
import type { PipelineSet } from '../pipeline/index.js';
import { sameAnswer } from '../vision/index.js';
import type { Frame, PipelineOutput } from '../types.js';

/** What the shadow run measured: the new model's answers beside the serving one's on the board's own frames. */
export interface ShadowFigures {
  pipeline: string;
  frames: number;
  /** share of frames whose answers agree (labels and boxes at IoU ≥ 0.5, text within edit distance) */
  agreement: number;
  /** median ms per frame of the candidate, and of the serving pipeline on the same frames (its results' totals) */
  msPerFrame: number;
  servingMsPerFrame: number;
  errors: number;
}

interface Sample {
  frame: Frame;
  output: PipelineOutput;
  ms: number;
}

/**
 * The next `n` real frames of `cameras` with the answers the serving pipeline gave them (each result carries its
 * frame), taken from the live bus into a local array for this run only; null when they do not come within `timeoutMs`.
 */
export function collectSamples(bus: EventBus, owner: string, cameras: ReadonlySet<string>, n: number, timeoutMs: number): Promise<Sample[] | null> {
  const samples: Sample[] = [];
  return new Promise((resolve) => {
    const done = (v: Sample[] | null) => (clearTimeout(timer), bus.off(owner), resolve(v));
    const timer = setTimeout(() => done(null), timeoutMs);
    bus.on('result', owner, ({ result, frame }) => {
      if (!cameras.has(result.camera)) return;
      samples.push({ frame, output: result.output, ms: result.timings.totalMs });
      if (samples.length >= n) done(samples);
    });
  });
}

/** The candidate pipeline (the new model files in place of the serving ones) on each sample, compared with what served. */
export async function shadowRun(pipelines: PipelineSet, pipeline: string, files: Readonly<Record<string, string>>, samples: Sample[]): Promise<ShadowFigures> {
  const candidate = pipelines.candidate(pipeline, files);
  let [agree, errors] = [0, 0];
  const ms: number[] = [];
  try {
    await candidate.start();
    for (const s of samples) {
      const t0 = performance.now();
      try {
        const out = await candidate.process(s.frame);
        if (sameAnswer(s.output, out.output)) agree++;
      } catch {
        errors++;
      }
      ms.push(performance.now() - t0);
    }
  } finally {
    await candidate.stop();
  }
  const n = samples.length;
  return { pipeline, frames: n, agreement: agree / n, msPerFrame: median(ms), servingMsPerFrame: median(samples.map((s) => s.ms)), errors };
}

/** Medians: the candidate's first frame pays for warming its sessions. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The running pipelines that use any of `models`, and the cameras that feed each. */
export function pipelinesUsing(config: Readonly<OutpostConfig>, running: readonly string[], models: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const name of running) {
    if (!config.pipelines[name]?.stages.some((s) => models.includes(s.model))) continue;
    out.set(name, new Set(config.cameras.filter((c) => c.enabled && c.pipeline === name).map((c) => c.name)));
  }
  return out;
}
