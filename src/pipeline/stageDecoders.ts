import type { StageConfig, TensorInputConfig } from '../config/index.js';
import { OutpostError } from '../errors.js';
import type { SessionInfo } from '../runtime/index.js';
import type { Box, ClassScore, PipelineOutput, TensorData, TextWord } from '../types.js';
import {
  computeFit,
  dbInputSize,
  decodeCtc,
  decodeDb,
  decodeSsd,
  decodeYolo,
  fixedSizeCropBatches,
  textLineBatches,
  wordsOf,
  topK,
  type CropBatch,
  type Fit,
  type Normalisation,
  type RgbImage,
} from '../vision/index.js';

/** One stage as loaded: its config, its session in the worker, and what its decoder reads. */
export interface Stage {
  config: StageConfig;
  key: string;
  inputName: string;
  info: SessionInfo;
  dictionary: string[];
  labels: string[];
}

/** A box from a detector stage, annotated by the stages that run on its crop. */
export interface Region {
  box: Box;
  score: number;
  label: string;
  classIndex: number;
  text?: string;
  textScore?: number;
  words?: TextWord[];
  classes?: ClassScore[];
}

type DecoderType = StageConfig['decoder']['type'];
type StageOf<T extends DecoderType> = Stage & { config: { decoder: Extract<StageConfig['decoder'], { type: T }> } };

/** What one decoder type does around its model: how the frame is fitted, how outputs are read, how crops are made. */
interface Decoder<T extends DecoderType> {
  /** The input size and normalisation for a stage that sees the whole frame. */
  frameFit(stage: StageOf<T>, image: RgbImage): { fit: Fit; norm: Normalisation };
  /** Whole-frame outputs: boxes for the stages after it, or fields of the result. */
  decodeFrame(out: TensorData[], stage: StageOf<T>, fit: Fit, image: RgbImage): { regions?: Region[]; output?: PipelineOutput };
  /** A stage that can run on a detector's crops: the batches, and how one batch's output annotates the regions. */
  crops?: {
    batches(stage: StageOf<T>, image: RgbImage, boxes: Box[]): Promise<CropBatch[]>;
    annotate(out: TensorData, batch: CropBatch, regions: Region[], stage: StageOf<T>): void;
  };
}

/** Configured size, else the model's fixed input size. */
function inputSize(stage: Stage, input: TensorInputConfig): { width: number; height: number } {
  const shape = stage.info.inputShapes[stage.inputName] ?? [];
  const width = input.width ?? (typeof shape[3] === 'number' ? shape[3] : undefined);
  const height = input.height ?? (typeof shape[2] === 'number' ? shape[2] : undefined);
  if (!width || !height) throw new OutpostError('OUTPOST_E_CONFIG', `${stage.key}: the model's input size is not fixed; set decoder.input.width and height`);
  return { width, height };
}

function tensorFit(stage: Stage, input: TensorInputConfig, image: RgbImage): { fit: Fit; norm: Normalisation } {
  const { width, height } = inputSize(stage, input);
  return { fit: computeFit(image.width, image.height, width, height, input.resize), norm: input.normalise };
}

const db: Decoder<'db'> = {
  frameFit(stage, image) {
    const d = stage.config.decoder;
    const size = dbInputSize(image.width, image.height, d.maxSide);
    return { fit: computeFit(image.width, image.height, size.width, size.height, 'fill'), norm: d.normalise };
  },
  decodeFrame([map], stage, _fit, image) {
    const [mapH, mapW] = map.dims.slice(-2);
    const boxes = decodeDb(map.data as Float32Array, mapW, mapH, image.width, image.height, stage.config.decoder);
    return { regions: boxes.map((b) => ({ box: b.box, score: b.score, label: 'text', classIndex: 0 })) };
  },
};

const ssd: Decoder<'ssd'> = {
  frameFit: (stage, image) => tensorFit(stage, stage.config.decoder.input, image),
  decodeFrame(out, stage, _fit, image) {
    const scores = out.find((o) => o.dims[o.dims.length - 1] !== 4) ?? out[0];
    const boxes = out.find((o) => o !== scores && o.dims[o.dims.length - 1] === 4);
    if (!boxes) throw new OutpostError('OUTPOST_E_MODEL', `${stage.key}: an ssd decoder needs a [1,N,4] boxes output`);
    const d = { ...stage.config.decoder, labels: stage.labels };
    return { regions: decodeSsd(scores.data as Float32Array, boxes.data as Float32Array, scores.dims[1], scores.dims[2], image.width, image.height, d) };
  },
};

