import { ModelProtoType } from './onnxProto.js';

/** ONNX TensorProto.DataType values we build with. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

export interface TensorSpec {
  name: string;
  dims: number[];
  values: Float32Array;
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
}

export interface TinyModelSpec {
  inputs: { name: string; dims: number[] }[];
  outputs: { name: string; dims: number[] }[];
  initializers: TensorSpec[];
  nodes: NodeSpec[];
  opset: number;
}

function valueInfo(name: string, dims: number[]) {
  return { name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } };
}

/** Serialises a small float32 graph built in code (provider probes, tests of rewrite rules). */
export function buildFloatModel(spec: TinyModelSpec): Uint8Array {
  const model = ModelProtoType.fromObject({
    ir_version: 8,
    producer_name: 'outpost',
    opset_import: [{ domain: '', version: spec.opset }],
    graph: {
      name: 'outpost-built',
      input: spec.inputs.map((i) => valueInfo(i.name, i.dims)),
      output: spec.outputs.map((o) => valueInfo(o.name, o.dims)),
      initializer: spec.initializers.map((t) => ({ name: t.name, dims: t.dims, data_type: DataType.FLOAT, raw_data: Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength) })),
      node: spec.nodes.map((n, i) => ({ name: `${n.op}_${i}`, op_type: n.op, input: n.inputs, output: n.outputs })),
    },
  });
  return ModelProtoType.encode(model).finish();
}

/** y = x · W + b, 1x4 → 1x2: small enough to build in microseconds, real enough to exercise a provider. */
export function probeModel(): Uint8Array {
  return buildFloatModel({
    opset: 13,
    inputs: [{ name: 'x', dims: [1, 4] }],
    outputs: [{ name: 'y', dims: [1, 2] }],
    initializers: [
      { name: 'W', dims: [4, 2], values: new Float32Array([1, 0, 0, 1, 1, 0, 0, 1]) },
      { name: 'b', dims: [2], values: new Float32Array([0.5, -0.5]) },
    ],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
    ],
  });
}
