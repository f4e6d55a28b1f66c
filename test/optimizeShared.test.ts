import { missingShared } from './helpers/optional.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/daemonProcess.js';
import { sharedPath, tempDir } from './helpers/paths.js';

const ultraface = sharedPath('models/ultraface/version-RFB-320.onnx');
const vit = sharedPath('models/bench/vit_tiny.onnx');
const mobilenet = sharedPath('models/bench/mobilenet_v3_small.onnx');
const faces = sharedPath('data/faces');

function optimize(model: string, args: string[]) {
  const r = runCli(['optimize', model, '--out', join(tempDir(), 'variants'), '--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries(JSON.parse(r.stdout).variants.map((v: { precision: string }) => [v.precision, v]));
}

describe.skipIf(missingShared(!!ultraface && !!faces, '../shared UltraFace and faces'))('UltraFace int8-static calibrated on ../shared/data/faces', () => {
  // the placement is pinned: which one the search keeps depends on the board's load, and size and Conv count with it
  it('keeps detection F1 vs fp32 at IoU 0.5 at or above 0.95 at under a third of the size (all-int8)', () => {
    const args = ['--precision', 'fp32,int8-static', '--calibration', faces!, '--calibration-frames', '14', '--held-out', '8', '--normalise', 'ultraface'];
    const v = optimize(ultraface!, [...args, '--placement', 'all-int8']);
    // 8 held-out frames topped up with the 14 calibration ones: all 22 photos, fewer than the 24 the guard wants
    expect(v['int8-static']).toMatchObject({ accepted: true, fidelity: { frames: 22, heldOut: 8, framesWanted: 24, task: { kind: 'detection-ssd' } } });
    expect(v['int8-static'].fidelity.task.value).toBeGreaterThanOrEqual(0.95);
    expect(v['int8-static'].quantized.Conv).toBe(52);
    expect(v['int8-static'].bytes / v.fp32.bytes).toBeLessThan(0.32);
    // per-channel weights, as the depthwise convolutions need
    expect(v['int8-static'].fidelity.task.value).toBeGreaterThan(0.96);
  });
});

describe.skipIf(missingShared(!!vit && !!mobilenet && !!faces, '../shared bench models'))(
  'bench models with random weights (fidelity only, never task accuracy)',
  () => {
    it('ViT-tiny int8-dynamic keeps cosine ≥ 0.999 and is under 30% of the size', () => {
      const v = optimize(vit!, ['--precision', 'fp32,fp16,int8-dynamic', '--calibration', faces!, '--calibration-frames', '14', '--min-task', '0']);
      expect(v['int8-dynamic'].accepted).toBe(true);
      expect(v['int8-dynamic'].fidelity.cosine).toBeGreaterThanOrEqual(0.999);
      expect(v['int8-dynamic'].quantized).toMatchObject({ MatMul: 36, Gemm: 13 });
      expect(v['int8-dynamic'].bytes / v.fp32.bytes).toBeLessThan(0.3);
      expect(v.fp16).toMatchObject({ accepted: true }); // loads with 'extended': ORT's 'all' crashes on this graph in fp16
    });

    it('MobileNetV3 int8-dynamic and int8-static both stay within the fidelity guard', () => {
      const v = optimize(mobilenet!, [
        '--precision',
        'fp32,int8-dynamic,int8-static',
        '--calibration',
        faces!,
        '--calibration-frames',
        '14',
        '--min-task',
        '0',
      ]);
      expect(v['int8-dynamic'].fidelity.cosine).toBeGreaterThanOrEqual(0.99);
      expect(v['int8-static']).toMatchObject({ accepted: true });
      expect(v['int8-static'].quantized.Conv).toBeGreaterThanOrEqual(50);
      expect(v['int8-static'].quantized.Gemm).toBe(2);
    });
  },
);
