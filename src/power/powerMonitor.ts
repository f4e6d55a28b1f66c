import type { LevelPolicy, PowerConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { BoardSensors, type SensorSnapshot } from './boardSensors.js';
import { Governor, type GovernorState, type Transition } from './governor.js';
import type { CommandRunner } from './sysfs.js';

export interface PowerMonitorDeps {
  log: Logger;
  onTransition: (t: Transition, policy: LevelPolicy) => void;
  run?: CommandRunner;
  now?: () => number;
}

/** Reads the board's sensors on an interval and feeds the governor; the daemon applies each level's policy. */
export class PowerMonitor {
  private readonly governor: Governor;
  private sensors: BoardSensors;
  private timer: NodeJS.Timeout | null = null;
  private reading = false;
  private last: SensorSnapshot | null = null;
  private readErrors = 0;

  constructor(
    private cfg: PowerConfig,
    private readonly deps: PowerMonitorDeps,
  ) {
    this.governor = new Governor(cfg, (deps.now ?? Date.now)());
    this.sensors = new BoardSensors({ root: cfg.sysfsRoot, run: deps.run, lowBatteryPercent: cfg.lowBatteryPercent });
  }

  async start(): Promise<void> {
    await this.tick();
    const s = this.last;
    this.deps.log.info(
      { board: s?.board, temperature: s?.temperature?.celsius ?? null, source: s?.temperature?.source ?? null, powerState: s?.powerState, missing: s?.missing },
      'power monitor started',
    );
    this.timer = setInterval(() => void this.tick(), this.cfg.intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  configure(cfg: PowerConfig): void {
    this.cfg = cfg;
    this.governor.configure(cfg);
  }

  get policy(): LevelPolicy {
    return this.cfg.policy[this.governor.state.level];
  }

  status(): {
    governor: GovernorState;
    policy: LevelPolicy;
    sensors: Pick<SensorSnapshot, 'board' | 'temperature' | 'powerState' | 'throttle' | 'missing'> | null;
    readErrors: number;
  } {
    const s = this.last;
    return {
      governor: this.governor.state,
      policy: this.policy,
      sensors: s ? { board: s.board, temperature: s.temperature, powerState: s.powerState, throttle: s.throttle, missing: s.missing } : null,
      readErrors: this.readErrors,
    };
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
        this.deps.log.warn(
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
        this.deps.onTransition(t, policy);
      }
    } catch (err) {
      this.readErrors++;
      this.deps.log.error({ err: errorMessage(err) }, 'reading the board sensors failed');
    } finally {
      this.reading = false;
    }
  }
}
