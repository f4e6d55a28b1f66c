export { Uploader, type UploaderDeps } from './uploader.js';
export { Outbox, DROP_REASONS, type DropReason, type OutboxItem, type OutboxLimits, type DroppedRange } from './outbox.js';
export { HttpTransport, MqttTransport, type Transport } from './transports.js';
export { encodeBatch, decodeBatch, BatchError, RESULT_TYPE, DROPPED_TYPE, type BatchAnswer, type ItemHeader } from './batch.js';
export { Collector, REFUSALS, type TrustedDevice, type CollectorRefusal } from './collector.js';
export { ItemStore, verifyItems, type DeviceReport } from './itemStore.js';
export { signAnswer, checkAnswer, ACK_REFUSALS, type SignedAnswer, type SentBatch, type AckRefusal, type AckVerdict } from './acks.js';
export type { AcceptAnswer } from './transports.js';
export { resealLegacy } from './legacyItems.js';
