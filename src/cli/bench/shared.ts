import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { imageFrame, listImages, renderDemoFrames } from '../../camera/index.js';
import type { ComponentContext } from '../../core/index.js';
import { loadConfig } from '../../config/index.js';
import { OutpostError } from '../../errors.js';
import { PipelineSet, type PipelineSetOptions } from '../../pipeline/index.js';
import { InferenceEngine } from '../../runtime/index.js';
import type { Frame } from '../../types.js';
import { cliContext, configPath, positiveInt } from '../common.js';
import type { Progress } from '../progress.js';

/** The flags every bench mode takes: where the JSON report goes. */
export interface ReportFlags {
  json?: boolean;
  out?: string;
}

/** --out and --json, the same in every mode. */
export function withReportFlags(cmd: Command): Command {
  return cmd
    .option('-o, --out <file>', 'also write the JSON report to this file')
    .option('--json', 'the JSON report on stdout (modes without a text summary print it either way)');
}

export const configOption = () => new Option('-c, --config <file>', 'config file (default: $OUTPOST_CONFIG, ./config/outpost.yaml, or the embedded demo)');
export const repeatsOption = (fallback: number, what = 'interleaved repeats (medians are reported)') =>
  new Option('-r, --repeats <n>', what).argParser(positiveInt).default(fallback);
export const durationOption = (fallback: number, what = 'seconds measured') =>
  new Option('--duration <seconds>', what).argParser(positiveInt).default(fallback);
export const framesOptions = (cmd: Command) =>
  cmd.option('-f, --frames <dir>', 'folder of frames (default: frames from the demo camera)').option('-n, --count <n>', 'frames to use', positiveInt, 24);

/**
 * A mode's report: saved to --out, and printed as JSON, or as the mode's summary lines when it has one and
 * --json is not given.
 */
export function emitReport<R extends object>(flags: ReportFlags, report: R, summary?: (r: R) => string[]): void {
  const text = JSON.stringify(report, null, 2) + '\n';
  if (flags.out) writeFileSync(flags.out, text);
  process.stdout.write(summary && !flags.json ? summary(report).join('\n') + '\n' : text);
}

/**
 * `repeats` rounds of every case in turn (A, B, C, A, B, C …), so that a noisy machine hits them alike; each
 * case's results in the order they ran.
 */
export async function interleaved<C extends Record<string, () => Promise<unknown>>>(
  repeats: number,
  cases: C,
  progress: Progress,
): Promise<{ [K in keyof C]: Awaited<ReturnType<C[K]>>[] }> {
  const names = Object.keys(cases);
  const out: Record<string, unknown[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < repeats; r++)
    for (const [i, name] of names.entries()) {
      progress.update(r * names.length + i, repeats * names.length, name);
      out[name].push(await cases[name]());
    }
  return out as { [K in keyof C]: Awaited<ReturnType<C[K]>>[] };
}

/** The `p`th percentile (nearest rank) of ascending values; null when there are none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] : null;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A local agent's /status, or null while it does not answer. */
export async function statusOf<T = Record<string, unknown>>(port: number, timeoutMs = 2000): Promise<T | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(timeoutMs) });
    return r.ok ? ((await r.json()) as T) : null;
  } catch {
    return null;
  }
}

/** `count` frames from --frames, else from the demo camera. */
export async function loadFrames(dir: string | undefined, count: number): Promise<Frame[]> {
  if (!dir) return renderDemoFrames(count, 7);
  const files = (await listImages(dir)).slice(0, count);
  if (files.length === 0) throw new OutpostError('OUTPOST_E_INPUT', `--frames ${dir} holds no images`);
  return Promise.all(files.map((f, i) => imageFrame(f, 'bench', i)));
}

/** The config a mode measures, its CLI context, and the pipeline it times: the first camera's, else the first. */
export function benchTarget(configFlag: string | undefined) {
  const file = configPath(configFlag);
  const { config } = loadConfig(file);
  return { file, ctx: cliContext(config, 'bench'), pipeline: config.cameras[0]?.pipeline ?? Object.keys(config.pipelines)[0] };
}

/** An engine (no optimized-graph cache: every run starts alike) and the one pipeline on it, not yet started. */
export function enginePipeline(ctx: ComponentContext, name: string, extra: Omit<PipelineSetOptions, 'names'> = {}) {
  const engine = new InferenceEngine({ ...ctx.config.runtime, stateDir: ctx.stateDir, cacheOptimizedGraphs: false }, ctx.log);
  return { engine, set: new PipelineSet(ctx, engine, { ...extra, names: [name] }) };
}
