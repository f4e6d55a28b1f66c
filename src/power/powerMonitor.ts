import { Counter, Gauge } from 'prom-client';
import type { Component, ComponentContext, ContextFor } from '../core/index.js';
import type { LevelPolicy, OutpostConfig, PowerConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import { GOVERNOR_LEVELS, POWER_STATES } from '../vocabulary.js';
import { BoardSensors, type SensorSnapshot } from './boardSensors.js';
import { Governor, type GovernorState } from './governor.js';
import type { CommandRunner } from './sysfs.js';
import { guarded } from '../guarded.js';

/**
 * Reads the board's sensors on an interval and feeds the governor. Every transition goes on the bus
 * (`governor.transition`), and so does the level's policy (`governor.policy`: at start, on each transition and
 * when a reload changes it) for the parts that act on it: precision, fps caps, offload bias, optional jobs.
 */
export class PowerMonitor implements Component {
  readonly name = 'power';
  private cfg: PowerConfig;
  private readonly governor: Governor;
  private sensors: BoardSensors;
  private timer: NodeJS.Timeout | null = null;
  private reading = false;
  private last: SensorSnapshot | null = null;
  private readErrors = 0;
  private transitions: Counter<'from' | 'to'> | null = null;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly run?: CommandRunner,
  ) {
    this.cfg = ctx.config.power;
    this.governor = new Governor(this.cfg, ctx.clock.now());
    this.sensors = this.makeSensors();
  }

  async start(): Promise<void> {
    this.registerMetrics();
    await this.tick();
    const s = this.last;
    this.ctx.log.info(
      { board: s?.board, temperature: s?.temperature?.celsius ?? null, source: s?.temperature?.source ?? null, powerState: s?.powerState, missing: s?.missing },
      'power monitor started',
    );
    this.publishPolicy();
    this.timer = setInterval(
      guarded(
        () => this.tick(),
        (err) => this.ctx.log.warn({ err: errorMessage(err) }, 'power reading failed; trying again on the next tick'),
      ),
      this.cfg.intervalSeconds * 1000,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  reload(config: Readonly<OutpostConfig>): void {
    this.cfg = config.power;
    this.governor.configure(this.cfg);
    this.sensors = this.makeSensors(); // lowBatteryPercent lives in the sensors' power-state reading
    this.publishPolicy();
  }

  get policy(): LevelPolicy {
    return this.cfg.policy[this.governor.state.level];
  }

  /** What the governor acts on now: level, temperature and power state (null before the first reading). */
  governorState(): GovernorState {
    return this.governor.state;
  }

  status(): Record<string, unknown> {
    const s = this.last;
    const sensors = s ? { board: s.board, temperature: s.temperature, powerState: s.powerState, throttle: s.throttle, missing: s.missing } : null;
    return { power: { governor: this.governor.state, policy: this.policy, sensors, readErrors: this.readErrors } };
  }

  private registerMetrics(): void {
    const registers = [this.ctx.registry];
    const state = () => this.governor.state;
    this.transitions = new Counter({ name: 'outpost_governor_transitions_total', help: 'Governor level changes', labelNames: ['from', 'to'], registers });
    new Gauge({
      name: 'outpost_governor_level',
      help: 'Governor level: 0 nominal, 1 warm, 2 hot, 3 critical',
      registers,
      collect() {
        this.set(GOVERNOR_LEVELS.indexOf(state().level));
      },
    });
    const last = () => this.last;
    new Gauge({
      name: 'outpost_board_temperature_celsius',
      help: 'The temperature the governor acts on, by sensor (absent when the board has none)',
      labelNames: ['sensor'],
      registers,
      collect() {
        this.reset();
        const t = last()?.temperature;
        if (t) this.set({ sensor: t.source }, t.celsius);
      },
    });
    new Gauge({
      name: 'outpost_power_state',
      help: 'Power state (value 1 on the current one)',
      labelNames: ['state'],
      registers,
      collect() {
        for (const p of POWER_STATES) this.set({ state: p }, p === state().powerState ? 1 : 0);
      },
    });
  }

  private makeSensors(): BoardSensors {
    return new BoardSensors({ root: this.cfg.sysfsRoot, run: this.run, lowBatteryPercent: this.cfg.lowBatteryPercent, now: () => this.ctx.clock.now() });
  }

  private publishPolicy(): void {
    this.ctx.bus.emit('governor.policy', { level: this.governor.state.level, policy: this.policy });
  }

  private async tick(): Promise<void> {
    if (this.reading) return; // a slow read (vcgencmd, nvpmodel) never piles up
    this.reading = true;
    try {
      const snapshot = await this.sensors.read();
      this.last = snapshot;
      const t = this.governor.update(snapshot);
      if (t) {
        const policy = this.cfg.policy[t.to];
        this.ctx.log.warn(
          {
            from: t.from,
            to: t.to,
            reason: t.reason,
            temperatureC: t.temperatureC,
            trendCPerMin: t.trendCPerMin,
            powerState: t.powerState,
            throttle: snapshot.throttle?.now ?? null,
            policy,
          },
          `governor ${t.from} → ${t.to}: ${t.reason}`,
        );
        this.transitions?.inc({ from: t.from, to: t.to });
        this.ctx.bus.emit('governor.transition', { from: t.from, to: t.to, reason: t.reason, temperatureC: t.temperatureC, powerState: t.powerState });
        this.publishPolicy();
      }
    } catch (err) {
      this.readErrors++;
      this.ctx.log.error({ err: errorMessage(err) }, 'reading the board sensors failed');
    } finally {
      this.reading = false;
    }
  }
}

/** The power feature, when `power.enabled`: the monitor and its governor. */
export const powerComponents = (ctx: ContextFor): Component[] => (ctx('power').config.power.enabled ? [new PowerMonitor(ctx('power'))] : []);
