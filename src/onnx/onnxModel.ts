import { decodeMessage, encodeMessage, type Decoded, type MessageSchema } from './wire.js';

/** ONNX IR messages (onnx.proto3, IR version 10): field numbers as upstream. */
export const ONNX_SCHEMA: MessageSchema = {
  ModelProto: {
    1: { name: 'ir_version', type: 'int64' },
    8: { name: 'opset_import', type: 'message', message: 'OperatorSetIdProto', repeated: true },
    2: { name: 'producer_name', type: 'string' },
    3: { name: 'producer_version', type: 'string' },
    4: { name: 'domain', type: 'string' },
    5: { name: 'model_version', type: 'int64' },
    6: { name: 'doc_string', type: 'string' },
    7: { name: 'graph', type: 'message', message: 'GraphProto' },
    14: { name: 'metadata_props', type: 'message', message: 'StringStringEntryProto', repeated: true },
    20: { name: 'training_info', type: 'bytes', repeated: true },
    25: { name: 'functions', type: 'message', message: 'FunctionProto', repeated: true },
  },
  OperatorSetIdProto: { 1: { name: 'domain', type: 'string' }, 2: { name: 'version', type: 'int64' } },
  StringStringEntryProto: { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: 'string' } },
  GraphProto: {
    1: { name: 'node', type: 'message', message: 'NodeProto', repeated: true },
    2: { name: 'name', type: 'string' },
    5: { name: 'initializer', type: 'message', message: 'TensorProto', repeated: true },
    15: { name: 'sparse_initializer', type: 'bytes', repeated: true },
    10: { name: 'doc_string', type: 'string' },
    11: { name: 'input', type: 'message', message: 'ValueInfoProto', repeated: true },
    12: { name: 'output', type: 'message', message: 'ValueInfoProto', repeated: true },
    13: { name: 'value_info', type: 'message', message: 'ValueInfoProto', repeated: true },
    14: { name: 'quantization_annotation', type: 'bytes', repeated: true },
    16: { name: 'metadata_props', type: 'message', message: 'StringStringEntryProto', repeated: true },
  },
  NodeProto: {
    1: { name: 'input', type: 'string', repeated: true },
    2: { name: 'output', type: 'string', repeated: true },
    3: { name: 'name', type: 'string' },
    4: { name: 'op_type', type: 'string' },
    7: { name: 'domain', type: 'string' },
    8: { name: 'overload', type: 'string' },
    5: { name: 'attribute', type: 'message', message: 'AttributeProto', repeated: true },
    6: { name: 'doc_string', type: 'string' },
    9: { name: 'metadata_props', type: 'message', message: 'StringStringEntryProto', repeated: true },
  },
  AttributeProto: {
    1: { name: 'name', type: 'string' },
    21: { name: 'ref_attr_name', type: 'string' },
    13: { name: 'doc_string', type: 'string' },
    20: { name: 'type', type: 'int32' },
    2: { name: 'f', type: 'float' },
    3: { name: 'i', type: 'int64' },
    4: { name: 's', type: 'bytes' },
    5: { name: 't', type: 'message', message: 'TensorProto' },
    6: { name: 'g', type: 'message', message: 'GraphProto' },
    22: { name: 'sparse_tensor', type: 'bytes' },
    14: { name: 'tp', type: 'message', message: 'TypeProto' },
    7: { name: 'floats', type: 'float', repeated: true },
    8: { name: 'ints', type: 'int64', repeated: true },
    9: { name: 'strings', type: 'bytes', repeated: true },
    10: { name: 'tensors', type: 'message', message: 'TensorProto', repeated: true },
    11: { name: 'graphs', type: 'message', message: 'GraphProto', repeated: true },
    23: { name: 'sparse_tensors', type: 'bytes', repeated: true },
    15: { name: 'type_protos', type: 'message', message: 'TypeProto', repeated: true },
  },
  ValueInfoProto: {
    1: { name: 'name', type: 'string' },
    2: { name: 'type', type: 'message', message: 'TypeProto' },
    3: { name: 'doc_string', type: 'string' },
    4: { name: 'metadata_props', type: 'message', message: 'StringStringEntryProto', repeated: true },
  },
  TypeProto: {
    1: { name: 'tensor_type', type: 'message', message: 'TypeProtoTensor' },
    4: { name: 'sequence_type', type: 'message', message: 'TypeProtoSequence' },
    5: { name: 'map_type', type: 'message', message: 'TypeProtoMap' },
    9: { name: 'optional_type', type: 'message', message: 'TypeProtoSequence' },
    8: { name: 'sparse_tensor_type', type: 'message', message: 'TypeProtoTensor' },
    6: { name: 'denotation', type: 'string' },
  },
  TypeProtoTensor: { 1: { name: 'elem_type', type: 'int32' }, 2: { name: 'shape', type: 'message', message: 'TensorShapeProto' } },
  TypeProtoSequence: { 1: { name: 'elem_type', type: 'message', message: 'TypeProto' } },
  TypeProtoMap: { 1: { name: 'key_type', type: 'int32' }, 2: { name: 'value_type', type: 'message', message: 'TypeProto' } },
  TensorShapeProto: { 1: { name: 'dim', type: 'message', message: 'Dimension', repeated: true } },
  Dimension: { 1: { name: 'dim_value', type: 'int64' }, 2: { name: 'dim_param', type: 'string' }, 3: { name: 'denotation', type: 'string' } },
  TensorProto: {
    1: { name: 'dims', type: 'int64', repeated: true },
    2: { name: 'data_type', type: 'int32' },
    3: { name: 'segment', type: 'bytes' },
    4: { name: 'float_data', type: 'float', repeated: true },
    5: { name: 'int32_data', type: 'int32', repeated: true },
    6: { name: 'string_data', type: 'bytes', repeated: true },
    7: { name: 'int64_data', type: 'int64', repeated: true },
    8: { name: 'name', type: 'string' },
    12: { name: 'doc_string', type: 'string' },
    9: { name: 'raw_data', type: 'bytes' },
    13: { name: 'external_data', type: 'message', message: 'StringStringEntryProto', repeated: true },
    14: { name: 'data_location', type: 'int32' },
    10: { name: 'double_data', type: 'double', repeated: true },
    11: { name: 'uint64_data', type: 'uint64', repeated: true },
    16: { name: 'metadata_props', type: 'message', message: 'StringStringEntryProto', repeated: true },
  },
  FunctionProto: {
    1: { name: 'name', type: 'string' },
    4: { name: 'input', type: 'string', repeated: true },
    5: { name: 'output', type: 'string', repeated: true },
    6: { name: 'attribute', type: 'string', repeated: true },
    11: { name: 'attribute_proto', type: 'message', message: 'AttributeProto', repeated: true },
    7: { name: 'node', type: 'message', message: 'NodeProto', repeated: true },
    8: { name: 'doc_string', type: 'string' },
    9: { name: 'opset_import', type: 'message', message: 'OperatorSetIdProto', repeated: true },
    10: { name: 'domain', type: 'string' },
    13: { name: 'overload', type: 'string' },
    12: { name: 'value_info', type: 'message', message: 'ValueInfoProto', repeated: true },
    14: { name: 'metadata_props', type: 'message', message: 'StringStringEntryProto', repeated: true },
  },
};

