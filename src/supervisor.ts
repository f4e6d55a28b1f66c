import { Registry } from 'prom-client';
import { systemClock, type Component, type ComponentContext, type Health } from './component.js';
import { ComponentList } from './componentList.js';
import { loadConfig, planReload, type LoadedConfig, type OutpostConfig } from './config/index.js';
import { EventBus } from './eventBus.js';
import type { Logger } from './log.js';
import { prepareStateDir } from './stateDir.js';

/**
 * Runs a list of components as one daemon: checks the state folder, starts the list, reloads it (live settings
 * now, restart-only ones kept at their running values), restarts it on the config file as it is, and reports
 * the merged status and health. What the list holds is the composition root's business (daemon.ts).
 */
export abstract class Supervisor {
  config: Readonly<OutpostConfig>;
  readonly startedAt = Date.now();
  protected readonly bus: EventBus;
  private registry = new Registry();
  list: ComponentList;
  private signal: AbortSignal = new AbortController().signal;

  constructor(
    protected loaded: LoadedConfig,
    protected readonly log: Logger,
  ) {
    this.config = loaded.config;
    this.bus = new EventBus(log.child({ component: 'bus' }));
    this.list = this.build();
  }

  /** The components, in start order, made from one context per component name. */
  protected abstract components(ctx: (name: string) => ComponentContext): Component[];

  private build(): ComponentList {
    const ctx = (name: string): ComponentContext => ({
      ...{ config: this.config, bus: this.bus, clock: systemClock, stateDir: this.config.node.stateDir, registry: this.registry },
      log: this.log.child({ component: name }),
    });
    return new ComponentList(this.components(ctx), this.bus, this.log);
  }

  async start(signal: AbortSignal): Promise<void> {
    this.signal = signal;
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

  reloadFromFile(): Promise<{ applied: string[]; needRestart: string[] }> {
    return this.reload(loadConfig(this.loaded.file));
  }

  /** Every component stopped and started again on the configuration file as it is now (restart-only settings too). */
  async restart(): Promise<void> {
    this.log.warn('restarting every component on the configuration file as it is now');
    const next = loadConfig(this.loaded.file);
    await this.list.stop();
    [this.loaded, this.config, this.registry] = [next, next.config, new Registry()];
    this.log.level = next.config.logging.level;
    this.list = this.build();
    await this.start(this.signal);
  }

  health(): Health {
    return this.list.health();
  }

  /** The node's own fields, then what every component reports. */
  protected mergedStatus(version: string): Record<string, unknown> {
    const node = { node: this.config.node.name, version, config: this.loaded.file, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) };
    return {
      ...node,
      healthy: this.health().ok,
      provider: null,
      variant: 'fp32',
      cameras: {},
      latencyMs: {},
      power: null,
      lastResult: null,
      ...this.list.status(),
    };
  }
}
