import { stat } from 'node:fs/promises';
import { imageFrame, listImages } from '../camera/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { createLogger } from '../log.js';
import { loadModelVariants, startPipelines, summariseOutput, variantFiles } from '../pipeline/index.js';
import { InferenceEngine, type Rung } from '../runtime/index.js';
import { configPath, exitOnError, loadOrExit } from './common.js';

export interface InferOptions {
  config?: string;
  input: string;
  pipeline?: string;
  json?: boolean;
  /** Precision rung to run (fp32, fp16, int8, fastest) when the models have optimized variants. */
  precision?: string;
}

async function inputFiles(input: string): Promise<string[]> {
  const st = await stat(input).catch(() => {
    throw new OutpostError('OUTPOST_E_INPUT', `--input ${input} does not exist`);
  });
  return st.isDirectory() ? listImages(input) : [input];
}

/** `outpost infer`: the configured pipeline once per image, one JSON line each on stdout. */
export async function inferCommand(opts: InferOptions): Promise<void> {
  const { config } = loadOrExit(configPath(opts.config));
  const log = createLogger({ level: config.logging.level === 'info' ? 'warn' : config.logging.level, format: config.logging.format });
  const name = opts.pipeline ?? config.cameras[0]?.pipeline ?? Object.keys(config.pipelines)[0];
  if (!name || !config.pipelines[name]) exitOnError(new OutpostError('OUTPOST_E_CONFIG', `no pipeline "${name ?? ''}" in the config; pass --pipeline NAME`));
  const engine = new InferenceEngine({ ...config.runtime, stateDir: config.node.stateDir }, log);
  let failures = 0;
  try {
    const files = await inputFiles(opts.input);
    await engine.start();
    const { variants, serving } = loadModelVariants(config, engine.provider);
    const pipeline = (await startPipelines(config, engine, log, [name], undefined, serving)).get(name)!;
    if (opts.precision) {
      const { label, stages } = variantFiles(config, name, opts.precision as Rung, engine.provider, variants, serving);
      await pipeline.useVariant(label, stages);
    }
    for (const [i, file] of files.entries()) {
      try {
        const { output, timings, variant } = await pipeline.process(await imageFrame(file, 'infer', i));
        const round = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 100) / 100]));
        const line = { file, model: pipeline.modelLabel, variant, provider: engine.provider, timings: round, output };
        process.stdout.write(
          opts.json
            ? JSON.stringify(line) + '\n'
            : `${file}: ${summariseOutput(output).join(' | ') || '(nothing found)'}  [${Math.round(timings.totalMs)} ms]\n`,
        );
      } catch (err) {
        failures++;
        const msg = errorMessage(err);
        process.stderr.write(`outpost: ${msg.includes(file) ? msg : `${file}: ${msg}`}\n`);
      }
    }
    await pipeline.stop();
  } catch (err) {
    await engine.stop();
    exitOnError(err);
  }
  await engine.stop();
  if (failures > 0) process.exit(65);
}
