import { join } from 'node:path';
import type { Component } from '../core/index.js';
import { OutpostError } from '../errors.js';
import { ORT_VERSION } from './localSession.js';
import type { Logger } from '../log.js';
import { InferenceWorker } from './inferenceWorker.js';
import type { ProviderName } from '../vocabulary.js';
import type { SessionSpec } from './localSession.js';
import type { ProviderAttempt } from './providerSelection.js';
import { probeQuietly } from './quietProbe.js';
import { unreadOptions, type ProviderOptionsByName } from './providerOptions.js';

export interface EngineOptions {
  providers: 'auto' | readonly ProviderName[];
  providerOptions?: ProviderOptionsByName;
  threads: number;
  deviceId: number;
  cacheOptimizedGraphs: boolean;
  /** ORT's CPU arena (runtime.cpuMemArena); off unless set. */
  cpuMemArena?: boolean;
  stateDir: string;
}

const HEAP_SAMPLE_MS = 5000;

/**
 * The inference thread plus the provider it settled on. A provider that fails is logged once with the
 * reason; when none of the requested providers works, CPU is the last resort (every board has one).
 */
export class InferenceEngine implements Component {
  readonly name = 'runtime';
  readonly worker = new InferenceWorker();
  private chosen: ProviderName | null = null;
  attempts: ProviderAttempt[] = [];
  private workerHeap: number | null = null;
  private heapTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: EngineOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.worker.start();
    this.sampleWorkerHeap();
    this.heapTimer = setInterval(() => this.sampleWorkerHeap(), HEAP_SAMPLE_MS).unref();
    const requested = this.opts.providers === 'auto' ? 'auto' : [...this.opts.providers];
    const probe = { deviceId: this.opts.deviceId, providerOptions: this.opts.providerOptions };
    const unread = unreadOptions(this.opts.providerOptions ?? {});
    if (Object.keys(unread).length)
      this.log.warn({ unread }, "runtime.providerOptions names options this onnxruntime-node build's binding does not pass on; they have no effect");
    let { chosen, attempts } = await probeQuietly(requested, probe);
    if (!chosen && !attempts.some((a) => a.provider === 'cpu')) {
      const fallback = await probeQuietly(['cpu'], probe);
      attempts = [...attempts, ...fallback.attempts];
      chosen = fallback.chosen;
      if (chosen) this.log.warn({ requested, fallback: 'cpu' }, `none of the requested providers (${String(requested)}) works here; falling back to cpu`);
    }
    this.attempts = attempts;
    if (!chosen) throw new OutpostError('OUTPOST_E_PROVIDER', 'no execution provider works on this machine, not even cpu; run `outpost doctor`');
    this.chosen = chosen;
    // providers this build does not have are not news on every start; those it has but cannot use are
    const unavailable = Object.fromEntries(attempts.filter((a) => !a.ok && a.compiledIn).map((a) => [a.provider, a.error]));
    const others = Object.keys(unavailable);
    const working = attempts.filter((a) => a.ok).map((a) => a.provider);
    this.log.info(
      { provider: chosen, working, unavailable },
      `using execution provider ${chosen}${others.length ? ` (${others.join(', ')} unavailable here; outpost doctor says why)` : ''}`,
    );
  }

  async stop(): Promise<void> {
    if (this.heapTimer) clearInterval(this.heapTimer);
    await this.worker.stop();
  }

  status(): Record<string, unknown> {
    const m = process.memoryUsage();
    const memory = {
      rssBytes: m.rss,
      mainHeapBytes: m.heapTotal,
      workerHeapBytes: this.workerHeap,
      externalBytes: m.external,
      arrayBuffersBytes: m.arrayBuffers,
    };
    return { provider: this.chosen, providerAttempts: this.attempts, ortVersion: ORT_VERSION, memory };
  }

  /** The worker's heap is asked for every few seconds and reported as last heard (null until then). */
  private sampleWorkerHeap(): void {
    this.worker.heap().then(
      (h) => (this.workerHeap = h.heapTotalBytes),
      () => (this.workerHeap = null), // a stopped worker has no heap to report
    );
  }

  /** Whether a session on `provider` was proven on this machine (a measured pick may use any such one). */
  works(provider: ProviderName): boolean {
    return this.attempts.some((a) => a.provider === provider && a.ok);
  }

  get provider(): ProviderName {
    if (!this.chosen) throw new OutpostError('OUTPOST_E_PROVIDER', 'the inference engine has not started');
    return this.chosen;
  }

  get spec(): SessionSpec {
    return {
      provider: this.provider,
      threads: this.opts.threads,
      deviceId: this.opts.deviceId,
      providerOptions: this.opts.providerOptions,
      cacheDir: this.opts.cacheOptimizedGraphs ? join(this.opts.stateDir, 'ort-cache') : null,
      cpuArena: this.opts.cpuMemArena ?? false,
    };
  }
}
