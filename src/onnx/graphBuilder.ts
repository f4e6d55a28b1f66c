import { encodeModel, type ModelProto, type NodeProto, type ValueInfoProto } from './onnxModel.js';
import { DataType, makeTensor } from './tensors.js';

export interface TensorSpec {
  name: string;
  dims: number[];
  values: Float32Array;
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: NodeProto['attribute'];
  domain?: string;
}

export interface TinyModelSpec {
  inputs: { name: string; dims: (number | string)[] }[];
  outputs: { name: string; dims: (number | string)[] }[];
  initializers: TensorSpec[];
  nodes: NodeSpec[];
  opset: number;
}

export function floatValueInfo(name: string, dims: (number | string)[], elemType: number = DataType.FLOAT): ValueInfoProto {
  return {
    name,
    type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  };
}

/** A small float32 model built in code (provider probes, tests of rewrite rules). */
export function buildFloatModelProto(spec: TinyModelSpec): ModelProto {
  return {
    ir_version: 8,
    producer_name: 'outpost',
    opset_import: [{ domain: '', version: spec.opset }],
    graph: {
      name: 'outpost-built',
      input: spec.inputs.map((i) => floatValueInfo(i.name, i.dims)),
      output: spec.outputs.map((o) => floatValueInfo(o.name, o.dims)),
      initializer: spec.initializers.map((t) => makeTensor(t.name, DataType.FLOAT, t.dims, t.values)),
      node: spec.nodes.map((n, i) => ({ name: `${n.op}_${i}`, op_type: n.op, input: n.inputs, output: n.outputs, attribute: n.attributes, domain: n.domain })),
    },
  };
}

export function buildFloatModel(spec: TinyModelSpec): Uint8Array {
  return encodeModel(buildFloatModelProto(spec));
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
