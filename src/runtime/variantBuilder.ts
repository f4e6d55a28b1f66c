import { spawn } from 'node:child_process';
import type { ModelConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { childEnv } from '../childEnv.js';

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
  log.info({ file: model.file, outDir }, 'building model variants in the background');
  return runNiced(args, signal).then(({ code, stderr }) => {
    if (signal.aborted) return false;
    if (code === 0) log.info({ file: model.file, outDir }, 'model variants ready');
    else log.error({ file: model.file, code, stderr }, 'variant build failed; fp32 keeps serving');
    return code === 0;
  });
}

/**
 * Runs `node ARGS` as a low-priority child process (model builds and re-timing run models flat out; in the
 * daemon they would stall the pipeline). Resolves with the exit code (null: it could not start or was aborted)
 * and the last lines it printed on stderr.
 */
export function runNiced(args: string[], signal: AbortSignal): Promise<{ code: number | null; stderr: string[] }> {
  return new Promise((resolve) => {
    const child = spawn('nice', ['-n', '10', process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], signal, env: childEnv() });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const tail = () => stderr.trim().split('\n').slice(-3);
    child.on('error', () => resolve({ code: null, stderr: tail() }));
    child.on('exit', (code) => resolve({ code, stderr: tail() }));
  });
}