const yolo: Decoder<'yolo'> = {
  frameFit: (stage, image) => tensorFit(stage, stage.config.decoder.input, image),
  decodeFrame([out], stage, fit, image) {
    const d = stage.config.decoder;
    return { regions: decodeYolo(out.data as Float32Array, out.dims, d.layout, fit, image.width, image.height, { ...d, labels: stage.labels }) };
  },
};

const classify: Decoder<'classify'> = {
  frameFit: (stage, image) => tensorFit(stage, stage.config.decoder.input, image),
  decodeFrame([out], stage) {
    const d = stage.config.decoder;
    return { output: { classes: topK(out.data as Float32Array, 1, out.data.length, d.topK, stage.labels, d.softmax)[0] } };
  },
  crops: {
    batches(stage, image, boxes) {
      const d = stage.config.decoder;
      const { width, height } = inputSize(stage, d.input);
      const fixedBatch = stage.info.inputShapes[stage.inputName]?.[0];
      return fixedSizeCropBatches(image, boxes, width, height, d.input.normalise, typeof fixedBatch === 'number' ? fixedBatch : d.batchSize);
    },
    annotate(out, batch, regions, stage) {
      const d = stage.config.decoder;
      const n = batch.indices.length;
      topK(out.data as Float32Array, n, out.data.length / n, d.topK, stage.labels, d.softmax).forEach((c, row) => (regions[batch.indices[row]].classes = c));
    },
  },
};

const ctc: Decoder<'ctc'> = {
  frameFit(stage, image) {
    const d = stage.config.decoder;
    const width = Math.min(d.maxWidth, Math.max(Math.ceil((d.height * image.width) / image.height), Math.ceil((d.height * 320) / 48)));
    return { fit: computeFit(image.width, image.height, width, d.height, 'fill'), norm: d.normalise };
  },
  decodeFrame([out], stage) {
    const [n, steps, classes] = out.dims;
    return { output: { text: decodeCtc(out.data as Float32Array, n, steps, classes, stage.dictionary)[0].text } };
  },
  crops: {
    batches: (stage, image, boxes) => textLineBatches(image, boxes, stage.config.decoder),
    annotate(out, batch, regions, stage) {
      const [n, steps, classes] = out.dims;
      decodeCtc(out.data as Float32Array, n, steps, classes, stage.dictionary).forEach((g, row) => {
        const r = regions[batch.indices[row]];
        if (g.score < stage.config.decoder.minScore || g.text.length === 0) return;
        [r.text, r.textScore] = [g.text, g.score];
        r.words = wordsOf(g, r.box, batch.widths[row], batch.dims[3], steps);
      });
    },
  },
};

const DECODERS: { [T in DecoderType]: Decoder<T> } = { db, ssd, yolo, classify, ctc };

/** The decoder a stage's config names (the table is typed so each entry sees its own config). */
export function decoderOf(stage: Stage): Decoder<DecoderType> {
  return DECODERS[stage.config.decoder.type] as Decoder<DecoderType>;
}

/** Boxes back from a pipeline's output (a peer's answer): detections and text lines, with what was read in them. */
export function regionsOf(o: PipelineOutput): Region[] | null {
  if (o.lines) return o.lines.map((l) => ({ box: l.box, score: l.score, label: 'text', classIndex: 0, text: l.text, textScore: l.score, words: l.words }));
  if (o.detections)
    return o.detections.map((d) => ({ box: d.box, score: d.score, label: d.label, classIndex: d.classIndex, text: d.text, classes: d.classes }));
  return null;
}

/** The fields of an output that are about the whole frame (a classifier's classes, a recogniser's text). */
export function wholeFrame(o: PipelineOutput): PipelineOutput {
  return { ...(o.classes ? { classes: o.classes } : {}), ...(o.text !== undefined ? { text: o.text } : {}) };
}
