import { join } from 'node:path';
import type { Component } from '../component.js';
import { OutpostError } from '../errors.js';
import { ORT_VERSION } from './localSession.js';
import type { Logger } from '../log.js';
import { InferenceWorker } from './inferenceWorker.js';
import type { ProviderName } from '../vocabulary.js';
import type { SessionSpec } from './localSession.js';
import type { ProviderAttempt } from './providerSelection.js';

export interface EngineOptions {
  providers: 'auto' | readonly ProviderName[];
  threads: number;
  deviceId: number;
  cacheOptimizedGraphs: boolean;
  stateDir: string;
}

/**
 * The inference thread plus the provider it settled on. A provider that fails is logged once with the
 * reason; when none of the requested providers works, CPU is the last resort (every board has one).
 */
export class InferenceEngine implements Component {
  readonly name = 'runtime';
  readonly worker = new InferenceWorker();
  private chosen: ProviderName | null = null;
  attempts: ProviderAttempt[] = [];

  constructor(
    private readonly opts: EngineOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.worker.start();
    const requested = this.opts.providers === 'auto' ? 'auto' : [...this.opts.providers];
    let { chosen, attempts } = await this.worker.choose(requested, this.opts.deviceId);
    if (!chosen && !attempts.some((a) => a.provider === 'cpu')) {
      const fallback = await this.worker.choose(['cpu'], this.opts.deviceId);
      attempts = [...attempts, ...fallback.attempts];
      chosen = fallback.chosen;
      if (chosen) this.log.warn({ requested, fallback: 'cpu' }, `none of the requested providers (${String(requested)}) works here; falling back to cpu`);
    }
    for (const a of attempts.filter((x) => !x.ok)) this.log.warn({ provider: a.provider, reason: a.error }, `execution provider ${a.provider} unavailable`);
    this.attempts = attempts;
    if (!chosen) throw new OutpostError('OUTPOST_E_PROVIDER', 'no execution provider works on this machine, not even cpu; run `outpost doctor`');
    this.chosen = chosen;
    this.log.info({ provider: chosen }, `using execution provider ${chosen}`);
  }

  async stop(): Promise<void> {
    await this.worker.stop();
  }

  status(): Record<string, unknown> {
    return { provider: this.chosen, providerAttempts: this.attempts, ortVersion: ORT_VERSION };
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
      cacheDir: this.opts.cacheOptimizedGraphs ? join(this.opts.stateDir, 'ort-cache') : null,
    };
  }
}
