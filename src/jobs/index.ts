export { JobScheduler, type JobDefinition, type JobOutcome } from './jobScheduler.js';
