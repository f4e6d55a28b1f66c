import { describe, expect, it } from 'vitest';
import { computeFit, decodeSsd, decodeYolo, nms, softmax, topK, unfitBox } from '../src/vision/index.js';

const OPTS = { scoreThreshold: 0.5, iouThreshold: 0.45, maxDetections: 10, labels: ['person', 'car'], classAgnostic: false };

describe('letterbox', () => {
  it('fits 1280x720 into 640x640 with grey bars top and bottom, and maps boxes back', () => {
    const fit = computeFit(1280, 720, 640, 640, 'letterbox');
    expect(fit).toEqual({ scaleX: 0.5, scaleY: 0.5, padX: 0, padY: 140, width: 640, height: 640 });
    expect(unfitBox([100, 140, 200, 240], fit, 1280, 720)).toEqual([200, 0, 400, 200]);
    expect(unfitBox([-10, 100, 700, 800], fit, 1280, 720)).toEqual([0, 0, 1280, 720]); // clamped to the frame
  });
});

describe('YOLO decoding', () => {
  const fit = computeFit(1280, 720, 640, 640, 'letterbox');

  it('reads the v5 layout [1, N, 5 + C]: objectness x class score', () => {
    // two overlapping persons (the weaker one suppressed), one car, one below threshold
    const rows = [
      [320, 320, 100, 200, 0.9, 0.9, 0.1],
      [325, 322, 100, 200, 0.8, 0.9, 0.1],
      [100, 200, 50, 50, 0.95, 0.05, 0.9],
      [500, 500, 40, 40, 0.3, 0.9, 0.1],
    ];
    const dets = decodeYolo(new Float32Array(rows.flat()), [1, 4, 7], 'v5', fit, 1280, 720, OPTS); // too few rows for 'auto'
    expect(dets.map((d) => [d.label, Number(d.score.toFixed(3))])).toEqual([
      ['car', 0.855],
      ['person', 0.81],
    ]);
    expect(dets[1].box).toEqual([540, 160, 740, 560]); // (cx ± w/2, cy ± h/2 - pad) / scale
  });

  it('reads the v8 layout [1, 4 + C, N] (columns), telling it apart by shape', () => {
    const n = 8; // 6 channels x 8 anchors: channel-major
    const data = new Float32Array(6 * n);
    const set = (anchor: number, values: number[]) => values.forEach((v, ch) => (data[ch * n + anchor] = v));
    set(2, [320, 320, 64, 64, 0.2, 0.7]);
    set(5, [100, 300, 20, 20, 0.6, 0.1]);
    const dets = decodeYolo(data, [1, 6, n], 'auto', fit, 1280, 720, OPTS);
    expect(dets.map((d) => [d.label, d.score])).toEqual([
      ['car', expect.closeTo(0.7, 5)],
      ['person', expect.closeTo(0.6, 5)],
    ]);
    expect(dets[0].box).toEqual([576, 296, 704, 424]);
  });
});

describe('SSD decoding (UltraFace layout)', () => {
  it('takes normalised corner boxes and skips the background class', () => {
    const scores = new Float32Array([0.1, 0.9, 0.95, 0.05, 0.2, 0.8]);
    const boxes = new Float32Array([0.1, 0.1, 0.3, 0.3, 0.5, 0.5, 0.9, 0.9, 0.11, 0.1, 0.31, 0.3]);
    const dets = decodeSsd(scores, boxes, 3, 2, 200, 100, { ...OPTS, labels: ['bg', 'face'], iouThreshold: 0.3 });
    expect(dets).toHaveLength(1); // box 3 overlaps box 1; box 2 is background
    expect(dets[0]).toMatchObject({ label: 'face', classIndex: 1 });
    expect(dets[0].box.map((v) => Number(v.toFixed(3)))).toEqual([20, 10, 60, 30]);
  });
});

describe('NMS', () => {
  it('suppresses per class unless class-agnostic', () => {
    const items = [
      { box: [0, 0, 10, 10], score: 0.9, classIndex: 0 },
      { box: [1, 1, 10, 10], score: 0.8, classIndex: 1 },
    ];
    expect(nms(items, 0.5, 10)).toHaveLength(2);
    expect(nms(items, 0.5, 10, true)).toHaveLength(1);
  });
});

describe('classification', () => {
  it('softmaxes logits and returns the top k with labels', () => {
    const [top] = topK(new Float32Array([1, 3, 2]), 1, 3, 2, ['a', 'b', 'c'], 'auto');
    expect(top.map((c) => c.label)).toEqual(['b', 'c']);
    expect(top[0].score).toBeCloseTo(softmax([1, 3, 2])[1], 6);
  });

  it('leaves rows that are already probabilities alone under auto', () => {
    const [top] = topK(new Float32Array([0.2, 0.5, 0.3]), 1, 3, 1, [], 'auto');
    expect(top[0]).toEqual({ classIndex: 1, label: 'class1', score: 0.5 });
  });
});
