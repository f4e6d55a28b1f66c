import sharp, { type Sharp } from 'sharp';

// libvips keeps up to 100 recent operations (50 MB) for re-use, but every camera frame is new: the cache only
// held memory (measured by `outpost bench memory`). Process-wide, as libvips' cache is.
sharp.cache(false);

/** What libvips' operation cache holds now, in bytes (0 while it is off). */
export function imageCacheBytes(): number {
  return sharp.cache().memory.current * 1024 * 1024;
}

/** Decoded pixels, interleaved RGB, row-major. */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
}

export interface Normalisation {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  channelOrder: 'rgb' | 'bgr';
}

/**
 * Decodes JPEG/PNG (or re-wraps raw RGB) into interleaved RGB; runs in libuv's pool, off the event loop. An image
 * of more than `maxPixels` is refused by the decoder before it allocates (sharp's own default otherwise).
 */
export async function decodeImage(input: Buffer | string, maxPixels?: number): Promise<RgbImage> {
  const { data, info } = await sharp(input, maxPixels === undefined ? {} : { limitInputPixels: maxPixels })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

export function rawInput(img: RgbImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

/** Resizes interleaved RGB to exactly width x height (no aspect kept: the caller chose the size). */
export async function resizeRgb(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const data = await rawInput(img).resize(width, height, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
  return { data, width, height };
}

/**
 * Writes HWC uint8 RGB into `out` as CHW float32, `(x/255 - mean) / std`, at offset `offset`, with row
 * stride `outWidth` so a narrower image can be placed left-aligned in a padded batch slot.
 */
export function writeChw(img: RgbImage, norm: Normalisation, out: Float32Array, offset = 0, outWidth = img.width, outHeight = img.height): void {
  const plane = outWidth * outHeight;
  const order = norm.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  for (let c = 0; c < 3; c++) {
    const src = order[c];
    const scale = 1 / (255 * norm.std[src]);
    const bias = -norm.mean[src] / norm.std[src];
    const base = offset + c * plane;
    for (let y = 0; y < img.height; y++) {
      const row = base + y * outWidth;
      let p = y * img.width * 3 + src;
      for (let x = 0; x < img.width; x++, p += 3) out[row + x] = img.data[p] * scale + bias;
    }
  }
}
