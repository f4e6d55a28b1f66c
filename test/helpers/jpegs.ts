import sharp from 'sharp';

/** A real JPEG of a flat colour with a square at (x, y): enough to tell frames apart. */
export async function jpegFrame(i: number, width = 160, height = 120, square = { x: 10, y: 10 }): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="rgb(${(i * 40) % 255},90,140)"/><rect x="${square.x}" y="${square.y}" width="30" height="30" fill="white"/></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 80 }).toBuffer();
}
