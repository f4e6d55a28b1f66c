import { describe, expect, it } from 'vitest';
import { characterAccuracy, dbInputSize, decodeCtc, decodeDb, readingOrder, textAgreement, wordsOf, writeChw } from '../src/vision/index.js';
import { mergeRowNeighbours } from '../src/vision/dbText.js';

const DB = { threshold: 0.3, boxThreshold: 0.6, unclipRatio: 1.5, minSize: 3, maxBoxes: 100, mergeGap: 0 };

/** A probability map with filled rectangles [x0, y0, x1, y1) at value v. */
function probMap(w: number, h: number, rects: [number, number, number, number, number][]): Float32Array {
  const m = new Float32Array(w * h);
  for (const [x0, y0, x1, y1, v] of rects) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = v;
  return m;
}

describe('DB text post-processing', () => {
  it('keeps the detector input a multiple of 32 under the side limit, never upscaling', () => {
    expect(dbInputSize(640, 480, 960)).toEqual({ width: 640, height: 480 });
    expect(dbInputSize(1920, 1080, 960)).toEqual({ width: 960, height: 544 });
    expect(dbInputSize(20, 20, 960)).toEqual({ width: 32, height: 32 });
  });

  it('finds boxes, grows them by the unclip distance and maps them to the frame', () => {
    const map = probMap(64, 32, [[10, 8, 30, 16, 0.9]]); // 20 x 8 kernel
    const boxes = decodeDb(map, 64, 32, 128, 64, DB); // frame is twice the map
    const d = (20 * 8 * 1.5) / (2 * 28); // area * ratio / perimeter
    expect(boxes).toHaveLength(1);
    expect(boxes[0].score).toBeCloseTo(0.9, 5);
    expect(boxes[0].box).toEqual([Math.round((10 - d) * 2), Math.round((8 - d) * 2), Math.round((30 + d) * 2), Math.round((16 + d) * 2)]);
  });

  it('drops weak and tiny regions', () => {
    const map = probMap(64, 32, [
      [2, 2, 20, 10, 0.4],
      [30, 20, 32, 22, 0.95],
      [40, 5, 60, 12, 0.8],
    ]);
    expect(decodeDb(map, 64, 32, 64, 32, DB).map((b) => b.score)).toEqual([expect.closeTo(0.8, 5)]);
  });

  it('orders lines top to bottom, then left to right within a row', () => {
    const items = [{ box: [100, 52, 1, 1] }, { box: [0, 200, 1, 1] }, { box: [10, 50, 1, 1] }];
    expect(readingOrder(items).map((i) => i.box[0])).toEqual([10, 100, 0]);
  });

  it('joins words of one line separated by a word gap, but not separate lines', () => {
    const merged = mergeRowNeighbours(
      [
        { box: [0, 0, 100, 40], score: 1 },
        { box: [115, 2, 160, 42], score: 0.5 },
        { box: [0, 80, 100, 120], score: 1 },
        { box: [400, 0, 450, 40], score: 1 },
      ],
      0.6,
    );
    expect(merged.map((b) => b.box)).toEqual([
      [0, 0, 160, 42],
      [0, 80, 100, 120],
      [400, 0, 450, 40],
    ]);
  });
});

