import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CalibrationRecorder, createSource, MotionGate } from './camera/index.js';
import { isLiveSetting, type LevelPolicy, type LoadedConfig, type OutpostConfig } from './config/index.js';
import { errorMessage } from './errors.js';
import { EventBus } from './eventBus.js';
import type { Logger } from './log.js';
import { FrameScheduler, loadModelVariants, startPipelines, summariseOutput, variantFiles, type StagedPipeline } from './pipeline/index.js';
import { buildInBackground, InferenceEngine, ModelVariants, ORT_VERSION, variantsDir, type Rung } from './runtime/index.js';
import { PowerMonitor, type Transition } from './power/index.js';
import { OutpostMetrics, RunningStats, StatusServer, renderStatusPage, type PageStatus } from './telemetry/index.js';

export const VERSION = '0.1.0';

interface Started {
  power: PowerMonitor;
  engine: InferenceEngine;
  pipelines: Map<string, StagedPipeline>;
  scheduler: FrameScheduler;
  server: StatusServer | null;
}

/**
 * The composition root: builds every component, starts them in dependency order (engine → pipelines →
 * cameras → telemetry) and stops them in reverse. Start-up can be cancelled by a signal.
 */
export class Daemon {
  private config: OutpostConfig;
  private readonly bus: EventBus;
  private readonly stats = new RunningStats();
  private readonly metrics = new OutpostMetrics();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private readonly startedAt = Date.now();
  private parts: Partial<Started> = {};
  private readonly variants = new Map<string, ModelVariants | null>();
  private readonly servingFiles: Record<string, string> = {};
  private rung: Rung = 'fp32';
  private threads: number | undefined;
  private swaps: Promise<void> = Promise.resolve();
  /** camera → calibration recorders waiting for its frames */
  private readonly recorders = new Map<string, CalibrationRecorder[]>();
  private readonly builds = new AbortController();

  constructor(
    private loaded: LoadedConfig,
    private readonly log: Logger,
  ) {
    this.config = loaded.config;
    this.bus = new EventBus(log.child({ component: 'bus' }));
  }

  async start(signal: AbortSignal): Promise<void> {
    const cfg = this.config;
    const step = (what: string) => {
      if (signal.aborted) throw new Error(`start-up cancelled before ${what}`);
    };
    mkdirSync(cfg.node.stateDir, { recursive: true });
    this.loopDelay.enable();
    this.metrics.start();
    this.stats.subscribe(this.bus);
    this.metrics.subscribe(this.bus);
    this.bus.on('result', 'result-log', (r) => {
      if (this.config.logging.results)
        this.log.info({ camera: r.camera, frame: r.frameId, text: summariseOutput(r.output), truth: r.truth, ms: Math.round(r.timings.totalMs) }, 'result');
    });

    step('the inference engine');
    const { runtime } = cfg;
    const engine = new InferenceEngine({ ...runtime, stateDir: cfg.node.stateDir }, this.log.child({ component: 'runtime' }));
    this.parts.engine = engine;
    await engine.start();
    this.metrics.setProvider(engine.provider, 'fp32');

    step('loading models');
    const cameras = cfg.cameras.filter((c) => c.enabled);
    this.loadVariants();
    this.parts.pipelines = await startPipelines(
      cfg,
      engine,
      this.log.child({ component: 'pipeline' }),
      cameras.map((c) => c.pipeline),
      undefined,
      this.servingFiles,
    );

    step('starting cameras');
    const scheduler = new FrameScheduler(
      cameras.map((c) => ({
        source: createSource(c, { log: this.log.child({ component: 'camera' }) }),
        pipeline: this.parts.pipelines!.get(c.pipeline)!,
        maxFps: c.maxFps,
        weight: c.weight,
        gate: c.motion.enabled ? new MotionGate(c.motion) : undefined,
      })),
      {
        bus: this.bus,
        log: this.log.child({ component: 'scheduler' }),
        provider: engine.provider,
        inflight: runtime.inflightFrames,
        onFrame: (f) => this.recorders.get(f.camera)?.forEach((r) => r.offer(f)),
      },
    );
    this.parts.scheduler = scheduler;
    this.metrics.watchSources(() => scheduler.sourceHealth());
    scheduler.start();

    if (cfg.power.enabled) {
      step('the power monitor');
      const power = new PowerMonitor(cfg.power, { log: this.log.child({ component: 'power' }), onTransition: (t, policy) => this.applyPolicy(t, policy) });
      this.parts.power = power;
      await power.start();
      this.applyPolicy(null, power.policy);
      this.metrics.watchGovernor(() => this.parts.power?.status().governor ?? null);
    }

    this.buildMissingVariants();

    if (cfg.status.enabled) {
      step('the status server');
      const server = new StatusServer({
        host: cfg.status.host,
        port: cfg.status.port,
        status: () => this.status(),
        page: () => renderStatusPage(this.status()),
        healthy: () => this.health(),
        registry: this.metrics.registry,
        log: this.log.child({ component: 'status' }),
      });
      this.parts.server = server;
      await server.start();
    }
    this.log.info({ cameras: cameras.map((c) => c.name), provider: engine.provider, ort: ORT_VERSION }, 'outpost running');
  }

