export { StatusServer, type StatusServerOptions } from './statusServer.js';
export { FrameMetrics } from './metrics.js';
export { StatsCollector } from './statsCollector.js';
export { ResultLog } from './resultLog.js';
export { type StatsSnapshot, type CameraSnapshot } from './runningStats.js';
export { LatencyWindow } from './latencyWindow.js';
export { renderStatusPage, type PageStatus } from './statusPage.js';
