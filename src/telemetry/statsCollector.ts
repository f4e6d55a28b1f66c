import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Component, ComponentContext, Health } from '../core/index.js';
import type { OutpostConfig } from '../config/index.js';
import { RunningStats } from './runningStats.js';
import { errorMessage } from '../errors.js';
import { guarded } from '../guarded.js';

const CPU_SAMPLE_MS = 5000;
/** RSS, or null when the kernel will not say (EMFILE: every descriptor taken): a status without it beats no status. */
function residentBytes(): number | null {
  try {
    return process.memoryUsage.rss();
  } catch {
    return null;
  }
}

const ms = (ns: number) => Math.round((Number.isNaN(ns) ? 0 : ns / 1e6) * 100) / 100;

/**
 * Per-camera counters and fps, latency percentiles per stage, the last result, event-loop delay, memory and CPU:
 * the figures /status and MQTT telemetry share. Healthy while results keep coming (`status.staleAfterSeconds`).
 */
export class StatsCollector implements Component {
  readonly name = 'stats';
  private readonly stats: RunningStats;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private staleMs: number;
  private cpu = { at: 0, usage: process.cpuUsage(), percent: 0 };
  private cpuTimer: NodeJS.Timeout | null = null;

  constructor(private readonly ctx: ComponentContext) {
    this.stats = new RunningStats(() => ctx.clock.now());
    this.staleMs = ctx.config.status.staleAfterSeconds * 1000;
  }

  async start(): Promise<void> {
    this.loopDelay.enable();
    this.stats.subscribe(this.ctx.bus);
    this.cpu = { at: performance.now(), usage: process.cpuUsage(), percent: 0 };
    const sample = guarded(
      () => this.sampleCpu(),
      (err) => this.ctx.log.warn({ err: errorMessage(err) }, 'CPU sample failed; trying again on the next tick'),
    );
    this.cpuTimer = setInterval(sample, CPU_SAMPLE_MS).unref();
  }

  async stop(): Promise<void> {
    this.loopDelay.disable();
    if (this.cpuTimer) clearInterval(this.cpuTimer);
  }

  reload(config: Readonly<OutpostConfig>): void {
    this.staleMs = config.status.staleAfterSeconds * 1000;
  }

  health(): Health {
    const last = this.stats.lastResultAt;
    if (last === null && !this.ctx.config.cameras.some((c) => c.enabled)) return { ok: true, reason: 'no cameras here: no frames expected' }; // an offload helper
    if (last === null) return { ok: false, reason: 'no frame processed yet' };
    const age = this.ctx.clock.now() - last;
    return age <= this.staleMs ? { ok: true, reason: `last result ${age} ms ago` } : { ok: false, reason: `no result for ${Math.round(age / 1000)} s` };
  }

  status(): Record<string, unknown> {
    const snap = this.stats.snapshot();
    return {
      cameras: snap.cameras,
      latencyMs: snap.latencyMs,
      lastResult: snap.lastResult,
      eventLoopDelayMs: { p50: ms(this.loopDelay.percentile(50)), p95: ms(this.loopDelay.percentile(95)), max: ms(this.loopDelay.max) },
      rssBytes: residentBytes(),
      cpuPercent: this.cpu.percent,
    };
  }

  /** Process CPU over the last sample period (all threads, ORT's pool included), as % of one core. */
  private sampleCpu(): void {
    const now = performance.now();
    const used = process.cpuUsage(this.cpu.usage);
    const wallUs = (now - this.cpu.at) * 1000;
    this.cpu = { at: now, usage: process.cpuUsage(), percent: wallUs > 0 ? Math.round(((used.user + used.system) / wallUs) * 1000) / 10 : 0 };
  }
}
