import { rawInput, type RgbImage } from './image.js';

/** How a frame was fitted into the model input: scale, then padding on the left/top. */
export interface Fit {
  scaleX: number;
  scaleY: number;
  padX: number;
  padY: number;
  width: number;
  height: number;
}

/** Letterbox keeps the aspect (YOLO); fill stretches to the input (UltraFace, classifiers). */
export function computeFit(srcW: number, srcH: number, dstW: number, dstH: number, mode: 'letterbox' | 'fill'): Fit {
  if (mode === 'fill') return { scaleX: dstW / srcW, scaleY: dstH / srcH, padX: 0, padY: 0, width: dstW, height: dstH };
  const s = Math.min(dstW / srcW, dstH / srcH);
  const w = Math.round(srcW * s);
  const h = Math.round(srcH * s);
  return { scaleX: s, scaleY: s, padX: Math.floor((dstW - w) / 2), padY: Math.floor((dstH - h) / 2), width: dstW, height: dstH };
}

/** Resizes into the model input as `fit` says; letterbox padding is grey 114, as YOLO was trained. */
export async function fitImage(img: RgbImage, fit: Fit): Promise<RgbImage> {
  const w = Math.round(img.width * fit.scaleX);
  const h = Math.round(img.height * fit.scaleY);
  let pipeline = rawInput(img).resize(w, h, { fit: 'fill' });
  if (fit.padX > 0 || fit.padY > 0 || w !== fit.width || h !== fit.height) {
    pipeline = pipeline.extend({
      left: fit.padX,
      top: fit.padY,
      right: fit.width - w - fit.padX,
      bottom: fit.height - h - fit.padY,
      background: { r: 114, g: 114, b: 114 },
    });
  }
  const data = await pipeline.raw().toBuffer();
  return { data, width: fit.width, height: fit.height };
}

/** Maps a box in model-input pixels back to the original frame, clamped to it. */
export function unfitBox(box: readonly number[], fit: Fit, frameW: number, frameH: number): [number, number, number, number] {
  const x = (v: number) => Math.min(frameW, Math.max(0, (v - fit.padX) / fit.scaleX));
  const y = (v: number) => Math.min(frameH, Math.max(0, (v - fit.padY) / fit.scaleY));
  return [x(box[0]), y(box[1]), x(box[2]), y(box[3])];
}
