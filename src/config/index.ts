export { loadConfig, ConfigError, formatProblem, type ConfigProblem, type LoadedConfig } from './load.js';
export {
  configSchema,
  configJsonSchema,
  LIVE_SETTINGS,
  PROVIDERS,
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
  DETECTOR_TYPES,
  type RuntimeConfig,
  type ProviderName,
} from './schema.js';
export { resolveBuiltin } from './builtins.js';
