import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ComponentContext } from '../core/index.js';
import { decoderFiles, mapDecoderFiles, type StageConfig } from '../config/index.js';
import type { PeerFileCache } from './fileCache.js';
import type { StageSpec } from './protocol.js';
import type { InferenceEngine } from '../runtime/index.js';
import type { Frame, PipelineOutput } from '../types.js';
import { StagedPipeline, type PipelineSet } from '../pipeline/index.js';
import { logRejection } from '../lastResort.js';

const KEPT = 4;

export const sha256File = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A stage as a peer receives it: its model, dictionary and labels file named by sha256. */
export function stageSpec(stage: StageConfig, modelSha: string, fileSha: (file: string) => string): StageSpec {
  return { ...stage, model: modelSha, decoder: mapDecoderFiles(stage.decoder, fileSha) };
}

/** The inverse, on the peer: each sha256 back to this node's file. */
function stageConfig(spec: StageSpec, file: (sha: string) => string): StageConfig {
  return { ...spec, decoder: mapDecoderFiles(spec.decoder, file) };
}

/**
 * What this node runs for peers: a pipeline per distinct list of stages it is sent (kept, a few at most),
 * each stage on this node's file of the model named by its sha256 (the source file's, or its fp32 variant's).
 */
export class RemotePipelines {
  private modelsBySha: Map<string, string> | null = null;
  private filesBySha: Map<string, string> | null = null;
  private readonly pipelines = new Map<string, Promise<StagedPipeline>>();

  constructor(
    private readonly ctx: ComponentContext,
    private readonly engine: InferenceEngine,
    private readonly set: PipelineSet,
    /** files peers sent (`serve.acceptModels`) */
    private readonly cache: PeerFileCache | null = null,
  ) {}

  /** The sha256 of every configured model's source file (each served by this node's file for it). */
  models(): ReadonlySet<string> {
    return new Set(this.modelFiles().keys());
  }

  /** The models', every configured dictionary's and labels file's, and the files peers sent's sha256. */
  files(): ReadonlySet<string> {
    return new Set([...this.modelFiles().keys(), ...this.otherFiles().keys(), ...(this.cache?.shas() ?? [])]);
  }

  /** This node's file with that sha256. */
  private file(sha: string): string {
    const file = this.modelFiles().get(sha) ?? this.otherFiles().get(sha) ?? this.cache?.path(sha);
    if (!file) throw new Error(`no file with sha256 ${sha.slice(0, 12)}… here`);
    return file;
  }

  /** sha256 → the file here that serves it (hashed once). */
  private modelFiles(): Map<string, string> {
    if (this.modelsBySha) return this.modelsBySha;
    this.modelsBySha = new Map();
    for (const [name, m] of Object.entries(this.ctx.config.models)) {
      const source = this.set.variants.get(name)?.manifest.source.sha256 ?? sha256File(this.set.serving[name] ?? m.file);
      this.modelsBySha.set(source, this.set.serving[name]);
    }
    return this.modelsBySha;
  }

  private otherFiles(): Map<string, string> {
    if (this.filesBySha) return this.filesBySha;
    this.filesBySha = new Map();
    for (const stage of Object.values(this.ctx.config.pipelines).flatMap((p) => p.stages))
      for (const { file } of decoderFiles(stage.decoder)) this.filesBySha.set(sha256File(file), file);
    return this.filesBySha;
  }

  async run(stages: StageSpec[], frame: Frame, regions: PipelineOutput | null): Promise<{ output: PipelineOutput; inferMs: number }> {
    const pipeline = await this.pipeline(stages);
    const { output, timings } = await pipeline.runFrom(frame, regions);
    return { output, inferMs: timings.inferMs };
  }

  async stop(): Promise<void> {
    for (const p of this.pipelines.values()) await (await p.catch(() => null))?.stop();
    this.pipelines.clear();
  }

  private pipeline(stages: StageSpec[]): Promise<StagedPipeline> {
    const key = JSON.stringify(stages);
    const known = this.pipelines.get(key);
    if (known) return known;
    if (this.pipelines.size >= KEPT) {
      const [oldest, p] = this.pipelines.entries().next().value!;
      this.pipelines.delete(oldest);
      p.then((x) => x.stop()).catch(logRejection(this.ctx.log, `stopping peer pipeline ${oldest}`));
    }
    const name = `peer-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
    const modelFiles = Object.fromEntries(stages.map((s) => [s.model, this.file(s.model)]));
    const config = { stages: stages.map((s) => stageConfig(s, (sha) => this.file(sha))) };
    const p = new StagedPipeline(name, config, {
      worker: this.engine.worker,
      spec: this.engine.spec,
      modelFiles,
      maxPixels: this.ctx.config.offload?.serve.maxPixels,
      log: this.ctx.log.child({ pipeline: name }),
    });
    const started = p.start().then(() => p);
    started.catch(() => this.pipelines.delete(key));
    this.pipelines.set(key, started);
    return started;
  }
}
