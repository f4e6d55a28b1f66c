import type { Component, Health } from './component.js';
import type { ResolvedConfig } from '../config/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import type { EventBus } from './eventBus.js';
import { inComponent } from '../lastResort.js';
import type { Logger } from '../log.js';

/**
 * Runs the daemon's components: started in list order, stopped in reverse over those that actually started.
 * stop() during start() waits for the component being started, then stops it too, so nothing started before a
 * failure or a SIGTERM is left running. Each component's bus listeners are removed when it stops.
 */
export class ComponentList {
  private readonly started: Component[] = [];
  private starting: { component: Component; done: Promise<unknown> } | null = null;
  private stopping = false;

  constructor(
    private readonly components: readonly Component[],
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {
    const names = components.map((c) => c.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new OutpostError('OUTPOST_E_INTERNAL', `two components are named ${twice}`);
  }

  async start(signal: AbortSignal): Promise<void> {
    for (const component of this.components) {
      if (signal.aborted || this.stopping) throw new OutpostError('OUTPOST_E_INTERNAL', `start-up cancelled before ${component.name}`);
      const done = inComponent(component.name, () => component.start(signal)); // what it starts carries its name
      this.starting = { component, done: done.catch(() => undefined) };
      try {
        await done;
      } catch (err) {
        this.log.error({ component: component.name, err: errorMessage(err) }, 'component failed to start');
        this.started.push(component); // stop() must release what it took before failing
        throw err;
      } finally {
        this.starting = null;
      }
      this.started.push(component);
    }
  }

  /** Reverse order; one component failing to stop is logged and does not keep the others running. */
  async stop(): Promise<void> {
    this.stopping = true;
    const inFlight = this.starting;
    if (inFlight) {
      await inFlight.done;
      if (!this.started.includes(inFlight.component)) this.started.push(inFlight.component);
    }
    for (const component of this.started.splice(0).reverse()) {
      try {
        await component.stop();
      } catch (err) {
        this.log.error({ component: component.name, err: errorMessage(err) }, 'component failed to stop');
      }
      this.bus.off(component.name);
    }
  }

  async reload(config: Readonly<ResolvedConfig>): Promise<void> {
    for (const component of this.started) {
      try {
        await component.reload?.(config);
      } catch (err) {
        this.log.error({ component: component.name, err: errorMessage(err) }, 'component could not apply the reloaded configuration');
      }
    }
  }

  /** Every started component's status, merged into one object (nested objects merge, so two parts can describe one camera). */
  status(): Record<string, unknown> {
    return this.started.reduce<Record<string, unknown>>((acc, c) => mergeDeep(acc, c.status?.() ?? {}), {});
  }

  /** Healthy when every component that reports health is; the reasons of those that are not. */
  health(): Health {
    const reports = this.started.map((c) => ({ name: c.name, h: c.health?.() ?? null })).filter((r) => r.h !== null) as { name: string; h: Health }[];
    if (this.started.length < this.components.length) return { ok: false, reason: 'starting' };
    const bad = reports.filter((r) => !r.h.ok);
    if (bad.length > 0) return { ok: false, reason: bad.map((r) => `${r.name}: ${r.h.reason}`).join('; ') };
    return { ok: true, reason: reports.map((r) => r.h.reason).join('; ') || 'running' };
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

function mergeDeep(into: Record<string, unknown>, from: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    into[k] = isPlainObject(cur) && isPlainObject(v) ? mergeDeep({ ...cur }, v) : v;
  }
  return into;
}
