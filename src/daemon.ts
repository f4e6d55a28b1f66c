import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Component, ComponentContext } from './component.js';
import { readKeys } from './crypto/index.js';
import { JobScheduler } from './jobs/index.js';
import { MqttLink } from './mqtt/index.js';
import { CameraSet, PipelineSet, PrecisionController } from './pipeline/index.js';
import { PowerMonitor } from './power/index.js';
import { cleanState, InferenceEngine, rebenchmarkModels } from './runtime/index.js';
import { Supervisor } from './supervisor.js';
import {
  FleetTelemetry,
  FrameMetrics,
  ResultLog,
  StatsCollector,
  StatusServer,
  LiveFeed,
  renderStatusPage,
  type CommandTargets,
  type PageStatus,
} from './telemetry/index.js';

export const VERSION = '0.1.0';
const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

/**
 * The composition root: the list of components, started in this order and stopped in reverse. Adding a
 * capability means its folder, its factory and one line here.
 */
function components(ctx: (name: string) => ComponentContext, daemon: Daemon): Component[] {
  const c = ctx('daemon').config;
  const engine = new InferenceEngine({ ...c.runtime, stateDir: c.node.stateDir }, ctx('runtime').log);
  const pipelines = new PipelineSet(ctx('pipelines'), engine);
  const provider = () => engine.provider;
  const precision = new PrecisionController(ctx('precision'), pipelines, provider);
  const cameras = new CameraSet(ctx('cameras'), pipelines, provider);
  const jobs = new JobScheduler(ctx('jobs'), [
    {
      name: 'rebenchmark',
      optional: true,
      run: (signal) => rebenchmarkModels(CLI, daemon.config, ctx('jobs').log, signal, (model, dir) => precision.retuned(model, dir)),
    },
    { name: 'stateCleanup', optional: false, run: async () => cleanState(daemon.config, ctx('jobs').log) },
  ]);
  const mqtt = c.telemetry.mqtt && new MqttLink(ctx('mqtt'), { mqtt: c.telemetry.mqtt, deviceId: c.telemetry.mqtt.deviceId ?? c.node.name });
  const targets: CommandTargets = {
    status: () => daemon.status(),
    reloadConfig: () => daemon.reloadFromFile(),
    setPrecision: (rung) => precision.fix(rung),
    pauseCamera: (name) => void cameras.pause(name),
    resumeCamera: (name) => cameras.resume(name),
    cameras: () => cameras.names(),
    latestFrame: (name) => cameras.latestFrame(name),
    rebenchmark: () => jobs.run('rebenchmark'),
    restart: () => daemon.restart(),
    keys: () => daemon.keys(),
  };
  return [
    new StatsCollector(ctx('stats')),
    new FrameMetrics(ctx('metrics')),
    new ResultLog(ctx('result-log')),
    ...(c.status.enabled ? statusPage(ctx, daemon) : []),
    engine,
    pipelines,
    precision,
    cameras,
    ...(c.power.enabled ? [new PowerMonitor(ctx('power'))] : []),
    jobs,
    ...(mqtt ? [mqtt, new FleetTelemetry(ctx('fleet'), mqtt, targets, { version: VERSION, startedAt: daemon.startedAt })] : []),
  ];
}

/** The live feed and the HTTP server that serves it with /status, /healthz and /metrics. */
function statusPage(ctx: (name: string) => ComponentContext, d: Daemon): Component[] {
  const live = new LiveFeed(ctx('live'), () => d.status());
  const opts = { ...ctx('status').config.status, status: () => d.status(), page: () => renderStatusPage(d.status(), live.live()), healthy: () => d.health() };
  return [live, new StatusServer({ ...opts, live, registry: ctx('status').registry, log: ctx('status').log })];
}

export class Daemon extends Supervisor {
  protected components(ctx: (name: string) => ComponentContext): Component[] {
    return components(ctx, this);
  }

  /** This node's own keys, when it has any (snapshots are sealed with them). */
  keys() {
    return existsSync(this.config.node.keysDir!) ? readKeys(this.config.node.keysDir!) : null;
  }

  status(): PageStatus & Record<string, unknown> {
    return this.mergedStatus(VERSION) as PageStatus & Record<string, unknown>;
  }
}