describe('CTC decoding', () => {
  const dict = ['', 'A', 'B', ' '];
  function probs(seq: number[]): Float32Array {
    const out = new Float32Array(seq.length * dict.length);
    seq.forEach((k, t) => {
      out.fill(0.1 / 3, t * 4, t * 4 + 4);
      out[t * 4 + k] = 0.9;
    });
    return out;
  }

  it("merges repeats, drops blanks and averages the kept characters' confidence", () => {
    const [g] = decodeCtc(probs([1, 1, 0, 1, 2, 2, 0, 3, 2]), 1, 9, 4, dict);
    expect(g.text).toBe('AAB B');
    expect(g.score).toBeCloseTo(0.9, 5);
  });

  /** One step per entry: a class index, or a blank step with this much probability on the space class. */
  function line(steps: (number | { space: number })[]): Float32Array {
    const out = new Float32Array(steps.length * dict.length);
    steps.forEach((s, t) => {
      if (typeof s === 'number') out[t * 4 + s] = 1;
      else [out[t * 4], out[t * 4 + 3]] = [1 - s.space, s.space];
    });
    return out;
  }
  const blank = { space: 0 };
  const leaning = { space: 0.1 };

  it('breaks words where characters sit further apart than the line pitch and the model leans towards a space', () => {
    // A B A B, pitch 2 steps, then a gap of 3 steps with some space probability, then B A
    const steps = [1, blank, 2, blank, 1, blank, 2, blank, leaning, 2, blank, 1];
    const [g] = decodeCtc(line(steps), 1, steps.length, 4, dict);
    expect(g.text).toBe('ABAB BA');
    expect(g.pitch).toBe(2);
    expect(g.words).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 6 },
    ]);
    // the same gap left blank without a lean towards a space (a narrow glyph next to a wide one) is no break
    const [joined] = decodeCtc(line(steps.map((s) => (s === leaning ? blank : s))), 1, steps.length, 4, dict);
    expect(joined.text).toBe('ABABBA');
    // nor is a lean towards a space between characters one pitch apart
    const [tight] = decodeCtc(line([1, leaning, 2, blank, 1, blank, 2]), 1, 7, 4, dict);
    expect(tight.text).toBe('ABAB');
  });

  it('gives each word a box inside its line, from the time steps to frame pixels', () => {
    const steps = [1, blank, 2, blank, 1, blank, 2, blank, leaning, 2, blank, 1];
    const [g] = decodeCtc(line(steps), 1, steps.length, 4, dict);
    // 12 steps over a 96 px crop of a 24 px wide line at x = 100: 2 frame pixels a step, words from half a pitch
    // (one step) before the first centre to half a pitch after the last one, clamped to the line
    const words = wordsOf(g, [100, 10, 124, 20], 96, 96, 12);
    expect(words.map((w) => w.text)).toEqual(['ABAB', 'BA']);
    expect(words.map((w) => w.box)).toEqual([
      [100, 10, 115, 20],
      [117, 10, 124, 20],
    ]);
    expect(words.every((w) => w.score === 1)).toBe(true);
  });

  it('refuses a dictionary that does not match the model', () => {
    expect(() => decodeCtc(probs([1]), 1, 1, 4, ['', 'A', ' '])).toThrow(/dictionary has 1 characters/);
  });
});

describe('tensor layout', () => {
  it('writes HWC RGB as normalised CHW, in BGR order when asked', () => {
    const img = { data: Buffer.from([255, 0, 0, 0, 255, 0]), width: 2, height: 1 };
    const out = new Float32Array(6);
    writeChw(img, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], channelOrder: 'bgr' }, out);
    expect([...out]).toEqual([-1, -1, -1, 1, 1, -1]); // B plane, G plane, R plane
  });

  it('pads a narrow image into a wider slot', () => {
    const img = { data: Buffer.from([255, 255, 255]), width: 1, height: 1 };
    const out = new Float32Array(6);
    writeChw(img, { mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'rgb' }, out, 0, 2, 1);
    expect([...out]).toEqual([1, 0, 1, 0, 1, 0]);
  });
});

describe('character accuracy', () => {
  it('is 1 - normalised edit distance with spaces ignored', () => {
    expect(characterAccuracy('VALVE 39', 'VALVE39')).toBe(1);
    expect(characterAccuracy('VALVE 9', 'VALVES 9')).toBeCloseTo(1 - 1 / 7, 5);
    expect(characterAccuracy('ABC', '')).toBe(0);
  });

  it('counts word breaks when two readings are compared (runs of white space as one)', () => {
    expect(textAgreement('VALVE 39', ' VALVE   39 ')).toBe(1);
    expect(textAgreement('VALVE 39', 'VALVE39')).toBeCloseTo(1 - 1 / 8, 5);
    expect(textAgreement('', '')).toBe(1);
  });
});
