import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../../config/index.js';
import { readModelFile } from '../../onnx/index.js';
import { AUTOTUNE, imageInput, MANIFEST, NORMALISATIONS, readManifest, type Manifest } from '../../optimize/index.js';
import { RUNG_PRECISIONS, type Precision, type ProviderName } from '../../vocabulary.js';
import { LocalSession, nodePlacement, ORT_VERSION, probeQuietly, type NodePlacement } from '../../runtime/index.js';
import type { TensorMap } from '../../types.js';
import { median, rounded } from '../../benchMath.js';
import { exitOnError } from '../common.js';
import { Progress } from '../progress.js';
import { emitReport, interleaved, repeatsOption, withReportFlags, type ReportFlags } from './shared.js';

export interface ModelsBenchOptions extends ReportFlags {
  repeats: number;
  size: string;
}

const r2 = (v: number) => rounded(v);

/** Timed runs per candidate and round (their median is the round's figure). */
const RUNS = 15;

/** `outpost bench models DIR`: every accepted variant of an optimize folder on every working provider. */
export function modelsMode(bench: Command): Command {
  const cmd = bench
    .command('models')
    .description('time every accepted variant of an optimize output folder on every provider that works here, interleaved; write DIR/autotune.json')
    .argument('<dir>', 'an `outpost optimize` output folder (it holds manifest.json)')
    .addOption(repeatsOption(5))
    .option('--size <WxH>', 'input size for models with free dimensions', '640x480');
  return withReportFlags(cmd).action((dir: string, o: ModelsBenchOptions) => benchModels(dir, o).catch(exitOnError));
}

async function benchModels(dir: string, o: ModelsBenchOptions): Promise<void> {
  const autotune = await measureModels(dir, o);
  emitReport(o, autotune, (r) =>
    r.variants.map(
      (v) =>
        `${v.provider.padEnd(6)} ${v.precision.padEnd(13)} ${String(v.threads).padStart(2)} threads ${String(v.msMedian).padStart(8)} ms  ×${v.speedupVsFp32 ?? '?'} vs the best fp32  size ×${v.bytesVsFp32}`,
    ),
  );
}

interface Candidate {
  precision: Precision;
  file: string;
  provider: ProviderName;
  threads: number;
  session: LocalSession;
  times: number[];
  placement?: NodePlacement;
}

/**
 * Every accepted variant on every provider that works here, interleaved (variant A, B, C, A, B, C …) so noise
 * hits all alike; medians; then autotune.json: per governor level the fastest accepted variant of the rung its
 * policy asks for.
 */
async function measureModels(dir: string, o: ModelsBenchOptions) {
  const manifest = readManifest(dir);
  const accepted = manifest.variants.filter((v) => v.accepted);
  const providers = (await probeQuietly('auto')).attempts.filter((a) => a.ok).map((a) => a.provider);
  const candidates = await openCandidates(dir, accepted, providers);
  try {
    const feed = feedFor(join(dir, accepted[0].file), o.size);
    for (const c of candidates) await c.session.run(feed()); // warm-up
    await placeOnAccelerators(dir, candidates, feed);
    await timeCandidates(candidates, feed, o.repeats);
  } finally {
    await Promise.all(candidates.map((c) => c.session.release()));
  }
  const variants = withSpeedups(candidates, manifest.variants);
  const autotune = {
    createdAt: new Date().toISOString(),
    ortVersion: ORT_VERSION,
    manifest: join(dir, MANIFEST),
    source: manifest.source,
    providers,
    variants,
    ...levelsOf(variants),
  };
  writeFileSync(join(dir, AUTOTUNE), JSON.stringify(autotune, null, 2) + '\n');
  return autotune;
}

/** A session per accepted variant, provider and (on the CPU) thread count: one thread can beat all cores on small models. */
async function openCandidates(dir: string, accepted: Manifest['variants'], providers: ProviderName[]): Promise<Candidate[]> {
  const threadCounts = [...new Set([1, availableParallelism()])];
  const candidates: Candidate[] = [];
  for (const provider of providers)
    for (const v of accepted)
      for (const threads of provider === 'cpu' ? threadCounts : [0]) {
        try {
          const session = await LocalSession.create(join(dir, v.file), { provider, threads, deviceId: 0, cacheDir: null });
          candidates.push({ precision: v.precision, file: v.file, provider, threads, session, times: [] });
        } catch {
          /* a variant the provider cannot load is simply not a candidate there */
        }
      }
  return candidates;
}

