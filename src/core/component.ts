import type { Registry } from 'prom-client';
import type { ResolvedConfig } from '../config/index.js';
import type { EventBus } from './eventBus.js';
import type { Logger } from '../log.js';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** What every component factory is built from. Shared parts a component needs (the engine, the MQTT link) are passed beside it. */
export interface ComponentContext {
  readonly config: Readonly<ResolvedConfig>;
  readonly bus: EventBus;
  /** A child logger with `{component: name}`. */
  readonly log: Logger;
  readonly clock: Clock;
  readonly stateDir: string;
  /** The Prometheus registry /metrics serves: a component registers its own series in start(). */
  readonly registry: Registry;
}

/** One context per component name: what a feature's factory builds its components from. */
export type ContextFor = (name: string) => ComponentContext;

export interface Health {
  ok: boolean;
  reason: string;
}

/**
 * A long-lived part of the daemon (zigbee2mqtt's extension is the model). The constructor only assigns fields;
 * I/O starts in start(), which gets the start-up abort signal. stop() releases everything start() took, and
 * must be safe after a start() that failed half-way. status() is merged into /status and MQTT telemetry.
 */
export interface Component {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  /** SIGHUP: the new configuration, with restart-only settings kept at their running values. */
  reload?(config: Readonly<ResolvedConfig>): void | Promise<void>;
  status?(): Record<string, unknown>;
  health?(): Health | null;
}
