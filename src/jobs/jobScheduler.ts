import { createTask, type ScheduledTask } from 'node-cron';
import { Counter } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import type { JobsConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import { logRejection } from '../lastResort.js';

export interface JobDefinition {
  name: keyof JobsConfig;
  /** Optional work waits while the governor's policy says `pauseOptionalJobs` (a hot or critical board). */
  optional: boolean;
  run(signal: AbortSignal): Promise<unknown>;
}

export type JobOutcome = 'ok' | 'failed' | 'skipped-overlap' | 'skipped-paused';

/**
 * Scheduled work on node-cron: each job on its cron expression, never two runs of one job at once (an overlap is
 * skipped and counted), optional jobs skipped while the governor pauses them, each run logged with its duration
 * and counted by outcome. `run()` starts a job now, under the same rules (the `rebenchmark` command uses it).
 */
export class JobScheduler implements Component {
  readonly name = 'jobs';
  private readonly tasks: ScheduledTask[] = [];
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly abort = new AbortController();
  private paused = false;
  private runs: Counter<'job' | 'outcome'> | null = null;
  private readonly last: Record<string, { outcome: JobOutcome; at: string; ms: number; result?: unknown }> = {};

  constructor(
    private readonly ctx: ComponentContext,
    private readonly jobs: readonly JobDefinition[],
  ) {}

  async start(): Promise<void> {
    this.runs = new Counter({
      name: 'outpost_job_runs_total',
      help: 'Scheduled job runs, by outcome',
      labelNames: ['job', 'outcome'],
      registers: [this.ctx.registry],
    });
    this.ctx.bus.on('governor.policy', this.name, ({ policy }) => (this.paused = policy.pauseOptionalJobs));
    this.schedule(this.ctx.config.jobs);
  }

  async stop(): Promise<void> {
    this.unschedule();
    this.abort.abort();
    await Promise.allSettled(this.running.values());
  }

  status(): Record<string, unknown> {
    return { jobs: { paused: this.paused, running: [...this.running.keys()], last: this.last } };
  }

  /** Runs a job now (unless it is running already or paused); resolves with its result or throws its error. */
  async run(name: string): Promise<{ outcome: JobOutcome; result?: unknown }> {
    const job = this.jobs.find((j) => j.name === name);
    if (!job) throw new Error(`no job ${name}`);
    if (this.abort.signal.aborted) throw new Error('the job scheduler has stopped');
    if (this.running.has(name)) return this.finish(job, 'skipped-overlap', 0);
    if (job.optional && this.paused) return this.finish(job, 'skipped-paused', 0);
    const started = performance.now();
    const run = job.run(this.abort.signal);
    this.running.set(name, run);
    try {
      return this.finish(job, 'ok', performance.now() - started, await run);
    } catch (err) {
      this.finish(job, 'failed', performance.now() - started, undefined, err);
      throw err;
    } finally {
      this.running.delete(name);
    }
  }

  private finish(job: JobDefinition, outcome: JobOutcome, ms: number, result?: unknown, err?: unknown): { outcome: JobOutcome; result?: unknown } {
    this.runs?.inc({ job: job.name, outcome });
    this.last[job.name] = { outcome, at: new Date().toISOString(), ms: Math.round(ms), ...(result !== undefined ? { result } : {}) };
    const log = { job: job.name, outcome, ms: Math.round(ms), ...(err ? { err: errorMessage(err) } : {}) };
    if (outcome === 'failed') this.ctx.log.error(log, 'job failed');
    else if (outcome === 'ok') this.ctx.log.info(log, 'job done');
    else this.ctx.log.info(log, 'job skipped');
    return { outcome, result };
  }

  private schedule(config: JobsConfig): void {
    for (const job of this.jobs) {
      const settings = config[job.name];
      if (!settings.enabled) continue;
      // our own overlap guard counts the skip; node-cron's timer is unref'd so it never holds the process open
      const task = createTask(settings.schedule, () => this.run(job.name).catch(() => undefined), { name: job.name, unref: true });
      Promise.resolve(task.start()).catch(logRejection(this.ctx.log, `scheduling job ${job.name}`));
      this.tasks.push(task);
    }
  }

  private unschedule(): void {
    for (const t of this.tasks.splice(0)) Promise.resolve(t.destroy()).catch(logRejection(this.ctx.log, 'unscheduling a job'));
  }
}
