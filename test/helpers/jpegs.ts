import sharp from 'sharp';

/** A real JPEG of a flat colour with a square at (x, y): enough to tell frames apart. */
export async function jpegFrame(i: number, width = 160, height = 120, square = { x: 10, y: 10 }): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="rgb(${(i * 40) % 255},90,140)"/><rect x="${square.x}" y="${square.y}" width="30" height="30" fill="white"/></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 80 }).toBuffer();
}

/**
 * A real, decodable baseline JPEG of any size, flat grey, built by hand in width x height / 32 bytes: one
 * Huffman code of one bit for "no change" and one for "end of block", so each 8x8 block is two zero bits.
 * A 16000x16000 one is 1 MB here, and 768 MB of RGB to a decoder that believes its header.
 */
export function greyJpeg(width: number, height: number): Buffer {
  const segment = (marker: number, body: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(0xff00 | marker, 0);
    head.writeUInt16BE(body.length + 2, 2);
    return Buffer.concat([head, body]);
  };
  const oneCode = (tableClass: number, symbol: number) => Buffer.from([tableClass << 4, 1, ...Array<number>(15).fill(0), symbol]);
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xdb, Buffer.from([0, ...Array<number>(64).fill(1)])),
    segment(0xc0, Buffer.from([8, height >> 8, height & 255, width >> 8, width & 255, 1, 1, 0x11, 0])),
    segment(0xc4, oneCode(0, 0)),
    segment(0xc4, oneCode(1, 0)),
    segment(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0])),
    Buffer.alloc(Math.ceil((blocks * 2) / 8)),
    Buffer.from([0xff, 0xd9]),
  ]);
}
