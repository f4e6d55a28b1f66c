import {
  DataType,
  GraphEditor,
  dimsOf,
  encodeModel,
  floatValues,
  intAttr,
  makeTensor,
  mkInt,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '../onnx/index.js';
import type { TensorMap } from '../types.js';
import type { RewriteReport } from './dynamicQuant.js';
import type { ModelRunner } from './modelRunner.js';
import { asymmetricParams, quantizePerChannel, roundHalfEven, symmetricScale } from './quantMath.js';

export interface StaticOptions {
  method: 'minmax' | 'percentile';
  /** Percentile of |x| kept for 'percentile' (99.999 resists outliers). */
  percentile: number;
  perChannel: boolean;
  reduceRange: boolean;
  /** Nodes left in float (Q/DQ at their borders), chosen by the placement search. */
  keepFloat?: (node: NodeProto, ed: GraphEditor) => boolean;
}

/** Ops with int8 kernels in ORT's CPU provider (QDQ → QLinear* fusions): their tensors go through Q/DQ. */
const WEIGHTED = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm']);
const ELEMENTWISE = new Set(['Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Resize', 'Sigmoid', 'LeakyRelu', 'Relu', 'Clip']);
/** Data movement: output keeps the input's scale so ORT can drop the Q/DQ pair around them. */
const MOVEMENT = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'MaxPool']);
const QUANTIZABLE = new Set([...WEIGHTED, ...ELEMENTWISE, ...MOVEMENT]);
/** Inputs that carry activations (the rest are parameters: Resize's scales, Clip's bounds, a Conv's weight). */
const ACTIVATION_INPUTS: Record<string, number[]> = {
  Conv: [0],
  ConvTranspose: [0],
  Gemm: [0],
  Resize: [0],
  Clip: [0],
  Reshape: [0],
  Squeeze: [0],
  Unsqueeze: [0],
};
const activationInputs = (node: NodeProto) => (node.input ?? []).filter((_, i) => (ACTIVATION_INPUTS[node.op_type!] ?? [i]).includes(i));

/** Activations folded into the producer's output range (Conv → Relu becomes QLinearConv with a clamped range). */
const FOLDABLE_ACTIVATIONS = new Set(['Relu', 'Clip']);
const FOLD_INTO = new Set(['Conv', 'Add', 'MatMul', 'Gemm', 'ConvTranspose']);

interface Range {
  min: number;
  max: number;
}

interface QParams {
  scale: number;
  zeroPoint: number;
}

/** Removes initializers from graph inputs so ORT treats them as constants (BN folding needs it). */
export function initializersAsConstants(model: ModelProto): void {
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  if (model.graph?.input) model.graph.input = model.graph.input.filter((i) => !inits.has(i.name));
  model.ir_version = Math.max(Number(model.ir_version ?? 0), 4);
}

/** Every float tensor's range over the calibration frames, read by exposing all node outputs. */
export async function calibrate(
  model: ModelProto,
  feeds: TensorMap[],
  runner: ModelRunner,
  opts: StaticOptions,
  onFrame?: (i: number) => void,
): Promise<Map<string, Range>> {
  const probe = structuredClone(model);
  const existing = new Set((probe.graph!.output ?? []).map((o) => o.name));
  const inputs = (probe.graph!.input ?? []).map((i) => i.name!);
  const tensors = [...new Set(probe.graph!.node!.flatMap((n) => n.output ?? []))].filter((t) => t && !existing.has(t));
  probe.graph!.output = [...(probe.graph!.output ?? []), ...tensors.map((name) => ({ name }))];
  const session = await runner.open(encodeModel(probe), { optimization: 'disabled' });
  const ranges = new Map<string, Range>();
  const outputs: TensorMap[] = [];
  try {
    for (const [i, feed] of feeds.entries()) {
      const out = await session.run(structuredClone(feed));
      for (const name of inputs) if (feed[name]) out[name] = feed[name];
      for (const [name, t] of Object.entries(out)) {
        if (t.type !== 'float32') continue;
        const r = ranges.get(name) ?? { min: Infinity, max: -Infinity };
        const d = t.data as Float32Array;
        for (let k = 0; k < d.length; k++) {
          const v = d[k];
          if (v < r.min) r.min = v;
          if (v > r.max) r.max = v;
        }
        ranges.set(name, r);
      }
      if (opts.method === 'percentile') outputs.push(out);
      onFrame?.(i + 1);
    }
  } finally {
    await session.release();
  }
  if (opts.method === 'percentile') clipToPercentile(ranges, outputs, opts.percentile);
  return ranges;
}

