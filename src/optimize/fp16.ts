import { DataType, GraphEditor, attr, dimsOf, floatValues, makeTensor, mkInt, type ModelProto, type NodeProto, type TensorProto } from '../onnx/index.js';
import type { RewriteReport } from './dynamicQuant.js';

/** Ops without float16 kernels (or whose float inputs are parameters): they run in float32 between Casts. */
const BLOCKED = new Set([
  'NonMaxSuppression',
  'TopK',
  'RoiAlign',
  'Range',
  'CumSum',
  'Upsample',
  'RandomUniformLike',
  'RandomNormalLike',
  'Multinomial',
  'EyeLike',
]);
/** Which outputs of a blocked op are float (the rest are indices). */
const FLOAT_OUTPUTS: Record<string, number[]> = { TopK: [0], RoiAlign: [0], CumSum: [0], Upsample: [0], Range: [0], NonMaxSuppression: [] };
/** Inputs that must stay float32 whatever the graph's precision (Resize's roi and scales). */
const FP32_INPUTS: Record<string, number[]> = { Resize: [1, 2] };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, round to nearest even, clamped to ±65504. */
export function toHalf(value: number): number {
  f32[0] = Math.max(-65504, Math.min(65504, value));
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7bff;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rem > mid || (rem === mid && half & 1) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (rem > 0x1000 || (rem === 0x1000 && half & 1) ? half + 1 : half);
}

function halfTensor(t: TensorProto): TensorProto {
  const v = floatValues(t);
  return makeTensor(t.name!, DataType.FLOAT16, dimsOf(t), Uint16Array.from(v, toHalf));
}

/**
 * fp16: float initializers and Constants become float16, graph inputs and outputs stay float32 behind Casts,
 * existing Cast-to-float nodes cast to float16, and blocked ops run in float32 between Casts.
 */
export function convertFp16(model: ModelProto): RewriteReport {
  const ed = new GraphEditor(model);
  const keep32 = new Set<string>();
  for (const n of ed.nodes) for (const i of FP32_INPUTS[n.op_type!] ?? []) if (n.input?.[i]) keep32.add(n.input[i]);
  const report: RewriteReport = { quantized: {}, skipped: {} };
  ed.graph.initializer = ed.graph.initializer!.map((t) => (t.data_type === DataType.FLOAT && !keep32.has(t.name!) ? halfTensor(t) : t));
  for (const n of [...ed.nodes]) {
    const op = n.op_type!;
    if (op === 'Constant') {
      const a = attr(n, 'value');
      if (a?.t?.data_type === DataType.FLOAT && !n.output!.some((o) => keep32.has(o))) a.t = halfTensor(a.t);
    } else if (op === 'Cast' && attr(n, 'to')?.i !== undefined && Number(attr(n, 'to')!.i) === DataType.FLOAT) {
      attr(n, 'to')!.i = DataType.FLOAT16;
    } else if (BLOCKED.has(op)) {
      castAround(ed, n);
      report.skipped[op] = 'no float16 kernel: runs in float32 between Casts';
      continue;
    }
    report.quantized[op] = (report.quantized[op] ?? 0) + 1;
  }
  for (const input of ed.graph.input ?? []) {
    if (input.type?.tensor_type?.elem_type !== DataType.FLOAT || ed.initializer(input.name!)) continue;
    const half = ed.fresh(`${input.name}_fp16`);
    for (const c of ed.consumers(input.name!)) c.input = c.input!.map((i) => (i === input.name ? half : i));
    ed.nodes.unshift({
      name: ed.fresh(`${input.name}_to_fp16`),
      op_type: 'Cast',
      input: [input.name!],
      output: [half],
      attribute: [mkInt('to', DataType.FLOAT16)],
    });
  }
  for (const output of ed.graph.output ?? []) {
    if (output.type?.tensor_type?.elem_type !== DataType.FLOAT) continue;
    const producer = ed.producer(output.name!);
    if (!producer) continue;
    const half = ed.fresh(`${output.name}_fp16`);
    producer.output = producer.output!.map((o) => (o === output.name ? half : o));
    for (const c of ed.consumers(output.name!)) c.input = c.input!.map((i) => (i === output.name ? half : i));
    ed.nodes.push({
      name: ed.fresh(`${output.name}_to_fp32`),
      op_type: 'Cast',
      input: [half],
      output: [output.name!],
      attribute: [mkInt('to', DataType.FLOAT)],
    });
  }
  ed.graph.value_info = []; // ORT re-infers the types; stale float entries would contradict them
  return report;
}

/** Non-constant inputs of blocked ops are taken as float (their index inputs are constants in practice). */
function castAround(ed: GraphEditor, node: NodeProto): void {
  const before: NodeProto[] = [];
  node.input = node.input!.map((i) => {
    if (!i) return i;
    const c = ed.constant(i);
    if (c && c.data_type !== DataType.FLOAT16) return i;
    const x = ed.fresh(`${i}_fp32`);
    before.push({ name: ed.fresh(`${i}_to_fp32`), op_type: 'Cast', input: [i], output: [x], attribute: [mkInt('to', DataType.FLOAT)] });
    return x;
  });
  const after: NodeProto[] = [];
  node.output = node.output!.map((o, k) => {
    if (!(FLOAT_OUTPUTS[node.op_type!] ?? [0]).includes(k)) return o;
    const x = ed.fresh(`${o}_fp32`);
    after.push({ name: ed.fresh(`${o}_to_fp16`), op_type: 'Cast', input: [x], output: [o], attribute: [mkInt('to', DataType.FLOAT16)] });
    return x;
  });
  ed.replace(node, [...before, node, ...after]);
}
