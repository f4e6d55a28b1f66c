import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Supervisor, type Component, type ComponentContext, type ContextFor } from './core/index.js';
import { keysAtFirstStart, readKeys } from './crypto/index.js';
import { uploadFeature } from './upload/index.js';
import { deployComponents } from './deploy/index.js';
import { JobScheduler } from './jobs/index.js';
import { logRejection } from './lastResort.js';
import { CameraSet, PipelineSet, PrecisionController } from './pipeline/index.js';
import { offloadFeature } from './offload/index.js';
import { powerComponents } from './power/index.js';
import { cleanState, InferenceEngine, rebenchmarkModels } from './runtime/index.js';
import { serviceComponents } from './service/index.js';
import { fleetFeature, FrameMetrics, ResultLog, StatsCollector, statusPageComponents, type CommandTargets, type PageStatus } from './telemetry/index.js';

export const VERSION = '0.1.0';
const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

/**
 * The composition root: the list of components, started in this order and stopped in reverse. Each feature's
 * factory returns its components (none when its section is absent). Adding a capability means its folder, its
 * factory and one line here.
 */
function components(ctx: ContextFor, daemon: Daemon): Component[] {
  const c = ctx('daemon').config;
  const engine = new InferenceEngine({ ...c.runtime, stateDir: c.node.stateDir }, ctx('runtime').log);
  const upload = uploadFeature(ctx);
  const pipelines = new PipelineSet(ctx('pipelines'), engine, { extra: upload.pipelines });
  const provider = () => engine.provider;
  const precision = new PrecisionController(ctx('precision'), pipelines, provider);
  const fleet = fleetFeature(ctx);
  const offload = offloadFeature(ctx, { engine, pipelines, link: fleet.link });
  const cameras = new CameraSet(ctx('cameras'), pipelines, provider, offload.placer);
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
    ...identity(ctx('keys')),
    new StatsCollector(ctx('stats')),
    new FrameMetrics(ctx('metrics')),
    new ResultLog(ctx('result-log')),
    ...statusPageComponents(ctx, daemon),
    engine,
    pipelines,
    precision,
    ...offload.serving,
    cameras,
    ...powerComponents(ctx),
    jobs,
    ...fleet.components(targets, { version: VERSION, startedAt: daemon.startedAt }),
    ...deployComponents(ctx, { link: fleet.link, host: daemon, pipelines }),
    ...offload.discovery,
    ...upload.components({ pipelines, link: fleet.link }),
    ...serviceComponents(ctx, () => ({ cameras: cameras.names().length, dead: cameras.deadCameras() })),
  ];
}

/** A board's identity is made on the board: keys generated at first start when a networked feature needs them and there are none. */
function identity(ctx: ComponentContext): Component[] {
  const { offload, upload, telemetry, node } = ctx.config;
  if (!offload && !upload && !telemetry.mqtt) return [];
  const start = async () => {
    const made = keysAtFirstStart(node.keysDir);
    if (made)
      ctx.log.info(
        { dir: node.keysDir, fingerprint: made.fingerprint, sign: made.sign, box: made.box },
        "created this node's keys (first start): add them to the keyrings that must trust it",
      );
  };
  return [{ name: 'keys', start, stop: async () => undefined }];
}

export class Daemon extends Supervisor {
  protected components(ctx: ContextFor): Component[] {
    return components(ctx, this);
  }

  /** This node's own keys, when it has any (snapshots are sealed with them). */
  keys() {
    return existsSync(this.config.node.keysDir) ? readKeys(this.config.node.keysDir) : null;
  }

  status(): PageStatus & Record<string, unknown> {
    return this.mergedStatus(VERSION) as PageStatus & Record<string, unknown>;
  }
}
