import { readFileSync } from 'node:fs';
import type { PipelineConfig } from '../config/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { logRejection } from '../lastResort.js';
import type { Logger } from '../log.js';
import type { InferenceWorker, SessionSpec, TensorMap } from '../runtime/index.js';
import { float32 } from '../runtime/index.js';
import type { Box, Frame, PipelineOutput, Placement, Timings } from '../types.js';
import type { ProviderName } from '../vocabulary.js';
import { decodeImage, fitImage, loadDictionary, resizeRgb, writeChw, type Fit, type RgbImage } from '../vision/index.js';
import { decoderOf, regionsOf, wholeFrame, type Region, type Stage } from './stageDecoders.js';

export interface PipelineDeps {
  worker: InferenceWorker;
  spec: SessionSpec;
  /** model name → absolute .onnx path */
  modelFiles: Readonly<Record<string, string>>;
  /** model name → the provider and threads autotune measured for its serving file (default: the spec's) */
  modelTuning?: Readonly<Record<string, Omit<StageChoice, 'file'>>>;
  log: Logger;
  /** frames of more pixels are refused by the decoder (peers' frames: `offload.serve.maxPixels`) */
  maxPixels?: number;
  /** Sees every feed before it goes to the worker (benchmarks replay them against raw sessions). */
  tap?: (stageName: string, feeds: TensorMap) => void;
}

/** A frame decoded and preprocessed for the first stage: the part that can overlap other frames' inference. */
export interface PreparedFrame {
  frame: Frame;
  /** The sessions this frame runs on from start to end, whatever swap happens meanwhile. */
  generation: Generation;
  image: RgbImage;
  first: { feeds: TensorMap; fit: Fit } | null;
  timings: Timings;
}

export interface PipelineOutcome {
  output: PipelineOutput;
  timings: Timings;
  variant: string;
  /** the execution providers of the stages that ran here, joined: `webgpu`, `webgpu+cpu` */
  provider: string;
  /** where the frame's stages ran */
  placement: Placement;
}

/** Stages [from, to) run elsewhere: `run` gets the frame and the regions of the stage before (null for the first). */
export interface RemoteRange {
  from: number;
  to: number;
  peer: string;
  run(frame: Frame, regions: PipelineOutput | null): Promise<{ output: PipelineOutput; inferMs: number }>;
}

/** What the stages carry from one to the next: boxes (with what later stages read in them) and whole-frame fields. */
interface RunState {
  regions: Region[] | null;
  output: PipelineOutput;
}

/** What a stage runs after a swap: a model file, and the provider and intra-op threads autotune found best for it. */
export interface StageChoice {
  file: string;
  threads?: number;
  provider?: ProviderName;
}

/** One set of sessions (one per stage) and the frames running on it. */
interface Generation {
  variant: string;
  stages: Stage[];
  users: number;
  /** its stages' execution providers, joined once here rather than per frame */
  provider: string;
}

function generation(variant: string, stages: Stage[]): Generation {
  return { variant, stages, users: 0, provider: [...new Set(stages.map((st) => st.info.provider))].join('+') };
}

/** Sessions kept loaded per stage beyond the ones in use, so swapping back and forth never reloads. */
const SESSIONS_KEPT_PER_STAGE = 2;

const emptyTimings = (): Timings => ({ queueMs: 0, decodeMs: 0, preprocessMs: 0, inferMs: 0, postMs: 0, totalMs: 0 });
const round3 = (v: number) => Math.round(v * 1000) / 1000;
const roundBox = (b: readonly number[]) => b.map(Math.round) as Box;

function readLabels(labels: string | string[]): string[] {
  return typeof labels === 'string'
    ? readFileSync(labels, 'utf8')
        .split(/\r?\n/)
        .filter((l) => l.length > 0)
    : labels;
}

/**
 * The stages configured under `pipelines:`: the first runs on the frame (a DB text, SSD or YOLO detector, or a
 * whole-frame classifier/recogniser); later stages run on crops of the detector's boxes. Sessions live in
 * the inference worker; this class does decoding, tensor preparation and post-processing around them.
 */
