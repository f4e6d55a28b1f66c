import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { OutpostError, asOutpostError, errorMessage } from '../errors.js';
import { encodeModel, readModelFile, writeModelFile, type ModelProto } from '../onnx/index.js';
import type { TensorMap } from '../types.js';
import type { Precision } from '../vocabulary.js';
import { ACTIVATION_MATMUL, quantizeDynamic, type RewriteReport } from './dynamicQuant.js';
import { FidelityMeter, detectTask, fidelityFramesWanted, type Fidelity } from './fidelity.js';
import { convertFp16 } from './fp16.js';
import type { ModelRunner } from './modelRunner.js';
import { upgradeOpset } from './opsetUpgrade.js';
import { int8FriendlyRewrites } from './int8Rewrites.js';
import { compactNames } from './compactNames.js';
import { PLACEMENTS, distinctCandidates, keepFloatFor, preferenceOrder, timePlacements, type Placement, type PlacementCandidate } from './placementSearch.js';
import { calibrate, initializersAsConstants, insertQdq, type StaticOptions } from './staticQuant.js';
import { MANIFEST, type Manifest, type VariantEntry } from './manifest.js';

export interface FidelityThresholds {
  /** Least mean cosine similarity to fp32 outputs. */
  cosine: number;
  /** Least task agreement (top-1, F1, text) with fp32. */
  task: number;
}

