const SOI = 0xd8;
const EOI = 0xd9;

/**
 * Splits a byte stream of concatenated JPEGs (ffmpeg's image2pipe, a multipart MJPEG body) into frames at
 * SOI/EOI markers. Chunks are kept as they arrive and joined once per frame. Entropy-coded data stuffs 0xFF
 * with 0x00, so FF D9 inside a frame only appears as its end.
 */
export class JpegStreamParser {
  /** Frames cut short by a new SOI before their EOI. */
  truncated = 0;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private inFrame = false;
  private prevByte = -1; // last byte of the previous chunk, for markers split across chunks

  constructor(private readonly maxFrameBytes = 16 * 1024 * 1024) {}

  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const prev = i === 0 ? this.prevByte : chunk[i - 1];
      if (prev !== 0xff) continue;
      if (chunk[i] === SOI) {
        if (this.inFrame) this.truncated++;
        this.reset();
        this.inFrame = true;
        start = i - 1; // include the 0xFF (which may sit in the previous chunk)
        if (start < 0) {
          this.chunks.push(Buffer.from([0xff]));
          this.bytes = 1;
          start = 0;
        }
      } else if (chunk[i] === EOI && this.inFrame) {
        this.chunks.push(chunk.subarray(start, i + 1));
        frames.push(this.chunks.length === 1 ? Buffer.from(this.chunks[0]) : Buffer.concat(this.chunks));
        this.reset();
        start = i + 1;
      }
    }
    if (this.inFrame && start < chunk.length) {
      this.chunks.push(chunk.subarray(start));
      this.bytes += chunk.length - start;
      if (this.bytes > this.maxFrameBytes) {
        this.truncated++;
        this.reset();
      }
    }
    this.prevByte = chunk.length > 0 ? chunk[chunk.length - 1] : this.prevByte;
    return frames;
  }

  private reset(): void {
    this.chunks = [];
    this.bytes = 0;
    this.inFrame = false;
  }
}