export class StagedPipeline {
  readonly modelLabel: string;
  private current: Generation = generation('fp32', []);
  private readonly live = new Set<Generation>();
  /** Loaded sessions by worker key, newest use last. */
  private readonly loaded = new Map<string, { stage: string; lastUsed: number }>();

  constructor(
    readonly name: string,
    private readonly config: PipelineConfig,
    private readonly deps: PipelineDeps,
  ) {
    this.modelLabel = config.stages.map((s) => s.model).join('+');
  }

  async start(): Promise<void> {
    const stages: Stage[] = [];
    for (const s of this.config.stages) {
      const d = s.decoder;
      const tuned = this.deps.modelTuning?.[s.model];
      const session = await this.session(s.name, this.deps.modelFiles[s.model], tuned?.threads, tuned?.provider);
      stages.push({
        config: s,
        ...session,
        dictionary: d.type === 'ctc' ? loadDictionary(d.dictionary) : [],
        labels: 'labels' in d ? readLabels(d.labels) : [],
      });
    }
    this.current = generation('fp32', stages);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.loaded.keys()].map((k) => this.deps.worker.release(k).catch(() => undefined)));
    this.loaded.clear();
    this.current = generation(this.current.variant, []);
  }

  get variant(): string {
    return this.current.variant;
  }

  /**
   * Hot swap: loads (or reuses) a session for each stage named in `choices`, then switches between frames.
   * `threads` (a governor level's) overrides each choice's own.
   * Frames already started finish on the sessions they started with; none is dropped or run twice.
   */
  async useVariant(variant: string, choices: Readonly<Record<string, StageChoice>>, threads?: number): Promise<void> {
    const stages: Stage[] = [];
    for (const stage of this.current.stages) {
      const choice = choices[stage.config.name];
      stages.push(choice ? { ...stage, ...(await this.session(stage.config.name, choice.file, threads ?? choice.threads, choice.provider)) } : stage);
    }
    this.current = generation(variant, stages);
    await this.evict();
  }

  private async session(
    stageName: string,
    file: string,
    threads = this.deps.spec.threads,
    provider = this.deps.spec.provider,
  ): Promise<Pick<Stage, 'key' | 'info' | 'inputName'>> {
    const key = `${this.name}/${stageName}#${file}@${threads}/${provider}`;
    const info = await this.deps.worker.load(key, file, { ...this.deps.spec, threads, provider }, true);
    if (!this.loaded.has(key))
      this.deps.log.info(
        { stage: `${this.name}/${stageName}`, file, provider: info.provider, threads, loadMs: Math.round(info.loadMs), fromCache: info.fromCache },
        'model loaded',
      );
    this.loaded.set(key, { stage: stageName, lastUsed: performance.now() });
    return { key, info, inputName: info.inputNames[0] };
  }

  /** Releases sessions no frame and no current stage uses, beyond the few kept per stage. */
  private async evict(): Promise<void> {
    const inUse = new Set([this.current, ...this.live].flatMap((g) => g.stages.map((s) => s.key)));
    const idle = [...this.loaded.entries()].filter(([k]) => !inUse.has(k)).sort((a, b) => b[1].lastUsed - a[1].lastUsed);
    const keptPerStage = new Map<string, number>();
    for (const [key, { stage }] of idle) {
      const kept = keptPerStage.get(stage) ?? 0;
      if (kept < SESSIONS_KEPT_PER_STAGE - 1) keptPerStage.set(stage, kept + 1);
      else if (this.loaded.delete(key)) await this.deps.worker.release(key).catch(() => undefined);
    }
  }

  async process(frame: Frame): Promise<PipelineOutcome> {
    return this.finish(await this.prepare(frame));
  }

  async prepare(frame: Frame): Promise<PreparedFrame> {
    const generation = this.acquire();
    try {
      const timings = emptyTimings();
      const image = await this.decode(frame, timings);
      const t = performance.now();
      const first = await this.frameInput(generation.stages[0], image);
      timings.preprocessMs = performance.now() - t;
      return { frame, generation, image, first, timings };
    } catch (err) {
      this.done(generation);
      throw err;
    }
  }

  async finish(p: PreparedFrame): Promise<PipelineOutcome> {
    try {
      const state = await this.runRange(p.generation, p.image, p.first, p.timings, 0, p.generation.stages.length, { regions: null, output: {} });
      return this.outcome(p.generation, state, p.timings, 'local');
    } finally {
      this.done(p.generation);
    }
  }

  /**
   * A frame with some of its stages placed on a peer: the stages before the range run here, the range on the
   * peer, the rest here again (the image is decoded only if a local stage needs it). When the peer fails, the
   * range runs here instead: the frame is still answered, once.
   */
  async placed(frame: Frame, remote: RemoteRange): Promise<PipelineOutcome> {
    const g = this.acquire();
    const timings = emptyTimings();
    let image: RgbImage | null = null;
    const decoded = async () => (image ??= await this.decode(frame, timings));
    try {
      let state: RunState = { regions: null, output: {} };
      if (remote.from > 0) state = await this.runRange(g, await decoded(), null, timings, 0, remote.from, state);
      let where: Placement = { peer: remote.peer };
      try {
        const r = await remote.run(frame, state.regions ? this.regionOutput(state.regions, g.stages.slice(0, remote.from)) : null);
        timings.inferMs += r.inferMs;
        state = { regions: regionsOf(r.output) ?? state.regions, output: { ...state.output, ...wholeFrame(r.output) } };
      } catch (err) {
        this.deps.log.warn({ peer: remote.peer, frame: frame.id, err: errorMessage(err) }, 'offload failed; running the frame here');
        where = 'local';
        state = await this.runRange(g, await decoded(), null, timings, remote.from, remote.to, state);
      }
      if (remote.to < g.stages.length) state = await this.runRange(g, await decoded(), null, timings, remote.to, g.stages.length, state);
      return this.outcome(g, state, timings, where);
    } finally {
      this.done(g);
    }
  }

  /** The first `k` stages only, here: the answer a peer must give for those stages (a known-answer probe). */
  async runPrefix(frame: Frame, k: number): Promise<PipelineOutput> {
    const g = this.acquire();
    const timings = emptyTimings();
    try {
      const state = await this.runRange(g, await this.decode(frame, timings), null, timings, 0, k, { regions: null, output: {} });
      return { ...state.output, ...(state.regions ? this.regionOutput(state.regions, g.stages.slice(0, k)) : {}) };
    } finally {
      this.done(g);
    }
  }

  /** A peer's work: every stage of this pipeline on the frame, starting from the regions it was sent (if any). */
  async runFrom(frame: Frame, regions: PipelineOutput | null): Promise<PipelineOutcome> {
    const g = this.acquire();
    const timings = emptyTimings();
    try {
      const image = await this.decode(frame, timings);
      const state = await this.runRange(g, image, null, timings, 0, g.stages.length, { regions: regions ? regionsOf(regions) : null, output: {} });
      return this.outcome(g, state, timings, 'local');
    } finally {
      this.done(g);
    }
  }

  private acquire(): Generation {
    const g = this.current;
    g.users++;
    this.live.add(g);
    return g;
  }

  private async decode(frame: Frame, timings: Timings): Promise<RgbImage> {
    const t = performance.now();
    const image = await decodeImage(frame.data, this.deps.maxPixels).catch((err: Error) => {
      throw new OutpostError('OUTPOST_E_INPUT', `frame ${frame.id} is not a decodable image (${err.message})`);
    });
    timings.decodeMs += performance.now() - t;
    return image;
  }

  private outcome(g: Generation, state: RunState, timings: Timings, placement: Placement): PipelineOutcome {
    const output = { ...state.output, ...(state.regions ? this.regionOutput(state.regions, g.stages) : {}) };
    timings.totalMs = timings.queueMs + timings.decodeMs + timings.preprocessMs + timings.inferMs + timings.postMs;
    return { output, timings, variant: g.variant, provider: g.provider, placement };
  }

  private done(g: Generation): void {
    if (--g.users > 0) return;
    this.live.delete(g);
    if (g !== this.current) this.evict().catch(logRejection(this.deps.log, 'releasing idle sessions'));
  }

  /** Stages [from, to): a crop stage annotates the regions so far, a frame stage runs on the image (stage 0 on `first` when prepared). */
  private async runRange(
    g: Generation,
    image: RgbImage,
    first: PreparedFrame['first'],
    timings: Timings,
    from: number,
    to: number,
    state: RunState,
  ): Promise<RunState> {
    let { regions } = state;
    const output = { ...state.output };
    for (let i = from; i < to; i++) {
      const stage = g.stages[i];
      if (stage.config.input === 'crops' && regions) {
        await this.annotateRegions(stage, image, regions, timings);
        continue;
      }
      const input = i === 0 && first ? first : await this.timed(timings, 'preprocessMs', () => this.frameInput(stage, image));
      const out = await this.infer(stage, input.feeds, timings);
      const t = performance.now();
      const decoded = decoderOf(stage).decodeFrame(out, stage, input.fit, image);
      if (decoded.regions) regions = decoded.regions;
      Object.assign(output, decoded.output);
      timings.postMs += performance.now() - t;
    }
    return { regions, output };
  }

  /** Text pipelines report `lines`; other detectors report `detections`. */
  private regionOutput(regions: Region[], stages: Stage[]): PipelineOutput {
    const ctcOnCrops = stages.some((s) => s.config.decoder.type === 'ctc' && s.config.input === 'crops');
    if (ctcOnCrops) {
      return {
        lines: regions
          .filter((r) => r.text !== undefined)
          .map((r) => ({
            text: r.text!,
            score: round3(r.textScore ?? r.score),
            box: roundBox(r.box),
            words: (r.words ?? []).map((w) => ({ ...w, score: round3(w.score), box: roundBox(w.box) })),
          })),
      };
    }
    return {
      detections: regions.map((r) => ({
        box: roundBox(r.box),
        score: round3(r.score),
        label: r.label,
        classIndex: r.classIndex,
        ...(r.text !== undefined ? { text: r.text } : {}),
        ...(r.classes ? { classes: r.classes.map((c) => ({ ...c, score: round3(c.score) })) } : {}),
      })),
    };
  }

  /** Runs a crop stage on every region; a recogniser drops regions it cannot read with confidence. */
  private async annotateRegions(stage: Stage, image: RgbImage, regions: Region[], timings: Timings): Promise<void> {
    if (regions.length === 0) return;
    const crops = decoderOf(stage).crops;
    if (!crops) throw new OutpostError('OUTPOST_E_CONFIG', `${stage.key}: a ${stage.config.decoder.type} stage cannot run on crops`);
    const batches = await this.timed(timings, 'preprocessMs', () =>
      crops.batches(
        stage,
        image,
        regions.map((r) => r.box),
      ),
    );
    for (const batch of batches) {
      const [out] = await this.infer(stage, { [stage.inputName]: float32(batch.tensor, batch.dims) }, timings);
      const t = performance.now();
      crops.annotate(out, batch, regions, stage);
      timings.postMs += performance.now() - t;
    }
  }

  /** The tensor for a stage that sees the whole frame, and how the frame was fitted into it. */
  private async frameInput(stage: Stage, image: RgbImage): Promise<{ feeds: TensorMap; fit: Fit }> {
    const { fit, norm } = decoderOf(stage).frameFit(stage, image);
    const fitted = fit.padX === 0 && fit.padY === 0 ? await resizeRgb(image, fit.width, fit.height) : await fitImage(image, fit);
    const tensor = new Float32Array(3 * fit.width * fit.height);
    writeChw(fitted, norm, tensor);
    return { feeds: { [stage.inputName]: float32(tensor, [1, 3, fit.height, fit.width]) }, fit };
  }

  private async infer(stage: Stage, feeds: TensorMap, timings: Timings) {
    this.deps.tap?.(stage.config.name, feeds);
    const { outputs, inferMs } = await this.deps.worker.run(stage.key, feeds);
    timings.inferMs += inferMs;
    return stage.info.outputNames.map((n) => outputs[n]);
  }

  private async timed<T>(timings: Timings, field: 'preprocessMs', fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await fn();
    } finally {
      timings[field] += performance.now() - t;
    }
  }
}
