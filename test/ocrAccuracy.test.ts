import { missingShared } from './helpers/optional.js';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { characterAccuracy } from '../src/vision/index.js';
import { runCli } from './helpers/daemonProcess.js';
import { sharedPath } from './helpers/paths.js';

const frames = sharedPath('data/text-frames');
type Label = { text: string; box: [number, number, number, number] };

const overlap = (a: number[], b: number[]) =>
  Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) * Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));

type Word = { text: string; box: number[] };

/** Per labelled item: the lines whose boxes overlap it, left to right, joined by spaces, against the label. */
function readItems(labels: Label[], lines: { text: string; box: number[] }[]): { label: string; read: string }[] {
  return labels.map((l) => ({
    label: l.text,
    read: lines
      .filter((x) => overlap(x.box, l.box) > 0)
      .sort((a, b) => a.box[0] - b.box[0])
      .map((x) => x.text)
      .join(' '),
  }));
}

/** A line's words spell its text and sit inside its box, left to right. */
function wordsFit(line: { text: string; box: number[]; words: Word[] }): boolean {
  const inside = line.words.every((w, i) => w.box[0] >= line.box[0] && w.box[2] <= line.box[2] && (i === 0 || w.box[0] >= line.words[i - 1].box[2]));
  return inside && line.words.map((w) => w.text).join(' ') === line.text;
}

describe.skipIf(missingShared(!!frames, '../shared/data/text-frames'))('OCR accuracy of the default pipeline on ../shared/data/text-frames', () => {
  it('reads the labelled strings exactly, spaces included, and at least 99% of characters, through `outpost infer`', () => {
    const labels = JSON.parse(readFileSync(join(frames!, 'labels.json'), 'utf8')) as Record<string, Label[]>;
    const r = runCli(['infer', '--config', 'config/outpost.yaml', '--input', frames!, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const results = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results).toHaveLength(Object.keys(labels).length);
    const items = results.flatMap((res) => {
      expect(res).toMatchObject({ model: 'ppocr-det+ppocr-rec', variant: 'fp32', provider: 'cpu' });
      expect(Object.keys(res.timings)).toEqual(['queueMs', 'decodeMs', 'preprocessMs', 'inferMs', 'postMs', 'totalMs']);
      const lines = res.output.lines as { text: string; box: number[]; words: Word[] }[];
      expect(lines.filter((l) => !wordsFit(l))).toEqual([]);
      return readItems(labels[basename(res.file)], lines);
    });
    const accuracy = items.reduce((a, i) => a + characterAccuracy(i.label, i.read), 0) / items.length;
    const misses = items.filter((i) => i.read !== i.label);
    console.info(
      `character accuracy on ${items.length} labelled items: ${(accuracy * 100).toFixed(2)}%; exact with spaces: ${items.length - misses.length}; misses: ${JSON.stringify(misses)}`,
    );
    expect(accuracy).toBeGreaterThanOrEqual(0.99);
    // 69 of 78 before word breaks were read from the CTC positions: all 9 misses lacked a narrow space
    expect(items.length - misses.length).toBeGreaterThanOrEqual(76);
  });
});
