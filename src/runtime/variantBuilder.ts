import { spawn } from 'node:child_process';
import type { ModelConfig } from '../config/index.js';
import type { Logger } from '../log.js';

/**
 * Builds a model's variants in a separate `outpost optimize` process (calibration runs models flat out;
 * in the daemon it would stall the pipeline), at low priority, while fp32 keeps serving.
 */
export function buildInBackground(
  cli: string,
  model: ModelConfig,
  outDir: string,
  log: Logger,
  signal: AbortSignal,
  calibration = model.optimize.calibration,
): Promise<boolean> {
  const o = model.optimize;
  const args = [
    cli,
    'optimize',
    model.file,
    '--out',
    outDir,
    '--precision',
    o.precisions.join(','),
    '--calibration-frames',
    String(o.calibrationFrames),
    '--held-out',
    String(o.heldOut),
    '--normalise',
    o.normalise,
    '--size',
    o.size,
    '--min-cosine',
    String(o.minCosine),
    '--min-task',
    String(o.minTask),
  ];
  if (calibration) args.push('--calibration', calibration);
  if (o.placements) args.push('--placement', o.placements.join(','));
  log.info({ model: model.file, outDir }, 'building model variants in the background');
  return new Promise((resolve) => {
    const child = spawn('nice', ['-n', '10', process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', (err) => {
      if (!signal.aborted) log.error({ err: err.message }, 'could not start the variant build');
      resolve(false);
    });
    child.on('exit', (code) => {
      if (signal.aborted) resolve(false);
      else if (code === 0) log.info({ model: model.file, outDir }, 'model variants ready');
      else log.error({ model: model.file, code, stderr: stderr.trim().split('\n').slice(-3) }, 'variant build failed; fp32 keeps serving');
      resolve(code === 0);
    });
  });
}
