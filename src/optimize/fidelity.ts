import type { TensorData, TensorMap } from '../types.js';
import { decodeDb, decodeSsd, iou } from '../vision/index.js';

export type TaskKind = 'classification' | 'detection-ssd' | 'text-detection' | 'text-recognition' | 'none';

export interface Fidelity {
  /** Frames the variant was compared on; `heldOut` of them were kept out of calibration. */
  frames: number;
  heldOut?: number;
  /** Frames the guard wants for its task metric to mean something (fewer were available when frames < this). */
  framesWanted?: number;
  /** Mean cosine similarity of every output, over the held-out frames. */
  cosine: number;
  /** Largest absolute difference seen in any output. */
  maxAbs: number;
  /** The task agreement, with the lower end of its 95 % confidence interval over the frames. */
  task: { kind: TaskKind; metric: string; value: number; low95: number } | null;
}

/**
 * Frames the guard compares on: enough that one frame's flipped answer cannot by itself cross `minTask`
 * (with 6 frames one flip is 17 points), at least 24.
 */
export function fidelityFramesWanted(minTask: number): number {
  return Math.min(200, Math.max(24, Math.ceil(1.2 / Math.max(1e-3, 1 - minTask))));
}

/** What the outputs look like decides the task metric. */
export function detectTask(outputs: TensorMap): TaskKind {
  const ts = Object.values(outputs);
  if (ts.length === 2 && ts.some((t) => t.dims[t.dims.length - 1] === 4)) return 'detection-ssd';
  if (ts.length !== 1) return 'none';
  const d = ts[0].dims;
  if (d.length === 2 && d[0] === 1 && d[1] >= 2) return 'classification';
  if (d.length === 4 && d[1] === 1) return 'text-detection';
  if (d.length === 3 && d[2] >= 30) return 'text-recognition';
  return 'none';
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb || 1);
}

const argmax = (d: Float32Array, from: number, n: number) => {
  let best = 0;
  for (let k = 1; k < n; k++) if (d[from + k] > d[from + best]) best = k;
  return best;
};

/** F1 of `found` boxes against `reference` boxes at IoU ≥ 0.5 (greedy matching). */
export function detectionF1(reference: number[][], found: number[][]): number {
  if (reference.length === 0 && found.length === 0) return 1;
  const used = new Set<number>();
  let tp = 0;
  for (const r of reference) {
    const j = found.findIndex((f, k) => !used.has(k) && iou(r, f) >= 0.5);
    if (j >= 0) {
      used.add(j);
      tp++;
    }
  }
  return (2 * tp) / (reference.length + found.length);
}

/** The task agreement of one frame: 1 is the same answer as fp32. */
function taskScore(kind: TaskKind, ref: TensorData[], out: TensorData[]): number {
  const f = (t: TensorData) => t.data as Float32Array;
  switch (kind) {
    case 'classification':
      return argmax(f(ref[0]), 0, ref[0].dims[1]) === argmax(f(out[0]), 0, out[0].dims[1]) ? 1 : 0;
    case 'detection-ssd': {
      const boxes = (ts: TensorData[]) => {
        const scores = ts.find((t) => t.dims[t.dims.length - 1] !== 4)!;
        const b = ts.find((t) => t !== scores)!;
        return decodeSsd(f(scores), f(b), scores.dims[1], scores.dims[2], 1, 1, {
          scoreThreshold: 0.7,
          iouThreshold: 0.3,
          maxDetections: 200,
          labels: [],
          classAgnostic: false,
        }).map((d) => d.box);
      };
      return detectionF1(boxes(ref), boxes(out));
    }
    case 'text-detection': {
      const [, , h, w] = ref[0].dims;
      const opts = { threshold: 0.3, boxThreshold: 0.6, unclipRatio: 1.6, minSize: 3, maxBoxes: 100, mergeGap: 0.6 };
      return detectionF1(
        decodeDb(f(ref[0]), w, h, w, h, opts).map((b) => b.box),
        decodeDb(f(out[0]), w, h, w, h, opts).map((b) => b.box),
      );
    }
    case 'text-recognition': {
      const [n, steps, classes] = ref[0].dims;
      let same = 0;
      for (let i = 0; i < n * steps; i++) if (argmax(f(ref[0]), i * classes, classes) === argmax(f(out[0]), i * classes, classes)) same++;
      return same / (n * steps);
    }
    default:
      return 1;
  }
}

const TASK_METRIC: Record<TaskKind, string> = {
  classification: 'top-1 agreement',
  'detection-ssd': 'detection F1 at IoU 0.5 vs fp32 boxes',
  'text-detection': 'text-box F1 at IoU 0.5 vs fp32 boxes',
  'text-recognition': 'per-step character agreement',
  none: '',
};

/** Accumulates fidelity over frames: reference (fp32) outputs against a variant's. */
export class FidelityMeter {
  private cos = 0;
  private n = 0;
  private maxAbs = 0;
  private task = 0;
  private taskSq = 0;
  private frames = 0;

  constructor(readonly kind: TaskKind) {}

  add(ref: TensorMap, out: TensorMap): void {
    const names = Object.keys(ref);
    for (const name of names) {
      const a = ref[name].data as Float32Array;
      const b = out[name].data as Float32Array;
      this.cos += cosine(a, b);
      this.n++;
      for (let i = 0; i < a.length; i++) this.maxAbs = Math.max(this.maxAbs, Math.abs(a[i] - b[i]));
    }
    const score = taskScore(
      this.kind,
      names.map((k) => ref[k]),
      names.map((k) => out[k]),
    );
    this.task += score;
    this.taskSq += score * score;
    this.frames++;
  }

  /** Lower 95 % bound of the mean per-frame agreement: Wilson's interval for 0/1 scores, the normal one otherwise. */
  private low95(): number {
    const n = Math.max(1, this.frames);
    const mean = this.task / n;
    const z = 1.96;
    if (this.kind === 'classification') return (mean + (z * z) / (2 * n) - z * Math.sqrt((mean * (1 - mean)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
    const variance = Math.max(0, this.taskSq / n - mean * mean);
    return Math.max(0, mean - z * Math.sqrt(variance / n));
  }

  result(): Fidelity {
    const r4 = (v: number) => Math.round(v * 10000) / 10000;
    return {
      frames: this.frames,
      cosine: r4(this.cos / Math.max(1, this.n)),
      maxAbs: r4(this.maxAbs),
      task:
        this.kind === 'none'
          ? null
          : { kind: this.kind, metric: TASK_METRIC[this.kind], value: r4(this.task / Math.max(1, this.frames)), low95: r4(this.low95()) },
    };
  }
}
