import { DataType, GraphEditor, dimsOf, floatValues, intAttr, makeTensor, mkInt, type ModelProto, type NodeProto } from '../onnx/index.js';
import { quantizePerChannel, quantizeSymmetric, symmetricScale } from './quantMath.js';

export interface RewriteReport {
  /** op type → nodes rewritten */
  quantized: Record<string, number>;
  /** op type → why some were left in float */
  skipped: Record<string, string>;
}

export interface DynamicOptions {
  perChannel: boolean;
  reduceRange: boolean;
  /** Also MatMuls between two activations (a transformer's Q·Kᵀ and attention·V), both sides quantized at run time. */
  activations: boolean;
}

/** The report's name for MatMuls between two activations, kept apart from those with constant weights. */
export const ACTIVATION_MATMUL = 'MatMul (two activations)';

function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/**
 * int8-dynamic: MatMul with a constant 2-D B, and Gemm (alpha = beta = 1, no transA), become
 * DynamicQuantizeLinear → MatMulInteger → Cast → Mul, which ORT fuses into DynamicQuantizeMatMul on CPU.
 * Weights are int8 symmetric, per tensor or per output column; activations are quantized at run time.
 */
export function quantizeDynamic(model: ModelProto, opts: DynamicOptions): RewriteReport {
  const ed = new GraphEditor(model);
  const report: RewriteReport = { quantized: {}, skipped: {} };
  if (ed.opset() < 11) {
    report.skipped.MatMul = `opset ${ed.opset()} < 11 has no DynamicQuantizeLinear`;
    return report;
  }
  const quantizedInputs = new Map<string, QuantizedTensor>();
  for (const node of [...ed.nodes]) {
    if (node.op_type !== 'MatMul' && node.op_type !== 'Gemm') continue;
    const between = opts.activations && node.op_type === 'MatMul' && isActivationMatMul(ed, node);
    const why = between ? rewriteActivations(ed, node, quantizedInputs) : rewrite(ed, node, opts, quantizedInputs);
    const op = between ? ACTIVATION_MATMUL : node.op_type!;
    if (why) report.skipped[op] = why;
    else report.quantized[op] = (report.quantized[op] ?? 0) + 1;
  }
  ed.pruneUnused();
  return report;
}

/** A tensor quantized at run time: its uint8 values, scale and zero point. */
type QuantizedTensor = [string, string, string];

const isActivationMatMul = (ed: GraphEditor, node: NodeProto) => (node.input ?? []).every((t) => !ed.constant(t));

/** One DynamicQuantizeLinear per float tensor, shared by every MatMulInteger that reads it. */
function quantizedInput(ed: GraphEditor, x: string, quantizedInputs: Map<string, QuantizedTensor>, nodes: NodeProto[]): QuantizedTensor {
  let xq = quantizedInputs.get(x);
  if (!xq) {
    xq = [ed.fresh(`${x}_quantized`), ed.fresh(`${x}_scale`), ed.fresh(`${x}_zero_point`)];
    quantizedInputs.set(x, xq);
    nodes.push({ name: ed.fresh(`${x}_DynamicQuantizeLinear`), op_type: 'DynamicQuantizeLinear', input: [x], output: xq });
  }
  return xq;
}

/**
 * A MatMul between two activations: both quantized to uint8 at run time, MatMulInteger, then the product of
 * the two scales. ORT fuses the first side's quantization and the rescale into DynamicQuantizeMatMul.
 */
