import sharp from 'sharp';
import type { MotionConfig } from '../config/index.js';

export interface MotionVerdict {
  pass: boolean;
  /** Fraction of unmasked pixels that changed against the reference frame. */
  changed: number;
  reason: 'first' | 'motion' | 'still' | 'keepalive';
}

/**
 * Compares a small grey version of each frame with the last frame let through, so a static scene costs a
 * downscaled JPEG decode (libjpeg shrinks while decoding) instead of a model run.
 */
export class MotionGate {
  private reference: Uint8Array | null = null;
  private mask: Uint8Array | null = null;
  private lastPassAt = 0;

  constructor(
    private readonly cfg: MotionConfig,
    private readonly now: () => number = Date.now,
  ) {}

  async check(jpeg: Buffer): Promise<MotionVerdict> {
    const { data, info } = await sharp(jpeg).resize({ width: this.cfg.width }).grayscale().raw().toBuffer({ resolveWithObject: true });
    const grey = new Uint8Array(data.buffer, data.byteOffset, data.length);
    if (!this.reference || this.reference.length !== grey.length) return this.pass(grey, info.width, info.height, 0, 'first');
    const mask = this.mask!;
    let changed = 0;
    let counted = 0;
    for (let i = 0; i < grey.length; i++) {
      if (mask[i]) continue;
      counted++;
      if (Math.abs(grey[i] - this.reference[i]) >= this.cfg.threshold) changed++;
    }
    const fraction = counted > 0 ? changed / counted : 0;
    if (fraction >= this.cfg.minArea && changed > 0) return this.pass(grey, info.width, info.height, fraction, 'motion');
    if (this.cfg.maxSkipSeconds > 0 && this.now() - this.lastPassAt >= this.cfg.maxSkipSeconds * 1000)
      return this.pass(grey, info.width, info.height, fraction, 'keepalive');
    return { pass: false, changed: fraction, reason: 'still' };
  }

  private pass(grey: Uint8Array, w: number, h: number, changed: number, reason: MotionVerdict['reason']): MotionVerdict {
    if (!this.mask || this.mask.length !== grey.length) this.mask = buildMask(this.cfg.masks, w, h);
    this.reference = Uint8Array.from(grey);
    this.lastPassAt = this.now();
    return { pass: true, changed, reason };
  }
}

function buildMask(regions: MotionConfig['masks'], w: number, h: number): Uint8Array {
  const mask = new Uint8Array(w * h);
  for (const [x0, y0, x1, y1] of regions) {
    for (let y = Math.floor(y0 * h); y < Math.ceil(y1 * h); y++) mask.fill(1, y * w + Math.floor(x0 * w), y * w + Math.ceil(x1 * w));
  }
  return mask;
}
