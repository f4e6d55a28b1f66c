export { loadConfig, ConfigError, formatProblem, type ConfigProblem, type LoadedConfig } from './load.js';
export {
  configSchema,
  configJsonSchema,
  stageSchema,
  faceDetectorPipeline,
  type OutpostConfig,
  type CameraConfig,
  type CameraSourceConfig,
  type MotionConfig,
  type PipelineConfig,
  type StageConfig,
  type DbDecoderConfig,
  type CtcDecoderConfig,
  type SsdDecoderConfig,
  type YoloDecoderConfig,
  type ClassifyDecoderConfig,
  type TensorInputConfig,
  type RuntimeConfig,
  type ModelConfig,
  type PowerConfig,
  type LevelPolicy,
} from './schema.js';
export { resolveConfig, deviceIdOf, type ResolvedConfig, type ResolvedUploadConfig, type CollectorKeys } from './resolve.js';
export { LIVE_SETTINGS, isLiveSetting, planReload, type ReloadPlan } from './reload.js';
export type { MqttConfig, KeyringEntryConfig, JobsConfig } from './fleetSchema.js';
export type { UploadConfig } from './uploadSchema.js';
export { trustListSchema, type TrustListEntry } from './uploadSchema.js';
export { offloadSchema, type OffloadConfig } from './offloadSchema.js';
export { resolveBuiltin } from './builtins.js';
export { decoderFiles, mapDecoderFiles, type DecoderFileField } from './decoderFiles.js';
export { pipelineWords } from './cameraSchema.js';
export { isLoopbackHost } from './networkChecks.js';
