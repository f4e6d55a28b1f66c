export { Deployer, deployComponents, type DeployHost } from './deployer.js';
export { recoverDeployment } from './startRecovery.js';
export { deploymentSchema, parseSelector, targets, MAX_DEPLOYMENT_BYTES, DEPLOYMENT_ID, CHUNK_BYTES, type Deployment } from './document.js';
export { chunkTopic } from './brokerChunks.js';
export { DEPLOY_ACTIONS, type DeployAction } from './intake.js';
export type { ReportBody } from './report.js';
