import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Component, ComponentContext } from './component.js';
import { fromB64, keysAtFirstStart, readKeys } from './crypto/index.js';
import { Deployer } from './deploy/index.js';
import { faceDetectorPipeline } from './config/index.js';
import type { Frame } from './types.js';
import { HttpTransport, MqttTransport, Uploader } from './upload/index.js';
import { JobScheduler } from './jobs/index.js';
import { logRejection } from './lastResort.js';
import { MqttLink } from './mqtt/index.js';
import { CameraSet, offloadComponents, PipelineSet, PrecisionController } from './pipeline/index.js';
import { PowerMonitor } from './power/index.js';
import { cleanState, InferenceEngine, rebenchmarkModels } from './runtime/index.js';
import { ServiceWatchdog, SystemdNotifier } from './service/index.js';
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
  const faces = c.upload?.anonymise.faces;
  const pipelines = new PipelineSet(ctx('pipelines'), engine, { extra: faces ? { [FACES]: faceDetectorPipeline(faces.model, faces.minScore) } : {} });
  const provider = () => engine.provider;
  const precision = new PrecisionController(ctx('precision'), pipelines, provider);
  const mqtt = c.telemetry.mqtt && new MqttLink(ctx('mqtt'), { mqtt: c.telemetry.mqtt, deviceId: c.telemetry.mqtt.deviceId ?? c.node.name });
  const off = c.offload ? offloadComponents(ctx, engine, pipelines, mqtt || null) : null;
  const cameras = new CameraSet(ctx('cameras'), pipelines, provider, off?.placer);
  const jobs = new JobScheduler(ctx('jobs'), [
    {
      name: 'rebenchmark',
      optional: true,
      run: (signal) => rebenchmarkModels(CLI, daemon.config, ctx('jobs').log, signal, (model, dir) => precision.retuned(model, dir)),
    },
    { name: 'stateCleanup', optional: false, run: async () => cleanState(daemon.config, ctx('jobs').log) },
  ]);
  const targets: CommandTargets = {
    status: () => daemon.status(),
    reloadConfig: () => daemon.reloadFromFile(),
    setPrecision: (rung) => precision.fix(rung),
    pauseCamera: (name) => void cameras.pause(name).catch(logRejection(ctx('cameras').log, `pausing camera ${name}`)),
    resumeCamera: (name) => cameras.resume(name),
    cameras: () => cameras.names(),
    latestFrame: (name) => cameras.latestFrame(name),
    rebenchmark: () => jobs.run('rebenchmark'),
    restart: () => void daemon.restart().catch(logRejection(ctx('fleet').log, 'restart')),
    configProblems: () => daemon.configProblems(),
    keys: () => daemon.keys(),
  };
  return [
    ...(c.offload || c.upload || c.telemetry.mqtt ? [identity(ctx('keys'))] : []),
    new StatsCollector(ctx('stats')),
    new FrameMetrics(ctx('metrics')),
    new ResultLog(ctx('result-log')),
    ...(c.status.enabled ? statusPage(ctx, daemon) : []),
    engine,
    pipelines,
    precision,
    ...(off?.before ?? []),
    cameras,
    ...(c.power.enabled ? [new PowerMonitor(ctx('power'))] : []),
    jobs,
    ...(mqtt ? [mqtt, new FleetTelemetry(ctx('fleet'), mqtt, targets, { version: VERSION, startedAt: daemon.startedAt })] : []),
    ...(mqtt ? [new Deployer(ctx('deploy'), mqtt, daemon, pipelines)] : []),
    ...(off?.after ?? []),
    ...(c.upload ? [uploader(ctx('upload'), pipelines, mqtt || null)] : []),
    new ServiceWatchdog(ctx('service'), SystemdNotifier.forProcess(ctx('service').log), () => ({
      cameras: cameras.names().length,
      dead: cameras.deadCameras(),
    })),
  ];
}

const FACES = '__faces';
/** A board's identity is made on the board: keys generated at first start when the node needs them and has none. */
function identity(ctx: ComponentContext): Component {
  return {
    name: 'keys',
    start: async () => {
      const dir = ctx.config.node.keysDir!;
      const made = keysAtFirstStart(dir);
      if (made)
        ctx.log.info(
          { dir, fingerprint: made.fingerprint, sign: made.sign, box: made.box },
          "created this node's keys (first start): add them to the keyrings that must trust it",
        );
    },
    stop: async () => undefined,
  };
}

/** Sealed uploads: to the collector's box key from the keyring, over HTTP or the MQTT link, faces found by the detector named in the config. */
function uploader(ctx: ComponentContext, pipelines: PipelineSet, mqtt: MqttLink | null): Uploader {
  const up = ctx.config.upload!;
  const entry = ctx.config.keyring.find((k) => k.name === up.collector.key)!;
  const collector = { box: fromB64(entry.box!)!, sign: fromB64(entry.sign!)! };
  const timeout = up.delivery.timeoutSeconds * 1000;
  const transport = up.transport === 'mqtt' ? new MqttTransport(mqtt!, timeout) : new HttpTransport(up.collector.url!, timeout);
  const grow = up.anonymise.faces?.grow ?? 0;
  const faces = async (frame: Frame) =>
    ((await pipelines.get(FACES).process(frame)).output.detections ?? []).map(({ box: [x0, y0, x1, y1] }) => {
      const [gx, gy] = [(x1 - x0) * grow, (y1 - y0) * grow];
      return [x0 - gx, y0 - gy, x1 + gx, y1 + gy] as const;
    });
  const deviceId = ctx.config.telemetry.mqtt?.deviceId ?? ctx.config.node.name;
  return new Uploader(ctx, { deviceId, keys: () => readKeys(ctx.config.node.keysDir!), collector, transport, faces: up.anonymise.faces ? faces : undefined });
}

/** The live feed and the HTTP server that serves it with /status, /healthz and /metrics. */
function statusPage(ctx: (name: string) => ComponentContext, d: Daemon): Component[] {
  const live = new LiveFeed(ctx('live'), () => d.status());
  const opts = { ...ctx('status').config.status, status: () => d.status(), page: () => renderStatusPage(d.status(), live.live()), healthy: () => d.health() };
  const names = [ctx('status').config.node.name, ...ctx('status').config.status.allowedHosts];
  return [live, new StatusServer({ ...opts, names, live, registry: ctx('status').registry, log: ctx('status').log })];
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
