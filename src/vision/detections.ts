import type { Fit } from './letterbox.js';
import { unfitBox } from './letterbox.js';

export interface Detection {
  box: [number, number, number, number];
  score: number;
  classIndex: number;
  label: string;
}

export interface DetectOptions {
  scoreThreshold: number;
  iouThreshold: number;
  maxDetections: number;
  labels: readonly string[];
  /** true: suppress across classes too (one box per object whatever its class). */
  classAgnostic: boolean;
}

export function iou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** Greedy non-maximum suppression, highest score first, per class unless class-agnostic. */
export function nms<T extends { box: readonly number[]; score: number; classIndex: number }>(
  items: T[],
  iouThreshold: number,
  max: number,
  classAgnostic = false,
): T[] {
  const sorted = [...items].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  for (const d of sorted) {
    if (kept.length >= max) break;
    if (kept.every((k) => (!classAgnostic && k.classIndex !== d.classIndex) || iou(k.box, d.box) <= iouThreshold)) kept.push(d);
  }
  return kept;
}

const labelOf = (labels: readonly string[], i: number) => labels[i] ?? `class${i}`;

/**
 * SSD-style outputs with anchors already decoded (UltraFace): scores [1,N,C] (C includes background at 0)
 * and boxes [1,N,4] as normalised corners.
 */
export function decodeSsd(
  scores: Float32Array,
  boxes: Float32Array,
  n: number,
  classes: number,
  frameW: number,
  frameH: number,
  opts: DetectOptions,
): Detection[] {
  const found: Detection[] = [];
  for (let i = 0; i < n; i++) {
    for (let c = 1; c < classes; c++) {
      const score = scores[i * classes + c];
      if (score < opts.scoreThreshold) continue;
      const b = i * 4;
      const box: Detection['box'] = [
        clamp(boxes[b] * frameW, frameW),
        clamp(boxes[b + 1] * frameH, frameH),
        clamp(boxes[b + 2] * frameW, frameW),
        clamp(boxes[b + 3] * frameH, frameH),
      ];
      found.push({ box, score, classIndex: c, label: labelOf(opts.labels, c) });
    }
  }
  return nms(found, opts.iouThreshold, opts.maxDetections, opts.classAgnostic);
}

/**
 * YOLO heads. v5: [1, N, 5 + C] rows of (cx, cy, w, h, objectness, class scores...).
 * v8/v11: [1, 4 + C, N] columns of (cx, cy, w, h, class scores...). Boxes are in input pixels.
 */
export function decodeYolo(
  data: Float32Array,
  dims: readonly number[],
  layout: 'v5' | 'v8' | 'auto',
  fit: Fit,
  frameW: number,
  frameH: number,
  opts: DetectOptions,
): Detection[] {
  const [, a, b] = dims;
  const kind = layout !== 'auto' ? layout : a < b ? 'v8' : 'v5';
  const n = kind === 'v8' ? b : a;
  const stride = kind === 'v8' ? a : b;
  const classes = kind === 'v8' ? stride - 4 : stride - 5;
  const at = kind === 'v8' ? (i: number, k: number) => data[k * n + i] : (i: number, k: number) => data[i * stride + k];
  const first = kind === 'v8' ? 4 : 5;
  const found: Detection[] = [];
  for (let i = 0; i < n; i++) {
    const objectness = kind === 'v5' ? at(i, 4) : 1;
    if (objectness < opts.scoreThreshold) continue;
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const s = at(i, first + c);
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    const score = objectness * bestScore;
    if (score < opts.scoreThreshold) continue;
    const [cx, cy, w, h] = [at(i, 0), at(i, 1), at(i, 2), at(i, 3)];
    const box = unfitBox([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fit, frameW, frameH);
    found.push({ box, score, classIndex: best, label: labelOf(opts.labels, best) });
  }
  return nms(found, opts.iouThreshold, opts.maxDetections, opts.classAgnostic);
}

const clamp = (v: number, max: number) => Math.min(max, Math.max(0, v));
