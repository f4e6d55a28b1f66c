/** DB (differentiable binarisation) text-detector post-processing, as PaddleOCR's DBPostProcess does it. */

export interface DbOptions {
  threshold: number;
  boxThreshold: number;
  unclipRatio: number;
  minSize: number;
  maxBoxes: number;
  /** Boxes on one row closer than this many line heights are one line ("VALVE" + "39"); 0 disables. */
  mergeGap: number;
}

export interface ScoredBox {
  box: [number, number, number, number];
  score: number;
}

/** Size fed to the detector: longest side at most maxSide, both sides multiples of 32 (never upscaled). */
export function dbInputSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const ratio = Math.max(width, height) > maxSide ? maxSide / Math.max(width, height) : 1;
  const round32 = (v: number) => Math.max(32, Math.round((v * ratio) / 32) * 32);
  return { width: round32(width), height: round32(height) };
}

interface Component {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  sum: number;
  count: number;
}

/** 8-connected components of prob > threshold, with bounding box and mean probability. */
function components(prob: Float32Array, w: number, h: number, threshold: number): Component[] {
  const seen = new Uint8Array(w * h);
  const stack = new Int32Array(w * h);
  const out: Component[] = [];
  for (let start = 0; start < w * h; start++) {
    if (seen[start] || prob[start] <= threshold) continue;
    const c: Component = { x0: w, y0: h, x1: -1, y1: -1, sum: 0, count: 0 };
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const i = stack[--top];
      const x = i % w;
      const y = (i - x) / w;
      c.sum += prob[i];
      c.count++;
      if (x < c.x0) c.x0 = x;
      if (x > c.x1) c.x1 = x;
      if (y < c.y0) c.y0 = y;
      if (y > c.y1) c.y1 = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= w) continue;
          const j = ny * w + nx;
          if (!seen[j] && prob[j] > threshold) {
            seen[j] = 1;
            stack[top++] = j;
          }
        }
      }
    }
    out.push(c);
  }
  return out;
}

/**
 * Turns the probability map (mapW x mapH) into boxes in original-frame pixels, in reading order.
 * Text lines here are axis-aligned boxes: the unclip distance is area * ratio / perimeter, as in DB.
 */
export function decodeDb(prob: Float32Array, mapW: number, mapH: number, origW: number, origH: number, opts: DbOptions): ScoredBox[] {
  const sx = origW / mapW;
  const sy = origH / mapH;
  const boxes: ScoredBox[] = [];
  for (const c of components(prob, mapW, mapH, opts.threshold)) {
    const w = c.x1 - c.x0 + 1;
    const h = c.y1 - c.y0 + 1;
    const score = c.sum / c.count;
    if (Math.min(w, h) < opts.minSize || score < opts.boxThreshold) continue;
    const d = (w * h * opts.unclipRatio) / (2 * (w + h));
    if (Math.min(w, h) + 2 * d < opts.minSize + 2) continue;
    const clampX = (v: number) => Math.min(origW, Math.max(0, Math.round(v * sx)));
    const clampY = (v: number) => Math.min(origH, Math.max(0, Math.round(v * sy)));
    boxes.push({ box: [clampX(c.x0 - d), clampY(c.y0 - d), clampX(c.x1 + 1 + d), clampY(c.y1 + 1 + d)], score });
  }
  boxes.sort((a, b) => b.score - a.score);
  return readingOrder(mergeRowNeighbours(boxes.slice(0, opts.maxBoxes), opts.mergeGap));
}

/** Joins boxes that share a row (vertical overlap ≥ 60% of the shorter) and are separated by a word gap. */
export function mergeRowNeighbours(boxes: ScoredBox[], gap: number): ScoredBox[] {
  if (gap <= 0) return boxes;
  const out = [...boxes].sort((a, b) => a.box[0] - b.box[0]);
  for (let merged = true; merged;) {
    merged = false;
    for (let i = 0; i < out.length && !merged; i++) {
      for (let j = i + 1; j < out.length && !merged; j++) {
        const [a, b] = [out[i].box, out[j].box];
        const h = Math.min(a[3] - a[1], b[3] - b[1]);
        const overlap = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
        const dx = Math.max(a[0], b[0]) - Math.min(a[2], b[2]);
        if (overlap >= 0.6 * h && dx <= gap * h) {
          const wa = a[2] - a[0];
          const wb = b[2] - b[0];
          out[i] = {
            box: [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])],
            score: (out[i].score * wa + out[j].score * wb) / (wa + wb),
          };
          out.splice(j, 1);
          merged = true;
        }
      }
    }
  }
  return out;
}

/** Top to bottom; boxes whose tops lie within 10 px are one row, read left to right. */
export function readingOrder<T extends { box: readonly number[] }>(items: T[]): T[] {
  const sorted = [...items].sort((a, b) => a.box[1] - b.box[1] || a.box[0] - b.box[0]);
  for (let i = 1; i < sorted.length; i++) {
    for (let j = i; j > 0 && Math.abs(sorted[j].box[1] - sorted[j - 1].box[1]) < 10 && sorted[j].box[0] < sorted[j - 1].box[0]; j--) {
      [sorted[j], sorted[j - 1]] = [sorted[j - 1], sorted[j]];
    }
  }
  return sorted;
}
