import { Registry } from 'prom-client';
import { systemClock, type Component, type ComponentContext, type ContextFor, type Health } from './component.js';
import { ComponentList } from './componentList.js';
import { ConfigError, formatProblem, loadConfig, planReload, type LoadedConfig, type ResolvedConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import { EventBus } from './eventBus.js';
import { registerUnhandledCounter } from '../lastResort.js';
import type { Logger } from '../log.js';
import { prepareStateDir } from '../stateDir.js';
import { StateLock } from '../stateLock.js';

/**
 * Runs a list of components as one daemon: checks the state folder, starts the list, reloads it (live settings
 * now, restart-only ones kept at their running values), restarts it on the config file as it is, and reports
 * the merged status and health. What the list holds is the composition root's business (daemon.ts).
 */
export abstract class Supervisor {
  config: Readonly<ResolvedConfig>;
  readonly startedAt = Date.now();
  protected readonly bus: EventBus;
  private registry = new Registry();
  list: ComponentList;
  private signal: AbortSignal = new AbortController().signal;
  private lock: { dir: string; held: StateLock } | null = null;
  /** Called when a restart leaves no component running: the entry exits non-zero so that systemd starts it again. */
  onFatal: (err: unknown) => void = () => undefined;

  constructor(
    protected loaded: LoadedConfig,
    protected readonly log: Logger,
  ) {
    this.config = loaded.config;
    this.bus = new EventBus(log.child({ component: 'bus' }));
    this.list = this.build();
  }

  /** The components, in start order, made from one context per component name. */
  protected abstract components(ctx: ContextFor): Component[];

  private build(): ComponentList {
    registerUnhandledCounter(this.registry);
    const ctx = (name: string): ComponentContext => ({
      ...{ config: this.config, bus: this.bus, clock: systemClock, stateDir: this.config.node.stateDir, registry: this.registry },
      log: this.log.child({ component: name }),
    });
    return new ComponentList(this.components(ctx), this.bus, this.log);
  }

  async start(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    const { freeBytes } = prepareStateDir(this.config.node.stateDir);
    this.lockStateDir(this.config.node.stateDir);
    if (freeBytes < 256 * 1024 ** 2)
      this.log.warn({ stateDir: this.config.node.stateDir, freeMiB: Math.round(freeBytes / 1024 ** 2) }, 'little free space for the state folder');
    await this.list.start(signal);
    const { provider, variant } = this.list.status();
    this.log.info({ cameras: this.config.cameras.filter((c) => c.enabled).map((c) => c.name), provider, variant }, 'outpost running');
  }

  async stop(): Promise<void> {
    await this.list.stop();
    this.lock?.held.release();
    this.lock = null;
  }

  /** One daemon per state folder; a restart onto another folder moves the lock there. */
  private lockStateDir(dir: string): void {
    if (this.lock?.dir === dir) return;
    const held = StateLock.acquire(dir);
    this.lock?.held.release();
    this.lock = { dir, held };
  }

  /** The problems of the configuration file as it is now (`FILE:LINE:COL: path: message`); none when it is valid. */
  configProblems(): string[] {
    try {
      loadConfig(this.loaded.file);
      return [];
    } catch (err) {
      return err instanceof ConfigError ? err.problems.map(formatProblem) : [errorMessage(err)];
    }
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
    const next = loadConfig(this.loaded.file); // a broken file throws here, before anything stops
    this.log.warn('restarting every component on the configuration file as it is now');
    try {
      await this.list.stop();
      [this.loaded, this.config, this.registry] = [next, next.config, new Registry()];
      this.log.level = next.config.logging.level;
      this.list = this.build();
      await this.start(this.signal);
    } catch (err) {
      this.log.fatal({ err: errorMessage(err) }, 'restart failed: the daemon runs no components');
      this.onFatal(err);
    }
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
