import type { Component, ComponentContext } from '../core/index.js';
import type { SystemdNotifier } from './systemdNotifier.js';
import { errorMessage } from '../errors.js';
import { guarded } from '../guarded.js';

/** How the cameras are: `dead`, enabled unpaused cameras whose frame loop ended with an error. */
export interface CameraLiveness {
  cameras: number;
  dead: string[];
}

/** Without any result this long after start, READY=1 is sent anyway (cameras away, a drop folder empty). */
const READY_ANYWAY_MS = 20_000;
/** STATUS= lines this often when systemd asks for no watchdog. */
const STATUS_EVERY_MS = 10_000;

interface Counts {
  received: number;
  /** frames that left: finished, or dropped (superseded, over the fps cap) */
  done: number;
  /** frames that went through: a result, a failure, a motion-gate skip */
  finished: number;
  results: number;
  skipped: number;
}

/**
 * The daemon as systemd sees it (`Type=notify`): READY=1 with the first result (or READY_ANYWAY_MS after
 * start without one, so a camera that is away at boot does not fail the start), `WATCHDOG=1` every half
 * `$WATCHDOG_USEC` only while the pipeline makes progress, and `STATUS=` with fps and the governor's level.
 * Progress: a result or a motion-gate skip since the last ping; or nothing waiting (quiet cameras are not a
 * hang). No ping when frames waited a whole interval and none finished (a hung inference thread) or when a
 * camera's frame loop died: systemd then restarts the service.
 */
export class ServiceWatchdog implements Component {
  readonly name = 'service';
  private timer: NodeJS.Timeout | null = null;
  private readyTimer: NodeJS.Timeout | null = null;
  private ready = false;
  private level = 'nominal';
  private readonly now: Counts = { received: 0, done: 0, finished: 0, results: 0, skipped: 0 };
  private last: Counts = { ...this.now };
  private lastTickAt = 0;
  pings = 0;
  withheld = 0;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly notifier: SystemdNotifier,
    private readonly cameras: () => CameraLiveness,
    /** `$WATCHDOG_USEC` for this process (0: none) */
    private readonly watchdogUsec = watchdogUsecFromEnv(),
  ) {}

  async start(): Promise<void> {
    const bus = this.ctx.bus;
    bus.on('frame.received', this.name, () => this.now.received++);
    const finished = () => (this.now.finished++, this.now.done++);
    bus.on('frame.skipped', this.name, () => (this.now.skipped++, finished()));
    bus.on('frame.dropped', this.name, () => this.now.done++);
    bus.on('frame.failed', this.name, finished);
    bus.on('result', this.name, () => {
      this.now.results++;
      finished();
      if (!this.ready) this.markReady('first result');
    });
    bus.on('governor.policy', this.name, ({ level }) => (this.level = level));
    if (this.cameras().cameras === 0) this.markReady('no cameras');
    else this.readyTimer = setTimeout(() => this.markReady('no result yet'), READY_ANYWAY_MS).unref();
    this.lastTickAt = performance.now();
    const every = this.watchdogUsec > 0 ? this.watchdogUsec / 2000 : STATUS_EVERY_MS;
    this.timer = setInterval(
      guarded(
        () => this.tick(),
        (err) => this.ctx.log.warn({ err: errorMessage(err) }, 'watchdog tick failed; trying again on the next one'),
      ),
      every,
    ).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.ctx.bus.off(this.name);
  }

  status(): Record<string, unknown> {
    return {
      service: { notify: this.notifier.enabled, ready: this.ready, watchdogSeconds: this.watchdogUsec / 1e6, pings: this.pings, withheld: this.withheld },
    };
  }

  /** Why the watchdog is withheld now, or null while the pipeline makes progress. */
  stalled(): string | null {
    const { dead } = this.cameras();
    if (dead.length > 0) return `the frame loop of ${dead.join(', ')} ended`;
    const progressed = this.now.results > this.last.results || this.now.skipped > this.last.skipped;
    const waitingBefore = this.last.received - this.last.done;
    if (!progressed && waitingBefore > 0 && this.now.finished === this.last.finished)
      return `${waitingBefore} frames waited a whole interval and none finished`;
    return null;
  }

  private markReady(why: string): void {
    if (this.ready) return;
    this.ready = true;
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.notifier.send({ READY: 1, STATUS: `running (${why})` });
    this.ctx.log.info({ why, watchdogSeconds: this.watchdogUsec / 1e6 }, 'ready');
  }

  private tick(): void {
    const seconds = (performance.now() - this.lastTickAt) / 1000;
    const fps = (this.now.results - this.last.results) / Math.max(seconds, 1e-3);
    const why = this.stalled();
    const status = `${fps.toFixed(1)} fps, level ${this.level}${why ? `; stalled: ${why}` : ''}`;
    if (this.watchdogUsec > 0 && why === null) {
      this.notifier.send({ WATCHDOG: 1, STATUS: status });
      this.pings++;
    } else {
      this.notifier.send({ STATUS: status });
      if (why !== null) {
        this.withheld++;
        this.ctx.log.warn({ why }, 'pipeline stalled: watchdog ping withheld');
      }
    }
    this.last = { ...this.now };
    this.lastTickAt = performance.now();
  }
}

/** `$WATCHDOG_USEC` when it is meant for this process (`$WATCHDOG_PID` unset or ours), else 0. */
function watchdogUsecFromEnv(): number {
  const pid = process.env.WATCHDOG_PID;
  if (pid && Number(pid) !== process.pid) return 0;
  const usec = Number(process.env.WATCHDOG_USEC ?? 0);
  return Number.isFinite(usec) && usec > 0 ? usec : 0;
}
