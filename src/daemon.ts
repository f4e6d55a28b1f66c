import { Registry } from 'prom-client';
import { systemClock, type Component, type ComponentContext, type Health } from './component.js';
import { ComponentList } from './componentList.js';
import { planReload, type LoadedConfig, type OutpostConfig } from './config/index.js';
import { EventBus } from './eventBus.js';
import type { Logger } from './log.js';
import { CameraSet, PipelineSet, PrecisionController } from './pipeline/index.js';
import { PowerMonitor } from './power/index.js';
import { InferenceEngine } from './runtime/index.js';
import { prepareStateDir } from './stateDir.js';
import { FrameMetrics, ResultLog, StatsCollector, StatusServer, renderStatusPage, type PageStatus } from './telemetry/index.js';

export const VERSION = '0.1.0';

/**
 * The composition root: the list of components, started in this order and stopped in reverse. Adding a
 * capability means its folder, its factory and one line here.
 */
function components(ctx: (name: string) => ComponentContext, daemon: Daemon): Component[] {
  const c = ctx('daemon').config;
  const engine = new InferenceEngine({ ...c.runtime, stateDir: c.node.stateDir }, ctx('runtime').log);
  const pipelines = new PipelineSet(ctx('pipelines'), engine);
  const provider = () => engine.provider;
  return [
    new StatsCollector(ctx('stats')),
    new FrameMetrics(ctx('metrics')),
    new ResultLog(ctx('result-log')),
    ...(c.status.enabled ? [statusServer(ctx('status'), daemon)] : []),
    engine,
    pipelines,
    new PrecisionController(ctx('precision'), pipelines, provider),
    new CameraSet(ctx('cameras'), pipelines, provider),
    ...(c.power.enabled ? [new PowerMonitor(ctx('power'))] : []),
  ];
}

function statusServer(ctx: ComponentContext, daemon: Daemon): StatusServer {
  const { host, port } = ctx.config.status;
  const status = () => daemon.status();
  return new StatusServer({ host, port, status, page: () => renderStatusPage(status()), healthy: () => daemon.health(), registry: ctx.registry, log: ctx.log });
}

export class Daemon {
  private config: Readonly<OutpostConfig>;
  private readonly bus: EventBus;
  private readonly registry = new Registry();
  private readonly startedAt = Date.now();
  readonly list: ComponentList;

  constructor(
    private loaded: LoadedConfig,
    private readonly log: Logger,
  ) {
    this.config = loaded.config;
    this.bus = new EventBus(log.child({ component: 'bus' }));
    const ctx = (name: string): ComponentContext => ({
      config: this.config,
      bus: this.bus,
      log: log.child({ component: name }),
      clock: systemClock,
      stateDir: this.config.node.stateDir,
      registry: this.registry,
    });
    this.list = new ComponentList(components(ctx, this), this.bus, log);
  }

  async start(signal: AbortSignal): Promise<void> {
    const { freeBytes } = prepareStateDir(this.config.node.stateDir);
    if (freeBytes < 256 * 1024 ** 2)
      this.log.warn({ stateDir: this.config.node.stateDir, freeMiB: Math.round(freeBytes / 1024 ** 2) }, 'little free space for the state folder');
    await this.list.start(signal);
    const { provider, variant } = this.list.status();
    this.log.info({ cameras: this.config.cameras.filter((c) => c.enabled).map((c) => c.name), provider, variant }, 'outpost running');
  }

  stop(): Promise<void> {
    return this.list.stop();
  }

  /** SIGHUP: applies what can change live, keeps restart-only settings at their running values and names them. */
  async reload(next: LoadedConfig): Promise<{ applied: string[]; needRestart: string[] }> {
    const { applied, needRestart, effective } = planReload(this.config, next.config);
    this.config = effective;
    this.loaded = { ...next, config: effective };
    this.log.level = effective.logging.level;
    await this.list.reload(effective);
    if (needRestart.length > 0) this.log.warn({ settings: needRestart }, 'these changed settings take effect after a restart');
    this.log.info({ applied }, 'configuration reloaded');
    return { applied, needRestart };
  }

  health(): Health {
    return this.list.health();
  }

  status(): PageStatus & Record<string, unknown> {
    const parts = this.list.status();
    const node = { node: this.config.node.name, version: VERSION, config: this.loaded.file, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) };
    return {
      ...node,
      healthy: this.health().ok,
      provider: null,
      variant: 'fp32',
      cameras: {},
      latencyMs: {},
      power: null,
      lastResult: null,
      ...parts,
    } as PageStatus & Record<string, unknown>;
  }
}
