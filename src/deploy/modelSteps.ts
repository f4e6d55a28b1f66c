import type { ComponentContext } from '../core/index.js';
import type { PipelineSet } from '../pipeline/index.js';
import type { Deployment } from './document.js';
import { fetchPinned } from './fileFetch.js';
import { fetchChunks } from './brokerChunks.js';
import type { MqttLink } from '../mqtt/index.js';
import { collectSamples, pipelinesUsing, shadowRun, type ShadowFigures } from './shadowRun.js';

/** How long the shadow run waits for the frames it compares on. */
const SHADOW_WAIT_MS = 60_000;

/** Step 2: every file fetched (its URL, or its chunks on the broker) and checked; the new model files by model name. */
export async function fetchFiles(doc: Deployment, dir: string, link: MqttLink): Promise<Record<string, string>> {
  const models: Record<string, string> = {};
  for (const f of doc.files) {
    const path = f.url ? await fetchPinned(f, dir) : await fetchChunks(link, 'deploy-chunks', f, dir);
    if (f.model) models[f.model] = path;
  }
  return models;
}

/** The config patch that points each model at its new file. */
export const modelPatch = (models: Record<string, string>) => ({
  patch: { models: Object.fromEntries(Object.entries(models).map(([m, file]) => [m, { file }])) },
});

/**
 * Step 5: each running pipeline that uses a new model is run again with it on the board's next real frames, beside
 * what served them. Returns the figures and, when a pipeline falls short of the gate, why.
 */
export async function shadowModels(
  ctx: ComponentContext,
  pipelines: PipelineSet,
  doc: Deployment,
  models: Record<string, string>,
): Promise<{ figures: ShadowFigures[]; failure: string | null }> {
  const figures: ShadowFigures[] = [];
  const using = pipelinesUsing(ctx.config, [...pipelines.pipelines.keys()], Object.keys(models));
  for (const [pipeline, cameras] of using) {
    const samples = await collectSamples(ctx.bus, 'deploy-shadow', cameras, doc.gates.shadowFrames, SHADOW_WAIT_MS);
    if (!samples) return { figures, failure: `${pipeline}: fewer than ${doc.gates.shadowFrames} frames with results in ${SHADOW_WAIT_MS / 1000} s` };
    const f = await shadowRun(pipelines, pipeline, models, samples);
    figures.push(f);
    ctx.log.info({ id: doc.id, ...f }, 'shadow run');
    if (f.errors > 0 || f.agreement < doc.gates.minAgreement)
      return {
        figures,
        failure: `${pipeline}: ${Math.round(f.agreement * 100)}% of ${f.frames} frames agree with the serving model (the gate is ${Math.round(doc.gates.minAgreement * 100)}%), ${f.errors} errors`,
      };
  }
  return { figures, failure: null };
}
