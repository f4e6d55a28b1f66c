export { buildFloatModel, probeModel, DataType, type TinyModelSpec, type NodeSpec, type TensorSpec } from './graphBuilder.js';
export { ModelProtoType } from './onnxProto.js';