/** A fresh feed of the model's image input at `size` (a fixed pattern, the same every call). */
function feedFor(file: string, size: string): () => TensorMap {
  const [width, height] = size.split('x').map(Number);
  const spec = imageInput(readModelFile(file), { width, height }, NORMALISATIONS.unit);
  const data = Float32Array.from({ length: 3 * spec.width * spec.height }, (_, i) => Math.sin(i) * 0.5);
  return () => ({ [spec.name]: { type: 'float32', dims: [1, 3, spec.height, spec.width], data: data.slice() } });
}

/** Where an accelerator's nodes ran: one that leaves most of them on the CPU is slow for a reason the timing alone does not say. */
async function placeOnAccelerators(dir: string, candidates: Candidate[], feed: () => TensorMap): Promise<void> {
  for (const c of candidates.filter((x) => x.provider !== 'cpu' && x.threads <= 1)) {
    const spec = { provider: c.provider, threads: c.threads, deviceId: 0, cacheDir: null };
    c.placement = await nodePlacement(join(dir, c.file), spec, feed()).catch(() => undefined);
  }
}

async function timeCandidates(candidates: Candidate[], feed: () => TensorMap, repeats: number): Promise<void> {
  const cases = Object.fromEntries(
    candidates.map((c) => [
      `${c.provider} ${c.file} ${c.threads}`,
      async () => {
        // two untimed runs first: the previous candidate's pool threads may still be spinning on the cores
        for (let i = 0; i < 2; i++) await c.session.run(feed());
        const runs: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const input = feed();
          const t = performance.now();
          await c.session.run(input);
          runs.push(performance.now() - t);
        }
        c.times.push(median(runs));
      },
    ]),
  );
  await interleaved(repeats, cases, new Progress('bench models'));
}

/** Each candidate's figures, with its speed-up over its provider's best fp32 and its size against fp32. */
function withSpeedups(candidates: Candidate[], variants: Manifest['variants']) {
  const results = candidates.map((c) => ({
    precision: c.precision,
    file: c.file,
    provider: c.provider,
    threads: c.threads,
    msMedian: r2(median(c.times)),
    ms: c.times.map(r2),
    ...(c.placement ? { nodes: { total: c.placement.nodes, onProvider: c.placement.onProvider, cpuOps: c.placement.cpuOps } } : {}),
  }));
  const fp32 = (p: string) => results.filter((x) => x.provider === p && x.precision === 'fp32').sort((a, b) => a.msMedian - b.msMedian)[0]?.msMedian;
  const bytes = (file: string) => variants.find((v) => v.file === file)?.bytes ?? 0;
  const fp32File = variants.find((v) => v.accepted && v.precision === 'fp32')?.file;
  return results.map((x) => ({
    ...x,
    speedupVsFp32: fp32(x.provider) ? r2(fp32(x.provider)! / x.msMedian) : null,
    bytesVsFp32: r2(bytes(x.file) / bytes(fp32File ?? x.file)),
  }));
}

/** The fastest variant of each rung, and the one each governor level's default policy gets. */
function levelsOf<V extends { precision: Precision; msMedian: number }>(variants: V[]) {
  const fastestOf = (precisions: readonly Precision[]) =>
    variants.filter((x) => precisions.includes(x.precision)).sort((a, b) => a.msMedian - b.msMedian)[0] ?? null;
  const rungs = Object.fromEntries(Object.entries(RUNG_PRECISIONS).map(([rung, ps]) => [rung, fastestOf(ps)]));
  const policy = configSchema.parse({}).power.policy;
  return { rungs, levels: Object.fromEntries(Object.entries(policy).map(([level, p]) => [level, rungs[p.precision] ?? rungs.fp32])) };
}