export interface OptimizeRequest {
  source: string;
  outDir: string;
  precisions: readonly Precision[];
  /** Frames to calibrate int8-static on. */
  calibration: TensorMap[];
  /** Frames kept out of calibration, for the fidelity guard. */
  heldOut: TensorMap[];
  perChannel: boolean;
  reduceRange: boolean;
  method: StaticOptions['method'];
  thresholds: FidelityThresholds;
  ortVersion: string;
  onProgress?: (step: string, done: number, total: number) => void;
  /** int8-static placements to time (default: all of PLACEMENTS). */
  placements?: readonly Placement[];
  /** Replace `outDir` even when it holds files optimize did not write. */
  force?: boolean;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const stem = (file: string) => basename(file).replace(/\.onnx$/i, '');

/** ORT's basic level folds BatchNormalization into Conv and folds constants: the graph every variant starts from. */
async function preprocess(source: string, runner: ModelRunner, workDir: string): Promise<ModelProto> {
  const model = readModelFile(source);
  initializersAsConstants(model);
  const folded = join(workDir, 'preprocessed.onnx');
  const s = await runner.open(encodeModel(model), { optimization: 'basic', saveOptimizedTo: folded }).catch((err: unknown) => {
    const op = /No Op registered for (\S+)/.exec(errorMessage(err))?.[1];
    const why = op ? `it uses ${op}, an op ONNX Runtime does not run` : errorMessage(err);
    throw new OutpostError('OUTPOST_E_MODEL', `${source}: ONNX Runtime cannot load this model (${why}); fix or re-export it, then run optimize again`);
  });
  await s.release();
  const out = readModelFile(folded);
  rmSync(folded);
  return out;
}

async function buildOne(precision: Exclude<Precision, 'int8-static'>, base: ModelProto, req: OptimizeRequest, activations = true): Promise<Built> {
  const model = structuredClone(base);
  switch (precision) {
    case 'fp32':
      return { model, report: { quantized: {}, skipped: {} } };
    case 'fp16':
      return { model, report: convertFp16(model) };
    case 'int8-dynamic':
      upgradeOpset(model, 13); // DynamicQuantizeLinear needs opset 11; paddle exports are often at 9
      return { model, report: quantizeDynamic(model, { perChannel: req.perChannel, reduceRange: req.reduceRange, activations }) };
  }
}

interface Built {
  model: ModelProto;
  report: RewriteReport;
}

/** One int8-static graph per placement, all from one calibration (run on the graph with the most tensors). */
async function staticCandidates(base: ModelProto, req: OptimizeRequest, runner: ModelRunner): Promise<(PlacementCandidate & { report: RewriteReport })[]> {
  if (req.calibration.length === 0) throw new OutpostError('OUTPOST_E_INPUT', 'int8-static needs calibration frames (--calibration DIR)');
  const plain = structuredClone(base);
  upgradeOpset(plain, 13);
  const rewritten = structuredClone(plain);
  int8FriendlyRewrites(rewritten);
  const keepingHardSwish = structuredClone(plain);
  int8FriendlyRewrites(keepingHardSwish, { keepHardSwish: true });
  // per-channel weights always: per-tensor scales break depthwise convolutions (REFERENCE §1)
  const opts: StaticOptions = { method: req.method, percentile: 99.999, perChannel: true, reduceRange: req.reduceRange };
  const ranges = await calibrate(rewritten, req.calibration, runner, opts, (i) => req.onProgress?.('calibrating', i, req.calibration.length));
  return (req.placements ?? PLACEMENTS).map((placement) => {
    // HardSigmoid rewritten to int8-capable ops only where those ops are quantized
    const model = structuredClone(placement.floatElementwise ? plain : placement.floatHardSwish ? keepingHardSwish : rewritten);
    const report = insertQdq(model, ranges, { ...opts, keepFloat: keepFloatFor(placement) });
    compactNames(model);
    return { placement, model, encoded: encodeModel(model), report };
  });
}

async function measure(reference: TensorMap[], variantFile: string, feeds: TensorMap[], runner: ModelRunner): Promise<Fidelity | null> {
  if (feeds.length === 0) return null;
  const s = await runner.open(variantFile);
  try {
    const meter = new FidelityMeter(detectTask(reference[0]));
    for (const [i, f] of feeds.entries()) meter.add(reference[i], await s.run(structuredClone(f)));
    return meter.result();
  } finally {
    await s.release();
  }
}

function verdict(precision: Precision, report: RewriteReport, f: Fidelity | null, t: FidelityThresholds): { accepted: boolean; reason: string | null } {
  if (precision === 'fp32') return { accepted: true, reason: null };
  if (Object.keys(report.quantized).length === 0)
    return {
      accepted: false,
      reason: `nothing to convert: ${
        Object.entries(report.skipped)
          .map(([op, why]) => `${op}: ${why}`)
          .join('; ') || 'no op it applies to'
      }`,
    };
  if (!f) return { accepted: false, reason: 'no held-out frames to check fidelity on' };
  if (f.cosine < t.cosine) return { accepted: false, reason: `cosine ${f.cosine} < ${t.cosine}` };
  if (f.task && f.task.value < t.task) return { accepted: false, reason: `${f.task.metric} ${f.task.value} < ${t.task}` };
  return { accepted: true, reason: null };
}

/**
 * Builds the requested variants of a model into a fresh folder, checks each against fp32 on held-out frames,
 * writes manifest.json, then swaps the folder into place: `outDir` is never left half-written.
 */
export async function buildVariants(req: OptimizeRequest, runner: ModelRunner): Promise<Manifest> {
  checkOutDir(req.outDir, req.force ?? false);
  const sourceBytes = readFileSync(req.source);
  const partial = `${req.outDir.replace(/\/+$/, '')}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  try {
    req.onProgress?.('pre-processing', 0, 1);
    const base = await preprocess(req.source, runner, partial);
    // too few held-out frames make the task metric a coin toss: calibration frames top them up (agreement with fp32, not accuracy)
    const wanted = fidelityFramesWanted(req.thresholds.task);
    const compareOn = req.heldOut.length >= wanted ? req.heldOut : [...req.heldOut, ...req.calibration].slice(0, wanted);
    const reference = await referenceOutputs(base, compareOn, runner);
    const variants: VariantEntry[] = [];
    for (const [i, precision] of req.precisions.entries()) {
      req.onProgress?.(precision, i, req.precisions.length);
      const file = `${stem(req.source)}.${precision}.onnx`;
      const write = async ({ model, report }: Built): Promise<VariantEntry> => {
        const path = join(partial, file);
        const bytes = writeModelFile(path, model);
        const measured = await measure(reference, path, compareOn, runner);
        const fidelity = measured && { ...measured, heldOut: Math.min(req.heldOut.length, measured.frames), framesWanted: wanted };
        return { precision, file, sha256: sha256(readFileSync(path)), bytes, ...report, fidelity, ...verdict(precision, report, fidelity, req.thresholds) };
      };
      try {
        variants.push(
          precision === 'int8-static'
            ? await fastestFaithful(await staticCandidates(base, req, runner), req, runner, write)
            : precision === 'int8-dynamic'
              ? await dynamicFaithful(base, req, write)
              : await write(await buildOne(precision, base, req)),
        );
      } catch (err) {
        if (err instanceof OutpostError && err.code === 'OUTPOST_E_INPUT') throw err;
        variants.push({
          precision,
          file,
          sha256: '',
          bytes: 0,
          quantized: {},
          skipped: {},
          fidelity: null,
          accepted: false,
          reason: `could not build: ${errorMessage(err)}`,
        });
      }
    }
    const manifest: Manifest = {
      source: { file: req.source, sha256: sha256(sourceBytes), bytes: sourceBytes.length },
      createdAt: new Date().toISOString(),
      ortVersion: req.ortVersion,
      variants,
    };
    writeFileSync(join(partial, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    replaceDir(partial, req.outDir);
    return manifest;
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    throw err;
  }
}

/**
 * int8-dynamic quantizes the MatMuls between activations too (a transformer's attention: 2.26× → 2.5× on a
 * ViT); where that alone breaks the fidelity guard, they stay float and the report says why.
 */
async function dynamicFaithful(base: ModelProto, req: OptimizeRequest, write: (b: Built) => Promise<VariantEntry>): Promise<VariantEntry> {
  const entry = await write(await buildOne('int8-dynamic', base, req, true));
  if (entry.accepted || !entry.quantized[ACTIVATION_MATMUL]) return entry;
  const plain = await buildOne('int8-dynamic', base, req, false);
  plain.report.skipped[ACTIVATION_MATMUL] = `kept float: quantized, ${entry.reason}`;
  return write(plain);
}

/**
 * Times the placements on this board and keeps the first, in preference order, that passes the fidelity
 * guard (a slower, more-float placement is often the more faithful one). The manifest records every timing.
 */
async function fastestFaithful(
  candidates: (PlacementCandidate & { report: RewriteReport })[],
  req: OptimizeRequest,
  runner: ModelRunner,
  write: (b: Built) => Promise<VariantEntry>,
): Promise<VariantEntry> {
  const distinct = distinctCandidates(candidates);
  if (distinct.length === 1) return write(distinct[0]);
  const timings = await timePlacements(distinct, req.heldOut[0] ?? req.calibration[0], runner, (r, n) => req.onProgress?.('timing int8 placements', r, n));
  const msPerRun = Object.fromEntries(timings.map((t) => [t.name, t.ms]));
  const tried: { entry: VariantEntry; candidate: Built }[] = [];
  for (const t of preferenceOrder(timings)) {
    const candidate = distinct.find((d) => d.placement.name === t.name)!;
    const entry = { ...(await write(candidate)), placement: { chosen: t.name, msPerRun } };
    if (entry.accepted) return entry;
    tried.push({ entry, candidate });
  }
  // none passes: keep the most faithful on disk, so lowered thresholds can still take it
  const score = (e: VariantEntry) => (e.fidelity?.task?.value ?? 1) * 10 + (e.fidelity?.cosine ?? 0);
  const best = tried.reduce((a, b) => (score(b.entry) > score(a.entry) ? b : a));
  return best === tried[tried.length - 1] ? best.entry : { ...(await write(best.candidate)), placement: best.entry.placement };
}

async function referenceOutputs(base: ModelProto, feeds: TensorMap[], runner: ModelRunner): Promise<TensorMap[]> {
  const s = await runner.open(encodeModel(base));
  try {
    const out: TensorMap[] = [];
    for (const f of feeds) out.push(await s.run(structuredClone(f)));
    return out;
  } finally {
    await s.release();
  }
}

/** Moves the finished folder into place; an older one is moved aside first and removed after. */
/**
 * `outDir` is replaced whole at the end, so it must be ours to replace: absent, empty, or an earlier optimize
 * output (it has manifest.json). Anything else holds someone's files: refused unless `force`. The current folder
 * and its parents are never replaceable (a rename of them fails with EBUSY, and would take the user's work with it).
 */
function checkOutDir(outDir: string, force: boolean): void {
  const dir = resolve(outDir);
  const cwd = process.cwd();
  if (cwd === dir || cwd.startsWith(dir + sep) || dir === sep)
    throw new OutpostError('OUTPOST_E_USAGE', `--out ${outDir} is the current folder or one above it; name a folder of its own, such as ./models/NAME`);
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new OutpostError('OUTPOST_E_USAGE', `--out ${outDir} is a file; name a folder`);
  const entries = readdirSync(dir);
  if (entries.length === 0 || entries.includes(MANIFEST) || force) return;
  throw new OutpostError(
    'OUTPOST_E_USAGE',
    `--out ${outDir} already holds ${entries.length} files that outpost optimize did not write (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); it would replace them all. Choose another folder, or pass --force`,
  );
}

function replaceDir(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  const old = `${to}.old-${process.pid}`;
  const had = existsSync(to) && statSync(to).isDirectory();
  try {
    if (had) renameSync(to, old);
    renameSync(from, to);
  } catch (err) {
    if (had && !existsSync(to) && existsSync(old)) renameSync(old, to);
    throw asOutpostError(err, 'OUTPOST_E_IO');
  }
  if (had) rmSync(old, { recursive: true, force: true });
}
