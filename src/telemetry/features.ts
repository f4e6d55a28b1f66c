import type { Component, ContextFor, Health } from '../core/index.js';
import { MqttLink } from '../mqtt/index.js';
import type { CommandTargets } from './commands.js';
import { FleetTelemetry, type NodeAbout } from './fleetTelemetry.js';
import { LiveFeed } from './liveFeed.js';
import { renderStatusPage, type PageStatus } from './statusPage.js';
import { StatusServer } from './statusServer.js';

/** The fleet feature: the node's broker link (null without `telemetry.mqtt`) and, in their place in the list, its components. */
export interface FleetParts {
  /** shared with offload discovery and the mqtt upload transport */
  link: MqttLink | null;
  components(targets: CommandTargets, about: NodeAbout): Component[];
}

/** Fleet telemetry over MQTT, when `telemetry.mqtt` is configured: the link, and the birth, telemetry, events and commands on it. */
export function fleetFeature(ctx: ContextFor): FleetParts {
  const { telemetry, node } = ctx('mqtt').config;
  const mqtt = telemetry.mqtt;
  if (!mqtt) return { link: null, components: () => [] };
  const link = new MqttLink(ctx('mqtt'), { mqtt, deviceId: node.deviceId });
  return { link, components: (targets, about) => [link, new FleetTelemetry(ctx('fleet'), mqtt, link, targets, about)] };
}

/** What the status page shows of the node. */
export interface NodeReport {
  status(): PageStatus;
  health(): Health;
}

/** The status page, when `status.enabled`: the live feed and the HTTP server that serves it with /status, /healthz and /metrics. */
export function statusPageComponents(ctx: ContextFor, node: NodeReport): Component[] {
  const { status, node: self } = ctx('status').config;
  if (!status.enabled) return [];
  const live = new LiveFeed(ctx('live'), () => node.status());
  const { registry, log } = ctx('status');
  return [
    live,
    new StatusServer({
      ...status,
      status: () => node.status(),
      page: () => renderStatusPage(node.status(), live.live()),
      healthy: () => node.health(),
      names: [self.name, ...status.allowedHosts],
      live,
      registry,
      log,
    }),
  ];
}
