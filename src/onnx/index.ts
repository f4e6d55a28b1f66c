export { buildFloatModel, buildFloatModelProto, probeModel, floatValueInfo, type TinyModelSpec, type NodeSpec, type TensorSpec } from './graphBuilder.js';
export {
  decodeModel,
  encodeModel,
  decodeTensor,
  encodeTensor,
  ONNX_SCHEMA,
  type ModelProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type AttributeProto,
  type ValueInfoProto,
} from './onnxModel.js';
export { DataType, tensorValues, floatValues, makeTensor, dimsOf, elementCount, ortTypeName, type TypedValues } from './tensors.js';
export { readModelFile, writeModelFile } from './modelFile.js';
export { decodeMessage, encodeMessage, type Decoded, type MessageSchema } from './wire.js';
export { GraphEditor, AttrType, attr, intAttr, floatAttr, intsAttr, mkInt, mkInts, mkFloat } from './graphEditor.js';