function rewriteActivations(ed: GraphEditor, node: NodeProto, quantizedInputs: Map<string, QuantizedTensor>): string | null {
  const [a, b] = node.input ?? [];
  if (!a || !b) return 'a MatMul without two inputs';
  const nodes: NodeProto[] = [];
  const aq = quantizedInput(ed, a, quantizedInputs, nodes);
  const bq = quantizedInput(ed, b, quantizedInputs, nodes);
  const base = node.name || node.output![0];
  const [acc, accF, scale] = [ed.fresh(`${base}_int32`), ed.fresh(`${base}_float`), ed.fresh(`${base}_output_scale`)];
  nodes.push(
    { name: ed.fresh(`${base}_MatMulInteger`), op_type: 'MatMulInteger', input: [aq[0], bq[0], aq[2], bq[2]], output: [acc] },
    { name: ed.fresh(`${base}_Cast`), op_type: 'Cast', input: [acc], output: [accF], attribute: [mkInt('to', DataType.FLOAT)] },
    { name: ed.fresh(`${base}_scale_Mul`), op_type: 'Mul', input: [aq[1], bq[1]], output: [scale] },
    { name: ed.fresh(`${base}_output_Mul`), op_type: 'Mul', input: [accF, scale], output: [node.output![0]] },
  );
  ed.replace(node, nodes);
  return null;
}

function rewrite(ed: GraphEditor, node: NodeProto, opts: DynamicOptions, quantizedInputs: Map<string, QuantizedTensor>): string | null {
  const [x, bName, cName] = node.input ?? [];
  const b = ed.constant(bName);
  if (!b || b.data_type !== DataType.FLOAT || dimsOf(b).length !== 2) return 'B is not a constant 2-D float tensor';
  let [k, n] = dimsOf(b);
  let w = floatValues(b);
  if (node.op_type === 'Gemm') {
    if (intAttr(node, 'transA', 0) !== 0) return 'transA = 1';
    const alpha = node.attribute?.find((a) => a.name === 'alpha')?.f ?? 1;
    const beta = node.attribute?.find((a) => a.name === 'beta')?.f ?? 1;
    if (alpha !== 1 || beta !== 1) return 'alpha or beta is not 1';
    if (intAttr(node, 'transB', 0) === 1) {
      w = transpose2d(w, k, n);
      [k, n] = [n, k];
    }
  }
  const base = node.name || bName;
  const q = opts.perChannel ? quantizePerChannel(w, [k, n], 1, opts.reduceRange) : perTensor(w, opts.reduceRange);
  const wq = ed.addInitializer(makeTensor(ed.fresh(`${bName}_quantized`), DataType.INT8, [k, n], q.q));
  const channelDims = opts.perChannel ? [n] : [];
  const ws = ed.addInitializer(makeTensor(ed.fresh(`${bName}_scale`), DataType.FLOAT, channelDims, q.scales));
  const wzp = ed.addInitializer(makeTensor(ed.fresh(`${bName}_zero_point`), DataType.INT8, channelDims, new Int8Array(opts.perChannel ? n : 1)));
  const nodes: NodeProto[] = [];
  const xq = quantizedInput(ed, x, quantizedInputs, nodes);
  const acc = ed.fresh(`${base}_int32`);
  const accF = ed.fresh(`${base}_float`);
  const scale = ed.fresh(`${base}_output_scale`);
  const y = node.output![0];
  const product = cName ? ed.fresh(`${base}_product`) : y;
  nodes.push(
    { name: ed.fresh(`${base}_MatMulInteger`), op_type: 'MatMulInteger', input: [xq[0], wq, xq[2], wzp], output: [acc] },
    { name: ed.fresh(`${base}_Cast`), op_type: 'Cast', input: [acc], output: [accF], attribute: [mkInt('to', DataType.FLOAT)] },
    { name: ed.fresh(`${base}_scale_Mul`), op_type: 'Mul', input: [xq[1], ws], output: [scale] },
    { name: ed.fresh(`${base}_output_Mul`), op_type: 'Mul', input: [accF, scale], output: [product] },
  );
  if (cName) nodes.push({ name: ed.fresh(`${base}_bias_Add`), op_type: 'Add', input: [product, cName], output: [y] });
  ed.replace(node, nodes);
  return null;
}

function perTensor(w: Float32Array, reduceRange: boolean): { q: Int8Array; scales: Float32Array } {
  const s = symmetricScale(w, reduceRange);
  const q = new Int8Array(w.length);
  quantizeSymmetric(w, s, q);
  return { q, scales: Float32Array.of(s) };
}
