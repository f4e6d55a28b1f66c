import { rawInput, writeChw, type Normalisation, type RgbImage } from './image.js';

export interface CropSpec {
  height: number;
  maxWidth: number;
  batchSize: number;
  normalise: Normalisation;
}

export interface CropBatch {
  /** Indices into the boxes given, in the order of the batch rows. */
  indices: number[];
  /** Each row's width before padding to the batch's width. */
  widths: number[];
  tensor: Float32Array;
  dims: [number, number, number, number];
}

/** PaddleOCR pads every line to at least 320 px at height 48 (a 6.67 ratio); narrower widths hurt accuracy. */
const MIN_RATIO = 320 / 48;

async function cropLine(img: RgbImage, box: readonly number[], height: number, maxWidth: number): Promise<RgbImage> {
  const left = Math.max(0, Math.floor(box[0]));
  const top = Math.max(0, Math.floor(box[1]));
  const width = Math.max(1, Math.min(img.width, Math.ceil(box[2])) - left);
  const h = Math.max(1, Math.min(img.height, Math.ceil(box[3])) - top);
  const outW = Math.max(1, Math.min(maxWidth, Math.ceil((height * width) / h)));
  const data = await rawInput(img).extract({ left, top, width, height: h }).resize(outW, height, { fit: 'fill' }).raw().toBuffer();
  return { data, width: outW, height };
}

/**
 * Crops each box out of the frame, resizes it to the recogniser's height and groups lines of similar
 * aspect into zero-padded NCHW batches (sorting by aspect keeps padding, and so wasted compute, small).
 */
export async function textLineBatches(img: RgbImage, boxes: readonly (readonly number[])[], spec: CropSpec): Promise<CropBatch[]> {
  const lines = await Promise.all(boxes.map((b) => cropLine(img, b, spec.height, spec.maxWidth)));
  const order = lines.map((_, i) => i).sort((a, b) => lines[a].width - lines[b].width);
  const batches: CropBatch[] = [];
  for (let start = 0; start < order.length; start += spec.batchSize) {
    const indices = order.slice(start, start + spec.batchSize);
    const widest = Math.max(...indices.map((i) => lines[i].width));
    const width = Math.min(spec.maxWidth, Math.max(widest, Math.ceil(spec.height * MIN_RATIO)));
    const slot = 3 * spec.height * width;
    const tensor = new Float32Array(indices.length * slot);
    indices.forEach((i, row) => writeChw(lines[i], spec.normalise, tensor, row * slot, width, spec.height));
    batches.push({ indices, widths: indices.map((i) => lines[i].width), tensor, dims: [indices.length, 3, spec.height, width] });
  }
  return batches;
}

/** Crops resized to a fixed model input (classifiers), in NCHW batches of at most `batchSize`. */
export async function fixedSizeCropBatches(
  img: RgbImage,
  boxes: readonly (readonly number[])[],
  width: number,
  height: number,
  norm: Normalisation,
  batchSize: number,
): Promise<CropBatch[]> {
  const crops = await Promise.all(
    boxes.map(async (b) => {
      const left = Math.max(0, Math.floor(b[0]));
      const top = Math.max(0, Math.floor(b[1]));
      const w = Math.max(1, Math.min(img.width, Math.ceil(b[2])) - left);
      const h = Math.max(1, Math.min(img.height, Math.ceil(b[3])) - top);
      const data = await rawInput(img).extract({ left, top, width: w, height: h }).resize(width, height, { fit: 'fill' }).raw().toBuffer();
      return { data, width, height };
    }),
  );
  const batches: CropBatch[] = [];
  const slot = 3 * width * height;
  for (let start = 0; start < crops.length; start += batchSize) {
    const indices = crops.slice(start, start + batchSize).map((_, i) => start + i);
    const tensor = new Float32Array(indices.length * slot);
    indices.forEach((i, row) => writeChw(crops[i], norm, tensor, row * slot));
    batches.push({ indices, widths: indices.map(() => width), tensor, dims: [indices.length, 3, height, width] });
  }
  return batches;
}
