import { DataType, GraphEditor, dimsOf, floatAttr, floatValues, makeTensor, type ModelProto, type NodeProto } from '../onnx/index.js';

/**
 * True for the two nodes of a hard-swish, x · HardSigmoid(x): the HardSigmoid, and the Mul that is its
 * only reader and also reads x. (An SE gate's HardSigmoid multiplies another tensor: not a hard-swish.)
 */
export function isHardSwishPart(node: NodeProto, ed: GraphEditor): boolean {
  const hs =
    node.op_type === 'HardSigmoid'
      ? node
      : node.op_type === 'Mul'
        ? node.input?.map((t) => ed.producer(t)).find((p) => p?.op_type === 'HardSigmoid')
        : undefined;
  if (!hs) return false;
  const readers = ed.consumers(hs.output![0]);
  return readers.length === 1 && readers[0].op_type === 'Mul' && readers[0].input!.includes(hs.input![0]) && (node === hs || node === readers[0]);
}

/**
 * Rewrites float-only ops into ones with int8 kernels before QDQ placement, so tensors stay int8 through
 * hard-swish blocks: Div by a constant → Mul by its reciprocal; HardSigmoid → Mul, Add, Clip(0, 1)
 * (the Clip then folds into the Add's range). Same function, more of the graph quantized.
 */
export function int8FriendlyRewrites(model: ModelProto, opts: { keepHardSwish?: boolean } = {}): Record<string, number> {
  const ed = new GraphEditor(model);
  const done: Record<string, number> = {};
  const scalar = (base: string, v: number) => ed.addInitializer(makeTensor(ed.fresh(base), DataType.FLOAT, [], Float32Array.of(v)));
  for (const node of [...ed.nodes]) {
    if (node.op_type === 'Div') {
      const c = ed.constant(node.input![1]);
      if (!c || c.data_type !== DataType.FLOAT) continue;
      const v = floatValues(c);
      if (v.some((x) => x === 0)) continue;
      const recip = ed.addInitializer(
        makeTensor(
          ed.fresh(`${node.input![1]}_reciprocal`),
          DataType.FLOAT,
          dimsOf(c),
          Float32Array.from(v, (x) => 1 / x),
        ),
      );
      node.op_type = 'Mul';
      node.input = [node.input![0], recip];
      done.Div = (done.Div ?? 0) + 1;
    } else if (node.op_type === 'HardSigmoid' && !(opts.keepHardSwish && isHardSwishPart(node, ed))) {
      const alpha = floatAttr(node, 'alpha', 0.2);
      const beta = floatAttr(node, 'beta', 0.5);
      const [x, y] = [node.input![0], node.output![0]];
      const scaled = ed.fresh(`${y}_scaled`);
      const shifted = ed.fresh(`${y}_shifted`);
      ed.replace(node, [
        { name: ed.fresh(`${node.name || 'HardSigmoid'}_Mul`), op_type: 'Mul', input: [x, scalar(`${y}_alpha`, alpha)], output: [scaled] },
        { name: ed.fresh(`${node.name || 'HardSigmoid'}_Add`), op_type: 'Add', input: [scaled, scalar(`${y}_beta`, beta)], output: [shifted] },
        { name: ed.fresh(`${node.name || 'HardSigmoid'}_Clip`), op_type: 'Clip', input: [shifted, scalar(`${y}_min`, 0), scalar(`${y}_max`, 1)], output: [y] },
      ]);
      done.HardSigmoid = (done.HardSigmoid ?? 0) + 1;
    }
  }
  return done;
}
