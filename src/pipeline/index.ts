export { StagedPipeline, type StageChoice, type PipelineDeps, type PreparedFrame, type PipelineOutcome, type RemoteRange } from './stagedPipeline.js';
export { FrameScheduler, type ScheduledCamera, type SchedulerDeps, type FrameGate, type FramePlacer } from './frameScheduler.js';
export { LatestFrameSlot } from './latestFrameSlot.js';
export { PipelineSet, type PipelineSetOptions, type RungChoice } from './pipelineSet.js';
export { PrecisionController } from './precisionController.js';
export { CameraSet } from './cameraSet.js';
export { runPipelined } from './pipelinedLoop.js';
