import { statSync } from 'node:fs';
import type { OutpostConfig } from '../config/index.js';
import { OutpostError } from '../errors.js';
import { ModelVariants, variantsDir, type Rung } from '../runtime/index.js';
import type { StageChoice } from './stagedPipeline.js';

/** Every configured model's variants (null: none built yet) and the .onnx file that serves it at fp32. */
export function loadModelVariants(config: OutpostConfig, provider: string): { variants: Map<string, ModelVariants | null>; serving: Record<string, string> } {
  const variants = new Map<string, ModelVariants | null>();
  const serving: Record<string, string> = {};
  for (const [name, m] of Object.entries(config.models)) {
    const v = ModelVariants.load(variantsDir(m.file, config.node.stateDir));
    variants.set(name, v);
    if (!statSync(m.file).isDirectory()) serving[name] = m.file;
    else {
      const fp32 = v?.pick('fp32', provider)?.file;
      if (!fp32) throw new OutpostError('OUTPOST_E_MODEL', `${m.file}/manifest.json has no accepted fp32 or fp16 variant to serve`);
      serving[name] = fp32;
    }
  }
  return { variants, serving };
}

/** What a pipeline's stages run at a precision rung (file and tuned threads), and the label results carry. */
export function variantFiles(
  config: OutpostConfig,
  pipeline: string,
  rung: Rung,
  provider: string,
  variants: Map<string, ModelVariants | null>,
  serving: Record<string, string>,
): { label: string; stages: Record<string, StageChoice> } {
  const stages: Record<string, StageChoice> = {};
  const precisions = new Set<string>();
  for (const stage of config.pipelines[pipeline].stages) {
    const pick = variants.get(stage.model)?.pick(rung, provider);
    stages[stage.name] = pick ? { file: pick.file, threads: pick.threads } : { file: serving[stage.model] };
    precisions.add(pick?.precision ?? 'fp32');
  }
  return { label: [...precisions].join('+'), stages };
}
