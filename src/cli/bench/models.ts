import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../../config/index.js';
import { readModelFile } from '../../onnx/index.js';
import { AUTOTUNE, imageInput, MANIFEST, NORMALISATIONS, readManifest } from '../../optimize/index.js';
import { RUNG_PRECISIONS, type Precision, type ProviderName } from '../../vocabulary.js';
import { LocalSession, nodePlacement, ORT_VERSION, probeQuietly, type NodePlacement } from '../../runtime/index.js';
import type { TensorMap } from '../../types.js';
import { median, rounded } from '../../benchMath.js';
import { Progress } from '../progress.js';

export interface ModelBenchOptions {
  modelDir: string;
  repeats: number;
  runs: number;
  size: string;
}

const r2 = (v: number) => rounded(v);

/**
 * `outpost bench --model-dir DIR`: every accepted variant on every provider that works here, interleaved
 * (variant A, B, C, A, B, C …) so noise hits all alike; medians; then autotune.json: per governor level the
 * fastest accepted variant of the rung its policy asks for.
 */
export async function benchModels(opts: ModelBenchOptions) {
  const manifest = readManifest(opts.modelDir);
  const accepted = manifest.variants.filter((v) => v.accepted);
  const providers = (await probeQuietly('auto')).attempts.filter((a) => a.ok).map((a) => a.provider);
  const [w, h] = opts.size.split('x').map(Number);
  // One thread can beat all cores on small models (no cross-core sync), so thread counts are candidates too.
  const threadCounts = [...new Set([1, availableParallelism()])];
  const candidates: {
    precision: Precision;
    file: string;
    provider: ProviderName;
    threads: number;
    session: LocalSession;
    times: number[];
    placement?: NodePlacement;
  }[] = [];
  for (const provider of providers) {
    for (const v of accepted) {
      for (const threads of provider === 'cpu' ? threadCounts : [0]) {
        const file = join(opts.modelDir, v.file);
        try {
          candidates.push({
            precision: v.precision,
            file: v.file,
            provider,
            threads,
            session: await LocalSession.create(file, { provider, threads, deviceId: 0, cacheDir: null }),
            times: [],
          });
        } catch {
          /* a variant the provider cannot load is simply not a candidate there */
        }
      }
    }
  }
  const spec = imageInput(readModelFile(join(opts.modelDir, accepted[0].file)), { width: w, height: h }, NORMALISATIONS.unit);
  const data = Float32Array.from({ length: 3 * spec.width * spec.height }, (_, i) => Math.sin(i) * 0.5);
  const feed = (): TensorMap => ({ [spec.name]: { type: 'float32', dims: [1, 3, spec.height, spec.width], data: data.slice() } });
  for (const c of candidates) await c.session.run(feed()); // warm-up
  for (const c of candidates.filter((x) => x.provider !== 'cpu' && x.threads <= 1)) {
    // an accelerator that leaves most nodes on the CPU is slow for a reason the timing alone does not say
    c.placement = await nodePlacement(join(opts.modelDir, c.file), { provider: c.provider, threads: c.threads, deviceId: 0, cacheDir: null }, feed()).catch(
      () => undefined,
    );
  }
  const progress = new Progress('bench models');
  for (let r = 0; r < opts.repeats; r++) {
    progress.update(r, opts.repeats);
    for (const c of candidates) {
      // two untimed runs first: the previous candidate's pool threads may still be spinning on the cores
      for (let i = 0; i < 2; i++) await c.session.run(feed());
      const runs: number[] = [];
      for (let i = 0; i < opts.runs; i++) {
        const input = feed();
        const t = performance.now();
        await c.session.run(input);
        runs.push(performance.now() - t);
      }
      c.times.push(median(runs));
    }
  }
  progress.done();
  await Promise.all(candidates.map((c) => c.session.release()));
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
  const withSpeedup = results.map((x) => ({
    ...x,
    speedupVsFp32: fp32(x.provider) ? r2(fp32(x.provider)! / x.msMedian) : null,
    bytesVsFp32: r2(bytes(x.file) / bytes(accepted.find((v) => v.precision === 'fp32')?.file ?? x.file)),
  }));
  function bytes(file: string) {
    return manifest.variants.find((v) => v.file === file)?.bytes ?? 0;
  }
  const fastestOf = (precisions: readonly Precision[]) =>
    withSpeedup.filter((x) => precisions.includes(x.precision)).sort((a, b) => a.msMedian - b.msMedian)[0] ?? null;
  const rungs = Object.fromEntries(Object.entries(RUNG_PRECISIONS).map(([rung, ps]) => [rung, fastestOf(ps)]));
  const policy = configSchema.parse({}).power.policy;
  const levels = Object.fromEntries(Object.entries(policy).map(([level, p]) => [level, rungs[p.precision] ?? rungs.fp32]));
  const autotune = {
    createdAt: new Date().toISOString(),
    ortVersion: ORT_VERSION,
    manifest: join(opts.modelDir, MANIFEST),
    source: manifest.source,
    providers,
    variants: withSpeedup,
    rungs,
    levels,
  };
  writeFileSync(join(opts.modelDir, AUTOTUNE), JSON.stringify(autotune, null, 2) + '\n');
  return autotune;
}
