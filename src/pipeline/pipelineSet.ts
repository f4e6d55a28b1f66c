import type { OutpostConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { InferenceEngine, TensorMap } from '../runtime/index.js';
import { StagedPipeline } from './stagedPipeline.js';

/** Builds and starts the named pipelines (all of them when `names` is omitted) on one engine. */
export async function startPipelines(
  config: OutpostConfig,
  engine: InferenceEngine,
  log: Logger,
  names?: Iterable<string>,
  tap?: (stageName: string, feeds: TensorMap) => void,
  /** model name → the .onnx file to serve (default: each model's configured file) */
  files?: Readonly<Record<string, string>>,
): Promise<Map<string, StagedPipeline>> {
  const modelFiles = files ?? Object.fromEntries(Object.entries(config.models).map(([k, m]) => [k, m.file]));
  const pipelines = new Map<string, StagedPipeline>();
  try {
    for (const name of names ?? Object.keys(config.pipelines)) {
      if (pipelines.has(name)) continue;
      const p = new StagedPipeline(name, config.pipelines[name], {
        worker: engine.worker,
        spec: engine.spec,
        modelFiles,
        log: log.child({ pipeline: name }),
        tap,
      });
      await p.start();
      pipelines.set(name, p);
    }
  } catch (err) {
    await Promise.all([...pipelines.values()].map((p) => p.stop()));
    throw err;
  }
  return pipelines;
}
