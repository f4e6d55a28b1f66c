export { buildFloatModelProto, probeModel, type TinyModelSpec, type NodeSpec, type TensorSpec } from './graphBuilder.js';
export {
  decodeModel,
  encodeModel,
  decodeTensor,
  type ModelProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type AttributeProto,
  type ValueInfoProto,
} from './onnxModel.js';
export { DataType, tensorValues, floatValues, makeTensor, dimsOf, elementCount, ortTypeName, type TypedValues } from './tensors.js';
export { readModelFile, writeModelFile } from './modelFile.js';
export { type Decoded, type MessageSchema } from './wire.js';
export { GraphEditor, attr, intAttr, floatAttr, mkInt, mkInts } from './graphEditor.js';