/** Narrows each range to the given percentile of |x| over a 2048-bin histogram. */
function clipToPercentile(ranges: Map<string, Range>, outputs: TensorMap[], percentile: number): void {
  const BINS = 2048;
  for (const [name, r] of ranges) {
    const top = Math.max(Math.abs(r.min), Math.abs(r.max));
    if (top === 0) continue;
    const hist = new Float64Array(BINS);
    let total = 0;
    for (const out of outputs) {
      const d = out[name]?.data as Float32Array | undefined;
      if (!d) continue;
      for (let k = 0; k < d.length; k++) hist[Math.min(BINS - 1, Math.floor((Math.abs(d[k]) / top) * BINS))]++;
      total += d.length;
    }
    let seen = 0;
    let bin = 0;
    for (; bin < BINS && seen < (total * percentile) / 100; bin++) seen += hist[bin];
    const limit = (bin / BINS) * top;
    ranges.set(name, { min: Math.max(r.min, -limit), max: Math.min(r.max, limit) });
  }
}

/**
 * Asymmetric uint8 for activations, int8 for weights (U8S8): the pairing every ORT CPU kernel takes (its
 * S8→U8 pass rewrites int8 activations around ops that lack S8 kernels, which then stop fusing). The range
 * always holds 0, so zero (padding, ReLU's floor) is exact.
 */
function activationParams(r: Range): QParams {
  return asymmetricParams(r.min, r.max);
}

/**
 * int8-static in QDQ form: activations get QuantizeLinear → DequantizeLinear with ranges from calibration,
 * weights are stored int8 (per channel) behind a DequantizeLinear, biases int32. ORT's CPU provider fuses
 * DQ → op → Q into QLinear kernels. Whole chains are covered (pooling, concat, add, reshape …) so tensors
 * stay int8 between ops; Relu/Clip fold into the producer's range.
 */
export function insertQdq(model: ModelProto, ranges: Map<string, Range>, opts: StaticOptions): RewriteReport {
  const ed = new GraphEditor(model);
  const report: RewriteReport = { quantized: {}, skipped: {} };
  const quantizable = (node: NodeProto) => QUANTIZABLE.has(node.op_type!) && !opts.keepFloat?.(node, ed);
  foldActivations(ed, quantizable);
  const params = new Map<string, QParams>();
  const isActivation = (t: string) => t !== '' && ranges.has(t) && !ed.constant(t);
  // choose activation parameters in graph order; movement ops pass their input's parameters on
  for (const node of ed.nodes) {
    if (!quantizable(node)) continue;
    for (const t of activationInputs(node)) if (isActivation(t) && !params.has(t)) params.set(t, activationParams(ranges.get(t)!));
    const inParams = params.get(node.input?.[0] ?? '');
    for (const t of node.output ?? []) {
      if (!isActivation(t) || params.has(t)) continue;
      params.set(t, MOVEMENT.has(node.op_type!) && inParams ? inParams : activationParams(ranges.get(t)!));
    }
  }
  for (const node of [...ed.nodes]) {
    const op = node.op_type!;
    if (!quantizable(node)) {
      if (QUANTIZABLE.has(op)) report.skipped[op] ??= 'some kept float by the placement that ran fastest on this board';
      else if ((node.input ?? []).some((t) => ranges.has(t)) && !['Shape', 'Gather', 'Identity', 'Constant'].includes(op))
        report.skipped[op] ??= "no int8 kernel in ORT's CPU provider: stays float between Q/DQ";
      continue;
    }
    if (WEIGHTED.has(op) && !quantizeWeights(ed, node, params, opts)) {
      report.skipped[op] = 'weight is not a constant float tensor';
      continue;
    }
    if ((op === 'Add' || op === 'Mul') && !quantizeConstantOperands(ed, node)) continue;
    report.quantized[op] = (report.quantized[op] ?? 0) + 1;
  }
  for (const [tensor, p] of params) insertPair(ed, tensor, p, quantizable);
  ed.requireOpset('', 13);
  ed.pruneUnused();
  return report;
}

/**
 * Conv → Relu (sole consumer) becomes Conv writing the Relu's output: the QuantizeLinear on that tensor
 * clamps at the range's floor. It needs one: a quantized producer, or only quantized readers.
 */