type Int = number | bigint;
type Unknown = { $unknown?: Uint8Array[] };

export interface TensorProto extends Unknown {
  dims?: Int[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: Int[];
  double_data?: number[];
  uint64_data?: Int[];
  string_data?: Uint8Array[];
  raw_data?: Uint8Array;
  name?: string;
  doc_string?: string;
  external_data?: { key?: string; value?: string }[];
  data_location?: number;
}

export interface AttributeProto extends Unknown {
  name?: string;
  type?: number;
  f?: number;
  i?: Int;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: Int[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
}

export interface NodeProto extends Unknown {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: AttributeProto[];
  doc_string?: string;
}

export interface DimensionProto extends Unknown {
  dim_value?: Int;
  dim_param?: string;
}

export interface ValueInfoProto extends Unknown {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: DimensionProto[] } } } & Unknown;
  doc_string?: string;
}

export interface GraphProto extends Unknown {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
  doc_string?: string;
}

export interface ModelProto extends Unknown {
  ir_version?: Int;
  opset_import?: { domain?: string; version?: Int }[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: Int;
  doc_string?: string;
  graph?: GraphProto;
  metadata_props?: { key?: string; value?: string }[];
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return decodeMessage(bytes, 'ModelProto', ONNX_SCHEMA) as ModelProto;
}

export function encodeModel(model: ModelProto): Buffer {
  return encodeMessage(model as Decoded, 'ModelProto', ONNX_SCHEMA);
}

export function decodeTensor(bytes: Uint8Array): TensorProto {
  return decodeMessage(bytes, 'TensorProto', ONNX_SCHEMA) as TensorProto;
}
