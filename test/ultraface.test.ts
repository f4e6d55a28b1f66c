import { missingShared } from './helpers/optional.js';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iou } from '../src/vision/index.js';
import { runCli } from './helpers/daemonProcess.js';
import { sharedPath, tempDir } from './helpers/paths.js';

const model = sharedPath('models/ultraface/version-RFB-320.onnx');
const faces = sharedPath('data/faces');
const classifier = sharedPath('models/bench/mobilenet_v3_small.onnx');

/** Faces located by eye on the drawn photos (x0, y0, x1, y1 in pixels). */
const HAND_VERIFIED: Record<string, [number, number, number, number][]> = {
  '2.jpg': [
    [130, 110, 222, 245],
    [310, 90, 402, 232],
    [550, 80, 648, 222],
    [720, 118, 823, 270],
  ],
  '5.jpg': [[495, 115, 675, 350]],
  '13.jpg': [
    [92, 18, 155, 103],
    [300, 85, 362, 170],
  ],
  '19.jpg': [
    [185, 165, 252, 254],
    [313, 201, 382, 292],
    [481, 150, 551, 244],
    [605, 217, 677, 306],
    [736, 138, 818, 242],
  ],
};

describe.skipIf(missingShared(!!model && !!faces, '../shared UltraFace and faces'))('UltraFace through `outpost infer` (SSD decoder, NMS)', () => {
  const dir = tempDir();
  const config = join(dir, 'faces.yaml');
  writeFileSync(
    config,
    `node: { stateDir: ${join(dir, 'state')} }
models:
  ultraface: { file: ${model} }
  mobilenet: { file: ${classifier ?? model} }
pipelines:
  faces:
    stages:
      - { name: detect, model: ultraface, decoder: { type: ssd, labels: [background, face] } }
  faces-then-classify:
    stages:
      - { name: detect, model: ultraface, decoder: { type: ssd, labels: [background, face] } }
      - { name: classify, model: mobilenet, input: crops, decoder: { type: classify, topK: 3 } }
`,
  );

  it('puts a box on every hand-verified face, and no extra boxes', () => {
    const r = runCli(['infer', '--config', config, '--pipeline', 'faces', '--input', faces!, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const byFile = new Map(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map((x) => [basename(x.file), x]),
    );
    expect(byFile.size).toBe(22);
    for (const [file, expected] of Object.entries(HAND_VERIFIED)) {
      const found = byFile.get(file).output.detections as { box: number[]; label: string }[];
      expect(found, file).toHaveLength(expected.length);
      for (const e of expected) expect(Math.max(...found.map((d) => iou(d.box, e))), `${file} ${e}`).toBeGreaterThanOrEqual(0.5);
      expect(found.every((d) => d.label === 'face')).toBe(true);
    }
  });

  it.skipIf(missingShared(!!classifier, '../shared models/bench/mobilenet_v3_small.onnx'))('crops each detection into a second-stage classifier', () => {
    const r = runCli(['infer', '--config', config, '--pipeline', 'faces-then-classify', '--input', join(faces!, '13.jpg'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout).output;
    expect(out.detections).toHaveLength(2);
    for (const d of out.detections) {
      expect(d.classes).toHaveLength(3);
      expect(d.classes[0].score).toBeGreaterThanOrEqual(d.classes[2].score);
    }
  });
});
