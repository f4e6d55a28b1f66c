import { DataType, GraphEditor, attr, floatAttr, intAttr, makeTensor, mkInt, type ModelProto, type NodeProto } from '../onnx/index.js';

/** int64 values kept exact: attributes such as Slice's ends hold INT64_MAX, which a double cannot. */
const int64 = (values: readonly (number | bigint)[]) => BigInt64Array.from(values.map((v) => BigInt(v)));
const rawInts = (node: NodeProto, name: string) => attr(node, name)?.ints;

/**
 * Upgrades the default-domain opset to `target` (13: per-channel DequantizeLinear needs it) by rewriting the
 * ops whose signature changed on the way: attributes that became inputs (Unsqueeze, Squeeze, Slice, Split,
 * ReduceSum, Clip, Pad), Softmax's axis meaning, Upsample → Resize. Returns what it rewrote.
 */
export function upgradeOpset(model: ModelProto, target = 13): Record<string, number> {
  const ed = new GraphEditor(model);
  const from = ed.opset();
  const done: Record<string, number> = {};
  if (from >= target) return done;
  const count = (op: string) => (done[op] = (done[op] ?? 0) + 1);
  for (const node of [...ed.nodes]) {
    if (node.domain && node.domain !== 'ai.onnx') continue;
    const op = node.op_type!;
    const axesToInput = (name: string, since: number) => {
      const values = rawInts(node, name);
      if (from >= since || values === undefined) return;
      node.input = [
        ...(node.input ?? []),
        ed.addInitializer(makeTensor(ed.fresh(`${node.name || op}_${name}`), DataType.INT64, [values.length], int64(values))),
      ];
      node.attribute = node.attribute?.filter((a) => a.name !== name);
      count(op);
    };
    if (op === 'Unsqueeze' || op === 'Squeeze' || op === 'ReduceSum') axesToInput('axes', 13);
    else if (op === 'Split') axesToInput('split', 13);
    else if (op === 'Slice' && from < 10) sliceToInputs(ed, node, count);
    else if (op === 'Clip' && from < 11) clipToInputs(ed, node, count);
    else if (op === 'Pad' && from < 11) padToInputs(ed, node, count);
    else if ((op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') && from < 13) softmaxAxis(ed, node, count);
    else if (op === 'Upsample') upsampleToResize(ed, node, count);
    else if (op === 'Dropout') {
      ed.replace(node, [{ name: node.name, op_type: 'Identity', input: [node.input![0]], output: [node.output![0]] }]);
      count(op);
    }
  }
  ed.requireOpset('', target);
  model.ir_version = Math.max(Number(model.ir_version ?? 0), 7);
  return done;
}

function sliceToInputs(ed: GraphEditor, node: NodeProto, count: (op: string) => void): void {
  const starts = rawInts(node, 'starts') ?? [];
  const ends = rawInts(node, 'ends') ?? [];
  const axes = rawInts(node, 'axes') ?? starts.map((_, i) => i);
  const add = (what: string, v: readonly (number | bigint)[]) =>
    ed.addInitializer(makeTensor(ed.fresh(`${node.name || 'Slice'}_${what}`), DataType.INT64, [v.length], int64(v)));
  node.input = [node.input![0], add('starts', starts), add('ends', ends), add('axes', axes)];
  node.attribute = [];
  count('Slice');
}

function clipToInputs(ed: GraphEditor, node: NodeProto, count: (op: string) => void): void {
  const min = floatAttr(node, 'min', -3.4028234663852886e38);
  const max = floatAttr(node, 'max', 3.4028234663852886e38);
  const add = (what: string, v: number) => ed.addInitializer(makeTensor(ed.fresh(`${node.name || 'Clip'}_${what}`), DataType.FLOAT, [], Float32Array.of(v)));
  node.input = [node.input![0], add('min', min), add('max', max)];
  node.attribute = [];
  count('Clip');
}

function padToInputs(ed: GraphEditor, node: NodeProto, count: (op: string) => void): void {
  const pads = rawInts(node, 'pads') ?? [];
  const value = floatAttr(node, 'value', 0);
  node.input = [
    node.input![0],
    ed.addInitializer(makeTensor(ed.fresh(`${node.name || 'Pad'}_pads`), DataType.INT64, [pads.length], int64(pads))),
    ed.addInitializer(makeTensor(ed.fresh(`${node.name || 'Pad'}_value`), DataType.FLOAT, [], Float32Array.of(value))),
  ];
  node.attribute = node.attribute?.filter((a) => a.name === 'mode');
  count('Pad');
}

/**
 * Before 13, Softmax flattened the input to 2-D at `axis` and normalised the second part; at 13 it works
 * along `axis` only. On the last axis both agree; elsewhere Flatten → Softmax → Reshape keeps the old meaning.
 */
function softmaxAxis(ed: GraphEditor, node: NodeProto, count: (op: string) => void): void {
  const axis = intAttr(node, 'axis', 1);
  const rank = rankOf(ed.model, node.input![0]) ?? rankOf(ed.model, node.output![0]);
  if (axis === -1 || (rank !== null && axis === rank - 1)) return;
  const [x, y] = [node.input![0], node.output![0]];
  const shape = ed.fresh(`${x}_shape`);
  const flat = ed.fresh(`${x}_2d`);
  const soft = ed.fresh(`${y}_2d`);
  ed.replace(node, [
    { name: ed.fresh(`${node.name || node.op_type}_Shape`), op_type: 'Shape', input: [x], output: [shape] },
    { name: ed.fresh(`${node.name || node.op_type}_Flatten`), op_type: 'Flatten', input: [x], output: [flat], attribute: [mkInt('axis', axis)] },
    { name: node.name, op_type: node.op_type, input: [flat], output: [soft], attribute: [mkInt('axis', 1)] },
    { name: ed.fresh(`${node.name || node.op_type}_Reshape`), op_type: 'Reshape', input: [soft, shape], output: [y] },
  ]);
  count(node.op_type!);
}

function rankOf(model: ModelProto, tensor: string): number | null {
  const g = model.graph!;
  const v = [...(g.value_info ?? []), ...(g.input ?? []), ...(g.output ?? [])].find((x) => x.name === tensor);
  return v?.type?.tensor_type?.shape?.dim?.length ?? null;
}

function upsampleToResize(ed: GraphEditor, node: NodeProto, count: (op: string) => void): void {
  const mode = attr(node, 'mode')?.s ? new TextDecoder().decode(attr(node, 'mode')!.s) : 'nearest';
  const roi = ed.addInitializer(makeTensor(ed.fresh(`${node.name || 'Resize'}_roi`), DataType.FLOAT, [0], new Float32Array(0)));
  const scales =
    node.input![1] ??
    ed.addInitializer(
      makeTensor(
        ed.fresh(`${node.name || 'Resize'}_scales`),
        DataType.FLOAT,
        [(attr(node, 'scales')?.floats ?? []).length],
        Float32Array.from(attr(node, 'scales')?.floats ?? []),
      ),
    );
  ed.replace(node, [
    {
      name: node.name,
      op_type: 'Resize',
      input: [node.input![0], roi, scales],
      output: node.output,
      attribute: [
        { name: 'mode', type: 3, s: new TextEncoder().encode(mode === 'bilinear' ? 'linear' : mode) },
        { name: 'coordinate_transformation_mode', type: 3, s: new TextEncoder().encode('asymmetric') },
        ...(mode === 'nearest' ? [{ name: 'nearest_mode', type: 3, s: new TextEncoder().encode('floor') }] : []),
      ],
    },
  ]);
  count('Upsample');
}