  /** Reverse order; each component's failure is logged and does not stop the others from stopping. */
  async stop(): Promise<void> {
    const { server, scheduler, pipelines, engine, power } = this.parts;
    const attempt = async (name: string, fn: () => Promise<void> | void) => {
      try {
        await fn();
      } catch (err) {
        this.log.error({ component: name, err: errorMessage(err) }, 'stop failed');
      }
    };
    this.builds.abort();
    await attempt('power', () => power?.stop());
    await attempt('scheduler', () => scheduler?.stop());
    await attempt('status', () => server?.stop());
    await attempt('swaps', () => this.swaps);
    await attempt('pipelines', async () => void (await Promise.all([...(pipelines?.values() ?? [])].map((p) => p.stop()))));
    await attempt('runtime', () => engine?.stop());
    this.metrics.stop();
    this.loopDelay.disable();
    this.parts = {};
  }

  /** SIGHUP: applies what can change live, names what needs a restart. */
  reload(next: LoadedConfig): { applied: string[]; needRestart: string[] } {
    const changed = diffPaths(this.config, next.config);
    const applied = changed.filter(isLiveSetting);
    const needRestart = changed.filter((p) => !isLiveSetting(p));
    this.config = next.config;
    this.loaded = next;
    this.log.level = next.config.logging.level;
    this.parts.power?.configure(next.config.power);
    this.applyPolicy(null, this.parts.power?.policy ?? null);
    if (needRestart.length > 0) this.log.warn({ settings: needRestart }, 'these changed settings take effect after a restart');
    this.log.info({ applied }, 'configuration reloaded');
    return { applied, needRestart };
  }

  /** A governor level's policy: the fps cap per camera and the precision rung each pipeline runs. */
  private applyPolicy(t: Transition | null, policy: LevelPolicy | null): void {
    if (t) this.bus.emit('governor.transition', { from: t.from, to: t.to, reason: t.reason, temperatureC: t.temperatureC, powerState: t.powerState });
    for (const cam of this.config.cameras) {
      const caps = [cam.maxFps, policy?.maxFps].filter((v): v is number => v !== undefined);
      this.parts.scheduler?.setMaxFps(cam.name, caps.length ? Math.min(...caps) : undefined);
    }
    if (policy) this.applyRung(policy.precision, policy.threads);
  }

  /** Each model's variants (from the folder it names, or built into the state dir) and the file serving now. */
  private loadVariants(): void {
    const { variants, serving } = loadModelVariants(this.config, this.parts.engine!.provider);
    for (const [k, v] of variants) this.variants.set(k, v);
    Object.assign(this.servingFiles, serving);
  }

  /**
   * Swaps every pipeline to the variants of `rung` (stages whose model has none keep what they run). Swaps are
   * queued: a later transition never finishes before an earlier one and leaves the wrong rung in place.
   */
  private applyRung(rung: Rung, threads?: number): void {
    this.rung = rung;
    this.threads = threads;
    this.swaps = this.swaps.then(() => this.swapTo(rung, threads));
  }

  private async swapTo(rung: Rung, threads?: number): Promise<void> {
    if (!this.parts.pipelines) return; // stopping
    const provider = this.parts.engine?.provider ?? 'cpu';
    for (const [name, pipeline] of this.parts.pipelines ?? []) {
      const { label, stages } = variantFiles(this.config, name, rung, provider, this.variants, this.servingFiles);
      try {
        await pipeline.useVariant(label, stages, threads);
        this.metrics.setProvider(provider, label);
        this.log.info(
          { pipeline: name, rung, variant: label, threads: threads ?? Object.values(stages).map((c) => c.threads ?? this.config.runtime.threads) },
          'pipeline precision set',
        );
      } catch (err) {
        this.log.error({ pipeline: name, rung, err: errorMessage(err) }, 'could not switch precision; keeping the current variant');
      }
    }
  }

