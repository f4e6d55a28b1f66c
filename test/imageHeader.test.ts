import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, imageHeader } from '../src/vision/index.js';
import { greyJpeg } from './helpers/jpegs.js';

/** Issue 18 item 8: a frame's size is read from its header, as the decoder would, before a pixel is decoded. */
describe('imageHeader', () => {
  it('reads what sharp reads from real JPEGs (with EXIF and progressive) and PNGs', async () => {
    const base = sharp({ create: { width: 321, height: 123, channels: 3, background: '#884422' } });
    const images = [
      await base.clone().jpeg().toBuffer(),
      await base.clone().jpeg({ progressive: true }).withMetadata({ orientation: 6 }).toBuffer(),
      await base.clone().png().toBuffer(),
      greyJpeg(16000, 16000),
    ];
    for (const img of images) {
      const m = await sharp(img).metadata();
      expect(imageHeader(img)).toEqual({ format: m.format, width: m.width, height: m.height });
    }
  });

  it('says null for anything else: garbage, a header cut before its frame, a GIF', async () => {
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .jpeg()
      .toBuffer();
    expect(imageHeader(Buffer.from('garbage garbage'))).toBeNull();
    expect(imageHeader(jpeg.subarray(0, 30))).toBeNull();
    expect(
      imageHeader(
        await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
          .gif()
          .toBuffer(),
      ),
    ).toBeNull();
  });

  it('decodeImage refuses more pixels than it is allowed, before allocating them', async () => {
    await expect(decodeImage(greyJpeg(16000, 16000), 16_000_000)).rejects.toThrow(/pixel limit/);
    expect(await decodeImage(greyJpeg(64, 48), 16_000_000)).toMatchObject({ width: 64, height: 48 });
  });
});