function foldActivations(ed: GraphEditor, quantizable: (node: NodeProto) => boolean): void {
  for (const act of [...ed.nodes]) {
    if (!FOLDABLE_ACTIVATIONS.has(act.op_type!)) continue;
    const x = act.input![0];
    const producer = ed.producer(x);
    if (!producer || !FOLD_INTO.has(producer.op_type!) || ed.consumers(x).length !== 1 || ed.isGraphOutput(x)) continue;
    const y = act.output![0];
    if (!quantizable(producer) && (ed.isGraphOutput(y) || !ed.consumers(y).every(quantizable))) continue;
    if (act.op_type === 'Clip') {
      const lo = ed.constant(act.input![1] ?? '');
      if (lo && floatValues(lo)[0] < 0) continue; // a negative floor is not a ReLU-like clamp
    }
    producer.output![producer.output!.indexOf(x)] = act.output![0];
    ed.remove(act);
  }
}

function weightAxis(node: NodeProto): number {
  if (node.op_type === 'ConvTranspose') return 1;
  if (node.op_type === 'MatMul') return 1;
  if (node.op_type === 'Gemm') return intAttr(node, 'transB', 0) === 1 ? 0 : 1;
  return 0;
}

/** Weight → int8 per channel behind a DequantizeLinear; bias → int32 with scale s_input × s_weight. */
function quantizeWeights(ed: GraphEditor, node: NodeProto, params: Map<string, QParams>, opts: StaticOptions): boolean {
  const wName = node.input![1];
  const w = ed.initializer(wName) ?? ed.constant(wName);
  if (!w || w.data_type !== DataType.FLOAT) return false;
  const dims = dimsOf(w);
  const axis = weightAxis(node);
  const values = floatValues(w);
  const perChannel = opts.perChannel && dims.length >= 2;
  const { q, scales } = perChannel ? quantizePerChannel(values, dims, axis, opts.reduceRange) : perTensorWeights(values, opts.reduceRange);
  const channels = perChannel ? [dims[axis]] : [];
  const base = node.name || wName;
  const wq = ed.addInitializer(makeTensor(ed.fresh(`${wName}_quantized`), DataType.INT8, dims, q));
  const ws = ed.addInitializer(makeTensor(ed.fresh(`${wName}_scale`), DataType.FLOAT, channels, scales));
  const wDq = ed.fresh(`${wName}_dequantized`);
  // symmetric weights: the zero point is 0, DequantizeLinear's default, so a Conv stores none; ORT fuses
  // Gemm/MatMul into QGemm/QLinearMatMul only when the weight's DequantizeLinear names one
  const dqInputs = [wq, ws];
  if (node.op_type === 'Gemm' || node.op_type === 'MatMul')
    dqInputs.push(ed.addInitializer(makeTensor(ed.fresh(`${wName}_zero_point`), DataType.INT8, channels, new Int8Array(scales.length))));
  const dqNodes: NodeProto[] = [
    { name: ed.fresh(`${base}_weight_DQ`), op_type: 'DequantizeLinear', input: dqInputs, output: [wDq], attribute: perChannel ? [mkInt('axis', axis)] : [] },
  ];
  node.input![1] = wDq;
  const biasName = node.op_type === 'Conv' || node.op_type === 'ConvTranspose' || node.op_type === 'Gemm' ? node.input![2] : undefined;
  const inScale = params.get(node.input![0])?.scale;
  const bias = biasName ? ed.initializer(biasName) : undefined;
  if (bias && inScale !== undefined && bias.data_type === DataType.FLOAT && (node.op_type !== 'Gemm' || dimsOf(bias).length === 1)) {
    dqNodes.push(quantizeBias(ed, node, bias, inScale, scales, perChannel));
  }
  ed.insertBefore(node, dqNodes);
  return true;
}

function quantizeBias(ed: GraphEditor, node: NodeProto, bias: TensorProto, inScale: number, wScales: Float32Array, perChannel: boolean): NodeProto {
  const b = floatValues(bias);
  const scales = Float32Array.from(b, (_, i) => Math.fround(inScale * wScales[perChannel ? i : 0]) || 1);
  const q = Int32Array.from(b, (v, i) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, roundHalfEven(v / scales[i]))));
  const name = bias.name!;
  const bq = ed.addInitializer(makeTensor(ed.fresh(`${name}_quantized`), DataType.INT32, [b.length], q));
  const bs = ed.addInitializer(makeTensor(ed.fresh(`${name}_scale`), DataType.FLOAT, [b.length], scales));
  const out = ed.fresh(`${name}_dequantized`);
  node.input![2] = out;
  return { name: ed.fresh(`${node.name || name}_bias_DQ`), op_type: 'DequantizeLinear', input: [bq, bs], output: [out], attribute: [mkInt('axis', 0)] };
}

