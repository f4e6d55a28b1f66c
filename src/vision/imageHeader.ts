/** What an image's header says, read without decoding a pixel. */
export interface ImageHeader {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): not DHT (C4), JPG (C8), DAC (CC). */
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * The format and dimensions of a JPEG (its first start-of-frame, which is what a decoder uses) or a PNG (IHDR),
 * or null for anything else: a decoder's memory is width x height, so a request is judged by this before decoding.
 */
export function imageHeader(data: Uint8Array): ImageHeader | null {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length >= 24 && b.subarray(0, 8).equals(PNG_SIGNATURE) && b.toString('latin1', 12, 16) === 'IHDR') {
    return { format: 'png', width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return null;
    const marker = b[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan data or the end before any frame header
    const length = b.readUInt16BE(at + 2);
    if (isSof(marker)) return at + 9 <= b.length ? { format: 'jpeg', height: b.readUInt16BE(at + 5), width: b.readUInt16BE(at + 7) } : null;
    if (length < 2) return null;
    at += 2 + length;
  }
  return null;
}
