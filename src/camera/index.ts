export { DemoCamera, renderDemoSvg } from './demoCamera.js';
export { DirectorySource, listImages, imageFrame } from './directorySource.js';
export { createSource } from './createSource.js';
export { sleep, FramePacer } from './abortableSleep.js';
export { listVideoDevices, ffmpegVersion, type VideoDevice } from './videoDevices.js';
