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

/** Per labelled item: the lines whose boxes overlap it, left to right, against the label. */
function scoreFrame(labels: Label[], lines: { text: string; box: number[] }[]): number[] {
  return labels.map((l) => {
    const read = lines
      .filter((x) => overlap(x.box, l.box) > 0)
      .sort((a, b) => a.box[0] - b.box[0])
      .map((x) => x.text)
      .join(' ');
    return characterAccuracy(l.text, read);
  });
}

describe.skipIf(missingShared(!!frames, '../shared/data/text-frames'))('OCR accuracy of the default pipeline on ../shared/data/text-frames', () => {
  it('reads at least 95% of characters correctly through `outpost infer`', () => {
    const labels = JSON.parse(readFileSync(join(frames!, 'labels.json'), 'utf8')) as Record<string, Label[]>;
    const r = runCli(['infer', '--config', 'config/outpost.yaml', '--input', frames!, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const results = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results).toHaveLength(Object.keys(labels).length);
    const scores = results.flatMap((res) => {
      expect(res).toMatchObject({ model: 'ppocr-det+ppocr-rec', variant: 'fp32', provider: 'cpu' });
      expect(Object.keys(res.timings)).toEqual(['queueMs', 'decodeMs', 'preprocessMs', 'inferMs', 'postMs', 'totalMs']);
      return scoreFrame(labels[basename(res.file)], res.output.lines);
    });
    const accuracy = scores.reduce((a, b) => a + b, 0) / scores.length;
    console.info(`character accuracy on ${scores.length} labelled items: ${(accuracy * 100).toFixed(2)}%`);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);
  });
});
