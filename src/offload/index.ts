export { OffloadServer, type OffloadServerDeps, type StageRunner } from './server.js';
export { OffloadClient, PeerRefused } from './client.js';
export { PeerTable, type Peer } from './peerTable.js';
export { Announcer, type Announcement } from './announcer.js';
export {
  parseStageSpecs,
  parseRegions,
  filesOf,
  type OffloadRefusal,
  type Refusal,
  type FileRequest,
  type RunRequest,
  type RunAnswer,
  type StageSpec,
} from './protocol.js';
export { PeerFileCache } from './fileCache.js';
export { offloadFeature, type OffloadParts } from './offloadComponents.js';
export { sha256File, stageSpec } from './remotePipelines.js';
