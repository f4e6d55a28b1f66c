import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { EventBus, systemClock, type Clock, type ComponentContext } from '../../src/core/index.js';
import { resolveConfig, type OutpostConfig } from '../../src/config/index.js';
import { PipelineSet } from '../../src/pipeline/index.js';
import { InferenceEngine } from '../../src/runtime/index.js';
import { tempDir } from './paths.js';

/** A component context for a test: the config resolved as the loader would, its own bus and registry, a silent logger unless one is given. */
export function testContext(config: Readonly<OutpostConfig>, log: Logger = pino({ level: 'silent' }), clock: Clock = systemClock): ComponentContext {
  return { config: resolveConfig(config), bus: new EventBus(log), log, clock, stateDir: config.node.stateDir, registry: new Registry() };
}

/** A started engine (no graph cache) and the named pipelines on it. */
export async function startPipelineSet(config: Readonly<OutpostConfig>, names: string[], log?: Logger) {
  const ctx = testContext({ ...config, node: { ...config.node, stateDir: tempDir() } }, log);
  const engine = new InferenceEngine({ ...config.runtime, stateDir: ctx.stateDir, cacheOptimizedGraphs: false }, ctx.log);
  const set = new PipelineSet(ctx, engine, { names });
  await engine.start();
  await set.start();
  return { ctx, engine, set, stop: async () => (await set.stop(), await engine.stop()) };
}
