export { renderDemoFrames } from './demoCamera.js';
export { DirectorySource, listImages, imageFrame } from './directorySource.js';
export { createSource, type SourceDeps } from './createSource.js';
export { listVideoDevices, ffmpegVersion, parseV4l2Formats, type VideoDevice } from './videoDevices.js';
export { JpegStreamParser } from './jpegStreamParser.js';
export { type Connect, type ReconnectOptions } from './reconnectingSource.js';
export { type FfmpegInput, type SpawnFn } from './ffmpegSource.js';
export { MotionGate, type MotionVerdict } from './motionGate.js';
export { CalibrationRecorder, recordFrom } from './calibrationRecorder.js';