  /**
   * Models with optimize.enabled and no variants yet: calibration frames are recorded from the cameras that
   * feed the model (unless a folder is configured), then a background process builds the variants, swapped in
   * when ready.
   */
  private buildMissingVariants(): void {
    const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
    for (const [name, m] of Object.entries(this.config.models)) {
      if (!m.optimize.enabled || this.variants.get(name)) continue;
      const dir = variantsDir(m.file, this.config.node.stateDir);
      const log = this.log.child({ component: 'optimize', model: name });
      const build = (calibration?: string) =>
        void buildInBackground(cli, m, dir, log, this.builds.signal, calibration).then((ok) => {
          if (!ok || this.builds.signal.aborted) return;
          this.variants.set(name, ModelVariants.load(dir));
          this.applyRung(this.rung, this.threads);
        });
      const feeding = this.config.cameras.filter((c) => c.enabled && this.config.pipelines[c.pipeline].stages[0].model === name);
      if (m.optimize.calibration || feeding.length === 0) {
        build();
        continue;
      }
      const recorder = new CalibrationRecorder(
        join(this.config.node.stateDir, 'calibration', basename(dir)),
        m.optimize.calibrationFrames + m.optimize.heldOut,
      );
      for (const cam of feeding) this.recorders.set(cam.name, [...(this.recorders.get(cam.name) ?? []), recorder]);
      log.info(
        { cameras: feeding.map((c) => c.name), frames: m.optimize.calibrationFrames + m.optimize.heldOut, dir: recorder.dir },
        'recording calibration frames from the cameras',
      );
      void recorder.full.then(() => {
        for (const cam of feeding)
          this.recorders.set(
            cam.name,
            (this.recorders.get(cam.name) ?? []).filter((r) => r !== recorder),
          );
        build(recorder.dir);
      });
    }
  }

  health(): { ok: boolean; reason: string } {
    const last = this.stats.lastResultAt;
    const staleMs = this.config.status.staleAfterSeconds * 1000;
    if (last === null) return { ok: false, reason: 'no frame processed yet' };
    const age = Date.now() - last;
    return age <= staleMs ? { ok: true, reason: `last result ${age} ms ago` } : { ok: false, reason: `no result for ${Math.round(age / 1000)} s` };
  }

  status(): PageStatus & Record<string, unknown> {
    const snap = this.stats.snapshot();
    const ms = (v: number) => Math.round((Number.isNaN(v) ? 0 : v / 1e6) * 100) / 100;
    return {
      node: this.config.node.name,
      version: VERSION,
      config: this.loaded.file,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      healthy: this.health().ok,
      provider: this.parts.engine?.provider ?? null,
      providerAttempts: this.parts.engine?.attempts ?? [],
      variant: [...(this.parts.pipelines?.values() ?? [])][0]?.variant ?? 'fp32',
      power: this.parts.power ? this.parts.power.status() : null,
      precision: {
        rung: this.rung,
        pipelines: Object.fromEntries([...(this.parts.pipelines ?? [])].map(([n, p]) => [n, p.variant])),
        variants: Object.fromEntries([...this.variants].map(([m, v]) => [m, v ? v.manifest.variants.filter((x) => x.accepted).map((x) => x.precision) : []])),
      },
      ortVersion: ORT_VERSION,
      cameras: Object.fromEntries(
        Object.entries(snap.cameras).map(([name, c]) => [name, { ...c, source: this.parts.scheduler?.sourceHealth()[name] ?? null }]),
      ),
      latencyMs: snap.latencyMs,
      eventLoopDelayMs: { p50: ms(this.loopDelay.percentile(50)), p95: ms(this.loopDelay.percentile(95)), max: ms(this.loopDelay.max) },
      rssBytes: process.memoryUsage.rss(),
      lastResult: snap.lastResult,
    };
  }

  get statusPort(): number | null {
    return this.parts.server?.port ?? null;
  }
}

function diffPaths(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return Object.is(a, b) ? [] : [path];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const isArr = Array.isArray(a) && Array.isArray(b);
  return [...keys].flatMap((k) =>
    diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], isArr ? `${path}[${k}]` : path ? `${path}.${k}` : k),
  );
}
