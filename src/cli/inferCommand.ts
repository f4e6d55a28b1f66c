import { stat } from 'node:fs/promises';
import { imageFrame, listImages } from '../camera/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { PipelineSet } from '../pipeline/index.js';
import { summariseOutput } from '../resultSummary.js';
import { InferenceEngine } from '../runtime/index.js';
import type { Rung } from '../vocabulary.js';
import { loadConfig } from '../config/index.js';
import { cliContext, configPath, runComponents } from './common.js';

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
  if (!st.isDirectory()) return [input];
  const files = await listImages(input);
  if (files.length === 0) throw new OutpostError('OUTPOST_E_INPUT', `--input ${input} holds no .jpg, .jpeg or .png images`);
  return files;
}

/** `outpost infer`: the configured pipeline once per image, one JSON line each on stdout. */
export async function inferCommand(opts: InferOptions): Promise<void> {
  const { config } = loadConfig(configPath(opts.config));
  const ctx = cliContext(config, 'infer');
  const name = opts.pipeline ?? config.cameras[0]?.pipeline ?? Object.keys(config.pipelines)[0];
  if (!name || !config.pipelines[name]) throw new OutpostError('OUTPOST_E_USAGE', `no pipeline "${name ?? ''}" in the config; pass --pipeline NAME`);
  const files = await inputFiles(opts.input);
  const engine = new InferenceEngine({ ...config.runtime, stateDir: config.node.stateDir }, ctx.log);
  const set = new PipelineSet(ctx, engine, { names: [name] });
  let failures = 0;
  await runComponents(ctx, [engine, set], async () => {
    const pipeline = set.get(name);
    if (opts.precision) {
      const { label, stages, unfilled } = set.choose(name, opts.precision as Rung);
      if (unfilled.length > 0) process.stderr.write(`outpost: ${unfilled.join(', ')} has no ${opts.precision} variant; it runs fp32\n`);
      await pipeline.useVariant(label, stages);
    }
    for (const [i, file] of files.entries()) {
      try {
        const { output, timings, variant } = await pipeline.process(await imageFrame(file, 'infer', i));
        const round = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 100) / 100]));
        const line = { file, model: pipeline.modelLabel, variant, provider: engine.provider, timings: round, output };
        const text = `${file}: ${summariseOutput(output).join(' | ') || '(nothing found)'}  [${Math.round(timings.totalMs)} ms]`;
        process.stdout.write((opts.json ? JSON.stringify(line) : text) + '\n');
      } catch (err) {
        failures++;
        const msg = errorMessage(err);
        process.stderr.write(`outpost: ${msg.includes(file) ? msg : `${file}: ${msg}`}\n`);
      }
    }
  });
  if (failures > 0) throw new OutpostError('OUTPOST_E_INPUT', `${failures} of ${files.length} images could not be read`);
}
