export { LocalSession, ORT_VERSION, supportedBackends, type SessionSpec, type SessionInfo } from './localSession.js';
export { probeProvider, AUTO_ORDER, type ProviderAttempt } from './providerSelection.js';
export { InferenceWorker } from './inferenceWorker.js';
export { InferenceEngine, type EngineOptions } from './inferenceEngine.js';
export { float32, type TensorData, type TensorMap, type TensorValues } from './tensorData.js';
export type { RunReply, ChooseReply } from './workerProtocol.js';
export { localModelRunner } from './localModelRunner.js';
export { ModelVariants, variantsDir } from './modelVariants.js';
export { buildInBackground } from './variantBuilder.js';
