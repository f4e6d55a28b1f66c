import { readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { OutpostError } from '../errors.js';
import type { ModelProto } from '../onnx/index.js';
import type { TensorMap } from '../types.js';
import { computeFit, decodeImage, fitImage, resizeRgb, writeChw, type Normalisation } from '../vision/index.js';

/** Common input normalisations: what the model was trained with decides the calibration's ranges. */
export const NORMALISATIONS: Record<string, Normalisation> = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'rgb' },
  'imagenet-bgr': { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'bgr' },
  half: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], channelOrder: 'bgr' },
  ultraface: { mean: [127 / 255, 127 / 255, 127 / 255], std: [128 / 255, 128 / 255, 128 / 255], channelOrder: 'rgb' },
  unit: { mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'rgb' },
};

export interface InputSpec {
  name: string;
  /** [N, 3, H, W]: fixed dims from the model, free ones from `size` */
  height: number;
  width: number;
  normalise: Normalisation;
}

/** The image input of a model: its name and size (free dimensions take `fallback`). */
export function imageInput(model: ModelProto, fallback: { width: number; height: number }, normalise: Normalisation): InputSpec {
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const input = (model.graph?.input ?? []).find((i) => !inits.has(i.name));
  const dims = input?.type?.tensor_type?.shape?.dim ?? [];
  if (!input?.name || dims.length !== 4)
    throw new OutpostError(
      'OUTPOST_E_MODEL',
      `the model's first input is not an NCHW image (${dims.length} dims); only image models can be calibrated on frames`,
    );
  const fixed = (d: (typeof dims)[number], f: number) => (d.dim_value !== undefined && Number(d.dim_value) > 0 ? Number(d.dim_value) : f);
  return { name: input.name, height: fixed(dims[2], fallback.height), width: fixed(dims[3], fallback.width), normalise };
}

export function listFrames(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new OutpostError('OUTPOST_E_INPUT', `--calibration ${dir} is not a readable folder`);
  }
  const files = names
    .filter((n) => ['.jpg', '.jpeg', '.png'].includes(extname(n).toLowerCase()))
    .sort()
    .map((n) => join(dir, n));
  if (files.length === 0) throw new OutpostError('OUTPOST_E_INPUT', `--calibration ${dir} holds no .jpg/.png frames`);
  return files;
}

/** One feed per frame file, resized (stretched) to the input and normalised. */
export async function frameFeeds(files: string[], spec: InputSpec): Promise<TensorMap[]> {
  const feeds: TensorMap[] = [];
  for (const f of files) {
    const img = await decodeImage(f);
    const fit = computeFit(img.width, img.height, spec.width, spec.height, 'fill');
    const sized = await (fit.padX || fit.padY ? fitImage(img, fit) : resizeRgb(img, spec.width, spec.height));
    const data = new Float32Array(3 * spec.width * spec.height);
    writeChw(sized, spec.normalise, data);
    feeds.push({ [spec.name]: { type: 'float32', dims: [1, 3, spec.height, spec.width], data } });
  }
  return feeds;
}
