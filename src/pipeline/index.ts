export { StagedPipeline, type StageChoice, type PipelineDeps, type PreparedFrame, type PipelineOutcome } from './stagedPipeline.js';
export { FrameScheduler, type ScheduledCamera, type SchedulerDeps, type FrameGate } from './frameScheduler.js';
export { LatestFrameSlot } from './latestFrameSlot.js';
export { PipelineSet, type PipelineSetOptions, type RungChoice } from './pipelineSet.js';
export { PrecisionController } from './precisionController.js';
export { CameraSet } from './cameraSet.js';
export { runPipelined } from './pipelinedLoop.js';
