export { Uploader, type UploaderDeps } from './uploader.js';
export { Outbox, DROP_REASONS, type DropReason, type OutboxItem, type OutboxLimits, type DroppedRange } from './outbox.js';
export { HttpTransport, MqttTransport, type Transport } from './transports.js';
export { encodeBatch, decodeBatch, BatchError, RESULT_TYPE, DROPPED_TYPE, type BatchAnswer, type ItemHeader } from './batch.js';
export { Collector, REFUSALS, type TrustedDevice, type CollectorRefusal } from './collector.js';
export { ItemStore, StoreRefusal, DEFAULT_STORE_LIMITS, type StoreLimits, type PutOutcome } from './itemStore.js';
export { verifyItems, type DeviceReport, type EpochReport } from './storeVerify.js';
