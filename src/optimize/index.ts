export { quantizeDynamic, type RewriteReport, type DynamicOptions } from './dynamicQuant.js';
export { calibrate, insertQdq, initializersAsConstants, type StaticOptions } from './staticQuant.js';
export { upgradeOpset } from './opsetUpgrade.js';
export { needsReduceRange } from './cpuFeatures.js';
export { NORMALISATIONS, imageInput, frameFeeds, listFrames, type InputSpec } from './calibrationFrames.js';
export type { ModelRunner, RunnerSession, RunnerOptions } from './modelRunner.js';
export {
  buildVariants,
  readManifest,
  PRECISIONS,
  MANIFEST,
  type Manifest,
  type VariantEntry,
  type Precision,
  type OptimizeRequest,
  type FidelityThresholds,
} from './optimizer.js';
export { FidelityMeter, detectTask, detectionF1, type Fidelity, type TaskKind } from './fidelity.js';
export { convertFp16, toHalf } from './fp16.js';
export { int8FriendlyRewrites } from './int8Rewrites.js';
export { PLACEMENTS, keepFloatFor, timePlacements, type Placement } from './placementSearch.js';
export { compactNames } from './compactNames.js';
