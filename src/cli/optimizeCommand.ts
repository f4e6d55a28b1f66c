import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CalibrationRecorder, createSource, recordFrom, renderDemoFrames } from '../camera/index.js';
import { createLogger } from '../log.js';
import { loadConfig } from '../config/index.js';
import { configPath } from './common.js';
import { OutpostError } from '../errors.js';
import { readModelFile } from '../onnx/index.js';
import { buildVariants, frameFeeds, imageInput, listFrames, needsReduceRange, NORMALISATIONS, PLACEMENTS, type Placement } from '../optimize/index.js';
import { PRECISIONS, type Precision } from '../vocabulary.js';
import { localModelRunner, ORT_VERSION, probeQuietly } from '../runtime/index.js';
import { Progress } from './progress.js';

export interface OptimizeOptions {
  out: string;
  precision?: string;
  calibration?: string;
  calibrationFrames: number;
  heldOut: number;
  perChannel?: boolean;
  method: 'minmax' | 'percentile';
  /** int8-static placements to time (comma-separated names). */
  placement?: string;
  normalise: string;
  size: string;
  minCosine: number;
  minTask: number;
  json?: boolean;
  /** Replace --out even when it holds files optimize did not write. */
  force?: boolean;
  /** Record the calibration frames from this camera of the config. */
  camera?: string;
  config?: string;
}

/** fp16 only pays off on a GPU provider (REFERENCE §1): built by default only where one works. */
async function defaultPrecisions(): Promise<Precision[]> {
  const gpu = (await probeQuietly('auto')).attempts.some((a) => a.ok && a.provider !== 'cpu');
  return gpu ? ['fp32', 'fp16', 'int8-dynamic', 'int8-static'] : ['fp32', 'int8-dynamic', 'int8-static'];
}

function parsePlacements(text: string): Placement[] {
  return text.split(',').map((name) => {
    const p = PLACEMENTS.find((x) => x.name === name.trim());
    if (!p) throw new OutpostError('OUTPOST_E_USAGE', `--placement ${name.trim()} is not one of ${PLACEMENTS.map((x) => x.name).join(', ')}`);
    return p;
  });
}

function parsePrecisions(text: string): Precision[] {
  const list = text.split(',').map((s) => s.trim());
  for (const p of list)
    if (!(PRECISIONS as readonly string[]).includes(p)) throw new OutpostError('OUTPOST_E_USAGE', `--precision ${p} is not one of ${PRECISIONS.join(', ')}`);
  return list as Precision[];
}

/** Demo-camera frames written to a temporary folder when no --calibration folder is given. */
async function demoFrames(n: number): Promise<{ dir: string; files: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-calibration-'));
  const recorder = new CalibrationRecorder(dir, n, 0);
  for (const f of await renderDemoFrames(n, 11)) recorder.offer(f);
  return { dir, files: recorder.files };
}

/** Frames recorded from a configured camera (at least 250 ms apart, so they are not one moment). */
async function cameraFrames(name: string, configFile: string | undefined, n: number): Promise<{ dir: string; files: string[] }> {
  const { config } = loadConfig(configPath(configFile));
  const camera = config.cameras.find((c) => c.name === name);
  if (!camera)
    throw new OutpostError('OUTPOST_E_USAGE', `no camera "${name}" in the config; cameras: ${config.cameras.map((c) => c.name).join(', ') || 'none'}`);
  const dir = mkdtempSync(join(tmpdir(), 'outpost-calibration-'));
  const files = await recordFrom(
    createSource(camera, { log: createLogger({ level: 'warn', format: 'auto' }) }),
    new CalibrationRecorder(dir, n),
    Math.max(30_000, n * 2000),
  );
  if (files.length === 0) throw new OutpostError('OUTPOST_E_CAMERA', `camera "${name}" delivered no frame; check it with outpost run`);
  return { dir, files };
}

/** `outpost optimize MODEL --out DIR`: builds the variants, checks them against fp32, writes manifest.json. */
export async function optimizeCommand(model: string, opts: OptimizeOptions): Promise<void> {
  const placements = opts.placement ? parsePlacements(opts.placement) : undefined;
  const precisions = opts.precision ? parsePrecisions(opts.precision) : await defaultPrecisions();
  const norm = NORMALISATIONS[opts.normalise];
  if (!norm) throw new OutpostError('OUTPOST_E_USAGE', `--normalise ${opts.normalise} is not one of ${Object.keys(NORMALISATIONS).join(', ')}`);
  const [w, h] = opts.size.split('x').map(Number);
  if (!w || !h) throw new OutpostError('OUTPOST_E_USAGE', `--size ${opts.size} is not WIDTHxHEIGHT`);
  const spec = imageInput(readModelFile(model), { width: w, height: h }, norm);
  const wanted = opts.calibrationFrames + opts.heldOut;
  if (opts.calibration && opts.camera) throw new OutpostError('OUTPOST_E_USAGE', 'give --calibration DIR or --camera NAME, not both');
  const temp = opts.calibration ? null : opts.camera ? await cameraFrames(opts.camera, opts.config, wanted) : await demoFrames(wanted);
  const files = temp ? temp.files : listFrames(opts.calibration!).slice(0, wanted);
  const split = files.length >= wanted ? opts.calibrationFrames : Math.max(1, Math.floor(files.length * 0.75));
  const progress = new Progress('optimize');
  try {
    const manifest = await buildVariants(
      {
        source: model,
        outDir: opts.out,
        precisions,
        calibration: await frameFeeds(files.slice(0, split), spec),
        heldOut: await frameFeeds(files.slice(split), spec),
        perChannel: opts.perChannel ?? false,
        placements,
        force: opts.force,
        reduceRange: needsReduceRange(),
        method: opts.method,
        thresholds: { cosine: opts.minCosine, task: opts.minTask },
        ortVersion: ORT_VERSION,
        onProgress: (step, done, total) => progress.update(done, total, step),
      },
      localModelRunner({ provider: 'cpu', threads: 0 }),
    );
    progress.done();
    if (opts.json) process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
    else {
      process.stdout.write(`${opts.out}/manifest.json (source ${manifest.source.bytes} bytes)\n`);
      for (const v of manifest.variants) {
        const f = v.fidelity;
        const few = f?.framesWanted && f.frames < f.framesWanted ? ` on only ${f.frames} of the ${f.framesWanted} frames the guard wants` : '';
        const fid = f ? `cosine ${f.cosine}${f.task ? `, ${f.task.metric} ${f.task.value}` : ''}${few}` : 'no fidelity check';
        process.stdout.write(
          `  ${v.precision.padEnd(13)} ${v.accepted ? 'accepted' : 'REJECTED'}  ${(v.bytes / 2 ** 20).toFixed(2)} MiB  ${fid}${v.reason ? `  (${v.reason})` : ''}\n`,
        );
      }
    }
  } finally {
    if (temp) rmSync(temp.dir, { recursive: true, force: true });
  }
}
