import sharp, { type OverlayOptions } from 'sharp';

export type HideMethod = 'blur' | 'pixelate' | 'fill';

/** A region to hide, in pixels of the source image: [x0, y0, x1, y1]. */
export type PixelBox = readonly [number, number, number, number];

/**
 * The frame as it may leave the board: shrunk to `maxWidth`, every box hidden (blurred past recognition,
 * pixelated to 8 blocks across, or filled black), re-encoded as JPEG. The hidden pixels are replaced in the
 * image itself: no layer of the original survives in the file.
 */
export async function hideRegions(jpeg: Buffer, boxes: readonly PixelBox[], method: HideMethod, opts: { maxWidth: number; quality: number }): Promise<Buffer> {
  const meta = await sharp(jpeg).metadata();
  const scale = Math.min(1, opts.maxWidth / (meta.width ?? opts.maxWidth));
  const width = Math.round((meta.width ?? 0) * scale);
  const height = Math.round((meta.height ?? 0) * scale);
  const base = await sharp(jpeg).resize(width, height).removeAlpha().raw().toBuffer();
  const overlays: OverlayOptions[] = [];
  for (const [x0, y0, x1, y1] of boxes) {
    const left = Math.max(0, Math.floor(x0 * scale));
    const top = Math.max(0, Math.floor(y0 * scale));
    const w = Math.min(width, Math.ceil(x1 * scale)) - left;
    const h = Math.min(height, Math.ceil(y1 * scale)) - top;
    if (w < 1 || h < 1) continue;
    overlays.push({ input: await hidden(base, { width, height }, { left, top, width: w, height: h }, method), left, top });
  }
  return sharp(base, { raw: { width, height, channels: 3 } })
    .composite(overlays)
    .jpeg({ quality: opts.quality })
    .toBuffer();
}

async function hidden(
  raw: Buffer,
  size: { width: number; height: number },
  r: { left: number; top: number; width: number; height: number },
  method: HideMethod,
): Promise<Buffer> {
  if (method === 'fill')
    return sharp({ create: { width: r.width, height: r.height, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
  const region = sharp(raw, { raw: { ...size, channels: 3 } }).extract(r);
  if (method === 'pixelate') {
    const blocks = Math.max(1, Math.min(8, r.width));
    const small = await region.resize(blocks, Math.max(1, Math.round((blocks * r.height) / r.width)), { kernel: 'cubic' }).toBuffer();
    return sharp(small).resize(r.width, r.height, { kernel: 'nearest' }).png().toBuffer();
  }
  // a sigma of a quarter of the region: features are gone, the image still reads as a scene
  return region
    .blur(Math.max(3, Math.min(r.width, r.height) / 4))
    .png()
    .toBuffer();
}