/** Add/Mul with a constant operand: the constant becomes int8 (per tensor) so both inputs are quantized. */
function quantizeConstantOperands(ed: GraphEditor, node: NodeProto): boolean {
  for (const [i, name] of (node.input ?? []).entries()) {
    const c = ed.constant(name);
    if (!c) continue;
    if (c.data_type !== DataType.FLOAT) return false;
    const v = floatValues(c);
    let min = 0;
    let max = 0;
    for (const x of v) [min, max] = [Math.min(min, x), Math.max(max, x)];
    const p = activationParams({ min, max });
    const q = Uint8Array.from(v, (x) => Math.max(0, Math.min(255, roundHalfEven(x / p.scale) + p.zeroPoint)));
    const cq = ed.addInitializer(makeTensor(ed.fresh(`${name}_quantized`), DataType.UINT8, dimsOf(c), q));
    const cs = ed.addInitializer(makeTensor(ed.fresh(`${name}_scale`), DataType.FLOAT, [], Float32Array.of(p.scale)));
    const czp = ed.addInitializer(makeTensor(ed.fresh(`${name}_zero_point`), DataType.UINT8, [], Uint8Array.of(p.zeroPoint)));
    const out = ed.fresh(`${name}_dequantized`);
    ed.insertBefore(node, [{ name: ed.fresh(`${node.name || name}_const_DQ`), op_type: 'DequantizeLinear', input: [cq, cs, czp], output: [out] }]);
    node.input![i] = out;
  }
  return true;
}

/**
 * T → QuantizeLinear → one DequantizeLinear per quantized reader of T (ORT fuses a DQ into one node unit only
 * when it has a single consumer), one shared by the float readers, and one more when T is a graph output.
 */
function insertPair(ed: GraphEditor, tensor: string, p: QParams, quantizable: (node: NodeProto) => boolean): void {
  const s = ed.addInitializer(makeTensor(ed.fresh(`${tensor}_scale`), DataType.FLOAT, [], Float32Array.of(p.scale)));
  const zp = ed.addInitializer(makeTensor(ed.fresh(`${tensor}_zero_point`), DataType.UINT8, [], Uint8Array.of(p.zeroPoint)));
  const q = ed.fresh(`${tensor}_quantized`);
  const producer = ed.producer(tensor);
  const readers = ed.consumers(tensor);
  const source = producer ? ed.fresh(`${tensor}_float`) : tensor;
  if (producer) producer.output![producer.output!.indexOf(tensor)] = source;
  const added: NodeProto[] = [{ name: ed.fresh(`${tensor}_Q`), op_type: 'QuantizeLinear', input: [source, s, zp], output: [q] }];
  const dequantize = (readersOfIt: NodeProto[]) => {
    const dq = ed.fresh(`${tensor}_dequantized`);
    added.push({ name: ed.fresh(`${tensor}_DQ`), op_type: 'DequantizeLinear', input: [q, s, zp], output: [dq] });
    for (const r of readersOfIt) r.input = r.input!.map((i) => (i === tensor ? dq : i));
  };
  for (const r of readers.filter(quantizable)) dequantize([r]);
  const floatReaders = readers.filter((r) => !quantizable(r));
  if (floatReaders.length > 0) dequantize(floatReaders);
  if (ed.isGraphOutput(tensor)) added.push({ name: ed.fresh(`${tensor}_DQ`), op_type: 'DequantizeLinear', input: [q, s, zp], output: [tensor] });
  const at = producer ? ed.nodes.indexOf(producer) + 1 : 0;
  ed.nodes.splice(at, 0, ...added);
}

function perTensorWeights(values: Float32Array, reduceRange: boolean): { q: Int8Array; scales: Float32Array } {
  const s = symmetricScale(values, reduceRange);
  return { q: Int8Array.from(values, (v) => Math.max(-128, Math.min(127, roundHalfEven(v / s)))), scales: Float32Array.of(s) };
}
