export { StagedPipeline, summariseOutput, type StageChoice, type PipelineDeps, type PreparedFrame, type PipelineOutcome } from './stagedPipeline.js';
export { FrameScheduler, type ScheduledCamera, type SchedulerDeps, type FrameGate } from './frameScheduler.js';
export { LatestFrameSlot } from './latestFrameSlot.js';
export { startPipelines } from './pipelineSet.js';
export { runPipelined } from './pipelinedLoop.js';
export { loadModelVariants, variantFiles } from './variantSelection.js';
