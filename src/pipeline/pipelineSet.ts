import { statSync } from 'node:fs';
import type { Component, ComponentContext } from '../core/index.js';
import type { OutpostConfig, PipelineConfig } from '../config/index.js';
import { OutpostError } from '../errors.js';
import { ModelVariants, variantsDir, type InferenceEngine, type TensorMap } from '../runtime/index.js';
import type { Precision, Rung } from '../vocabulary.js';
import { StagedPipeline, type StageChoice } from './stagedPipeline.js';

export interface PipelineSetOptions {
  /** Pipelines to run (default: those the enabled cameras feed). */
  names?: readonly string[];
  /** Sees every feed before it goes to the worker (benchmarks replay them against raw sessions). */
  tap?: (stageName: string, feeds: TensorMap) => void;
  /** Pipelines of its own a part needs beside the configured ones (the face detector uploads anonymise with). */
  extra?: Readonly<Record<string, PipelineConfig>>;
}

/** Rungs that promise a kind of variant: running something else there is worth saying. */
const OWN_PRECISIONS: Partial<Record<Rung, (p: Precision) => boolean>> = { int8: (p) => p.startsWith('int8'), fp16: (p) => p === 'fp16' };

/** What a pipeline's stages run at a rung, the label its results carry, and the models no variant of the rung could fill. */
export interface RungChoice {
  label: string;
  stages: Record<string, StageChoice>;
  /** Models that have no variant of this rung's own precisions and run their fp32 file instead. */
  unfilled: string[];
}

/**
 * The configured models (each one's variants, and the file that serves it at fp32) and the pipelines that run
 * them on the inference engine. The daemon's cameras, `infer` and `bench` all start pipelines through it.
 */
export class PipelineSet implements Component {
  readonly name = 'pipelines';
  readonly pipelines = new Map<string, StagedPipeline>();
  /** model name → its variants (null: none built yet) */
  readonly variants = new Map<string, ModelVariants | null>();
  /** model name → the .onnx file that serves it at fp32 */
  readonly serving: Record<string, string> = {};
  /** model name → the provider and threads autotune measured for that file, where it did */
  private readonly tuning: Record<string, Omit<StageChoice, 'file'>> = {};

  constructor(
    private readonly ctx: ComponentContext,
    private readonly engine: InferenceEngine,
    private readonly opts: PipelineSetOptions = {},
  ) {}

  async start(): Promise<void> {
    const config = this.ctx.config;
    this.loadVariants(config);
    const names = this.opts.names ?? config.cameras.filter((c) => c.enabled).map((c) => c.pipeline);
    for (const name of new Set([...names, ...Object.keys(this.opts.extra ?? {})])) {
      const p = new StagedPipeline(name, this.pipelineConfig(name), {
        worker: this.engine.worker,
        spec: this.engine.spec,
        modelFiles: this.serving,
        modelTuning: this.tuning,
        log: this.ctx.log.child({ pipeline: name }),
        tap: this.opts.tap,
      });
      this.pipelines.set(name, p); // registered first: stop() releases a half-started pipeline's sessions too
      await p.start();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.pipelines.values()].map((p) => p.stop()));
    this.pipelines.clear();
  }

  get(name: string): StagedPipeline {
    const p = this.pipelines.get(name);
    if (!p) throw new OutpostError('OUTPOST_E_CONFIG', `pipeline "${name}" is not running; running: ${[...this.pipelines.keys()].join(', ') || 'none'}`);
    return p;
  }

  /** A model's variants were (re)built: later rung choices use them. */
  setVariants(model: string, dir: string): void {
    this.variants.set(model, ModelVariants.load(dir));
  }

  /** What `pipeline`'s stages run at `rung`: each model's tuned pick, else its fp32 file. */
  choose(pipeline: string, rung: Rung): RungChoice {
    const stages: Record<string, StageChoice> = {};
    const precisions = new Set<string>();
    const unfilled: string[] = [];
    for (const stage of this.pipelineConfig(pipeline).stages) {
      const pick = this.variants.get(stage.model)?.pick(rung, (p) => this.engine.works(p));
      stages[stage.name] = pick ? { file: pick.file, threads: pick.threads, provider: pick.provider } : { file: this.serving[stage.model] };
      precisions.add(pick?.precision ?? 'fp32');
      if (OWN_PRECISIONS[rung] && !OWN_PRECISIONS[rung](pick?.precision ?? 'fp32')) unfilled.push(stage.model);
    }
    return { label: [...precisions].join('+'), stages, unfilled: [...new Set(unfilled)] };
  }

  /**
   * A running pipeline's twin with some models' files replaced, not registered: a deployment's shadow run
   * (the caller starts and stops it).
   */
  candidate(name: string, files: Readonly<Record<string, string>>): StagedPipeline {
    const deps = { worker: this.engine.worker, spec: this.engine.spec, modelFiles: { ...this.serving, ...files }, modelTuning: {} };
    return new StagedPipeline(`${name}:candidate`, this.pipelineConfig(name), { ...deps, log: this.ctx.log.child({ pipeline: name, candidate: true }) });
  }

  /** Hot swap of a model's file in every running pipeline, between frames (its variants were of the old file). */
  async replaceModel(model: string, file: string): Promise<void> {
    this.serving[model] = file;
    this.variants.set(model, null);
    delete this.tuning[model];
    for (const [name, p] of this.pipelines) {
      const stages = this.pipelineConfig(name).stages.filter((s) => s.model === model);
      if (stages.length > 0) await p.useVariant(p.variant, Object.fromEntries(stages.map((s) => [s.name, { file }])));
    }
  }

  /** The models a pipeline's stages run. */
  modelsOf(pipeline: string): string[] {
    return [...new Set(this.pipelineConfig(pipeline).stages.map((s) => s.model))];
  }

  private pipelineConfig(name: string): PipelineConfig {
    return this.opts.extra?.[name] ?? this.ctx.config.pipelines[name];
  }

  private loadVariants(config: Readonly<OutpostConfig>): void {
    for (const [name, m] of Object.entries(config.models)) {
      const v = ModelVariants.load(variantsDir(m.file, config.node.stateDir));
      this.variants.set(name, v);
      if (!statSync(m.file).isDirectory()) this.serving[name] = m.file;
      else {
        const fp32 = v?.pick('fp32', (p) => this.engine.works(p));
        if (!fp32) throw new OutpostError('OUTPOST_E_MODEL', `${m.file}/manifest.json has no accepted fp32 or fp16 variant to serve`);
        this.serving[name] = fp32.file;
        this.tuning[name] = { provider: fp32.provider, threads: fp32.threads };
      }
    }
  }
}
