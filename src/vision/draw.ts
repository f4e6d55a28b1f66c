import sharp from 'sharp';

export interface DrawnBox {
  box: readonly number[];
  label?: string;
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Draws boxes (and labels) over an image; returns a JPEG. For snapshots and for checking by eye. */
export async function drawBoxes(image: Buffer, boxes: readonly DrawnBox[], colour = '#00ff66'): Promise<Buffer> {
  const meta = await sharp(image).metadata();
  const shapes = boxes
    .map(({ box: [x0, y0, x1, y1], label }) => {
      const rect = `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="${colour}" stroke-width="2"/>`;
      return label
        ? `${rect}<text x="${x0}" y="${Math.max(10, y0 - 3)}" font-family="sans-serif" font-size="12" fill="${colour}">${escapeXml(label)}</text>`
        : rect;
    })
    .join('');
  const overlay = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${meta.width}" height="${meta.height}">${shapes}</svg>`);
  return sharp(image)
    .composite([{ input: overlay }])
    .jpeg({ quality: 90 })
    .toBuffer();
}
