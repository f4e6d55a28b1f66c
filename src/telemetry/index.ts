export { StatusServer, type StatusServerOptions } from './statusServer.js';
export { OutpostMetrics } from './metrics.js';
export { RunningStats, type StatsSnapshot, type CameraSnapshot } from './runningStats.js';
export { LatencyWindow } from './latencyWindow.js';
export { renderStatusPage, type PageStatus } from './statusPage.js';
