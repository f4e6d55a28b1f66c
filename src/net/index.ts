export { closeServer, createBoundedServer, DEFAULT_LIMITS, type BoundedServerOptions, type ConnectionRefusal, type ServerLimits } from './boundedServer.js';
export { readBody, refuse, BodyLimiter, type BodyRefusal, type BodyRefusalReason, type BodyResult, type BodyRoute } from './bodyReader.js';
