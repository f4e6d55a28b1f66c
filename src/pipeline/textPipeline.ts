import type { DbDecoderConfig, CtcDecoderConfig, PipelineConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { InferenceWorker, SessionSpec, TensorMap } from '../runtime/index.js';
import { float32 } from '../runtime/index.js';
import type { Box, Frame, TextOutput, Timings } from '../types.js';
import {
  dbInputSize,
  decodeCtc,
  decodeDb,
  decodeImage,
  loadDictionary,
  resizeRgb,
  textLineBatches,
  writeChw,
  type RgbImage,
  type ScoredBox,
} from '../vision/index.js';

export interface PipelineDeps {
  worker: InferenceWorker;
  spec: SessionSpec;
  /** model name → absolute .onnx path */
  modelFiles: Readonly<Record<string, string>>;
  log: Logger;
  /** Sees every feed before it goes to the worker (benchmarks replay them against raw sessions). */
  tap?: (stageKey: string, feeds: TensorMap) => void;
}

/** A frame decoded and preprocessed for the first stage: the part that can overlap the previous inference. */
export interface PreparedFrame {
  frame: Frame;
  image: RgbImage;
  firstInput: TensorMap | null;
  timings: Timings;
}

export interface PipelineOutcome {
  output: TextOutput;
  timings: Timings;
}

type Stage = { name: string; key: string; input: 'frame' | 'crops' } & ({ kind: 'db'; decoder: DbDecoderConfig } | { kind: 'ctc'; decoder: CtcDecoderConfig; dictionary: string[] });

function emptyTimings(): Timings {
  return { queueMs: 0, decodeMs: 0, preprocessMs: 0, inferMs: 0, postMs: 0, totalMs: 0 };
}

/**
 * Detector → crops → recogniser, as configured under `pipelines:`. Sessions live in the inference worker;
 * this class does the JPEG decode, tensor preparation and decoding around them.
 */
export class TextPipeline {
  readonly modelLabel: string;
  private stages: Stage[] = [];
  private inputNames = new Map<string, string>();

  constructor(
    readonly name: string,
    private readonly config: PipelineConfig,
    private readonly deps: PipelineDeps,
  ) {
    this.modelLabel = config.stages.map((s) => s.model).join('+');
  }

  async start(): Promise<void> {
    for (const s of this.config.stages) {
      const key = `${this.name}/${s.name}`;
      const info = await this.deps.worker.load(key, this.deps.modelFiles[s.model], this.deps.spec);
      this.inputNames.set(key, info.inputNames[0]);
      this.deps.log.info({ stage: key, provider: info.provider, loadMs: Math.round(info.loadMs), fromCache: info.fromCache }, 'model loaded');
      const base = { name: s.name, key, input: s.input };
      this.stages.push(s.decoder.type === 'db' ? { ...base, kind: 'db', decoder: s.decoder } : { ...base, kind: 'ctc', decoder: s.decoder, dictionary: loadDictionary(s.decoder.dictionary) });
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.stages.map((s) => this.deps.worker.release(s.key).catch(() => undefined)));
    this.stages = [];
  }

  async process(frame: Frame): Promise<PipelineOutcome> {
    return this.finish(await this.prepare(frame));
  }

  async prepare(frame: Frame): Promise<PreparedFrame> {
    const timings = emptyTimings();
    let t = performance.now();
    const image = await decodeImage(frame.data);
    timings.decodeMs = performance.now() - t;
    t = performance.now();
    const first = this.stages[0];
    const firstInput = first.kind === 'db' ? await this.detectorInput(first, image) : null;
    timings.preprocessMs = performance.now() - t;
    return { frame, image, firstInput, timings };
  }

  async finish(p: PreparedFrame): Promise<PipelineOutcome> {
    const timings = p.timings;
    let boxes: ScoredBox[] = [{ box: [0, 0, p.image.width, p.image.height], score: 1 }];
    let texts: string[] | null = null;
    let scores: number[] = boxes.map((b) => b.score);
    for (const stage of this.stages) {
      if (stage.kind === 'db') {
        const input = p.firstInput ?? (await this.detectorInput(stage, p.image));
        const { outputs, inferMs } = await this.infer(stage.key, input);
        timings.inferMs += inferMs;
        const t = performance.now();
        const map = Object.values(outputs)[0];
        const [mapH, mapW] = map.dims.slice(-2);
        boxes = decodeDb(map.data as Float32Array, mapW, mapH, p.image.width, p.image.height, stage.decoder);
        scores = boxes.map((b) => b.score);
        timings.postMs += performance.now() - t;
      } else {
        const read = await this.recognise(stage, p.image, boxes, timings);
        const keep = read.map((r, i) => (r.score >= stage.decoder.minScore && r.text.length > 0 ? i : -1)).filter((i) => i >= 0);
        boxes = keep.map((i) => boxes[i]);
        texts = keep.map((i) => read[i].text);
        scores = keep.map((i) => read[i].score);
      }
    }
    const lines = boxes.map((b, i) => ({ text: texts?.[i] ?? '', score: round(scores[i]), box: b.box.map(Math.round) as Box }));
    timings.totalMs = timings.queueMs + timings.decodeMs + timings.preprocessMs + timings.inferMs + timings.postMs;
    return { output: { lines }, timings };
  }

  private infer(key: string, feeds: TensorMap) {
    this.deps.tap?.(key, feeds);
    return this.deps.worker.run(key, feeds);
  }

  private async detectorInput(stage: Stage & { kind: 'db' }, image: RgbImage): Promise<TensorMap> {
    const size = dbInputSize(image.width, image.height, stage.decoder.maxSide);
    const resized = await resizeRgb(image, size.width, size.height);
    const tensor = new Float32Array(3 * size.width * size.height);
    writeChw(resized, stage.decoder.normalise, tensor);
    return { [this.inputNames.get(stage.key)!]: float32(tensor, [1, 3, size.height, size.width]) };
  }

  private async recognise(stage: Stage & { kind: 'ctc' }, image: RgbImage, boxes: ScoredBox[], timings: Timings) {
    if (boxes.length === 0) return [];
    let t = performance.now();
    const batches = await textLineBatches(image, boxes.map((b) => b.box), stage.decoder);
    timings.preprocessMs += performance.now() - t;
    const read = new Array<{ text: string; score: number }>(boxes.length);
    for (const batch of batches) {
      const { outputs, inferMs } = await this.infer(stage.key, { [this.inputNames.get(stage.key)!]: float32(batch.tensor, batch.dims) });
      timings.inferMs += inferMs;
      t = performance.now();
      const probs = Object.values(outputs)[0];
      const [n, steps, classes] = probs.dims;
      decodeCtc(probs.data as Float32Array, n, steps, classes, stage.dictionary).forEach((g, row) => (read[batch.indices[row]] = g));
      timings.postMs += performance.now() - t;
    }
    return read;
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;
