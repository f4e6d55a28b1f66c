import { basename, join } from 'node:path';
import { Gauge } from 'prom-client';
import { fileURLToPath } from 'node:url';
import { CalibrationRecorder } from '../camera/index.js';
import type { Component, ComponentContext } from '../core/index.js';
import type { OutpostConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import { logRejection } from '../lastResort.js';
import { buildInBackground, variantsDir } from '../runtime/index.js';
import type { Frame } from '../types.js';
import type { Rung } from '../vocabulary.js';
import type { PipelineSet } from './pipelineSet.js';

/** What a set-precision runs: each pipeline's variant label and the models left on fp32, or why it is refused. */
export type PrecisionChoice = { ok: true; runs: Record<string, string>; fp32Models: string[] } | { ok: false; reason: string };

/**
 * Which variant each pipeline runs: the governor's rung (from `governor.policy` on the bus), or a rung an
 * operator fixed until they say `auto`. Swaps are queued, so a later level always wins. Models with
 * `optimize.enabled` and no variants yet get calibration frames recorded from the cameras that feed them and a
 * background build; the new variants are swapped in when ready.
 */
export class PrecisionController implements Component {
  readonly name = 'precision';
  private readonly config: Readonly<OutpostConfig>;
  private governed: { rung: Rung; threads?: number } = { rung: 'fp32' };
  private fixed: Rung | null = null;
  private swaps: Promise<void> = Promise.resolve();
  private readonly recorders = new Map<string, CalibrationRecorder[]>();
  private readonly builds = new AbortController();
  private readonly warned = new Set<string>();
  private running = false;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly set: PipelineSet,
    private readonly provider: () => string,
    /** The CLI whose `optimize` command builds variants in a child process. */
    private readonly cli = fileURLToPath(new URL('../cli.js', import.meta.url)),
  ) {
    this.config = ctx.config;
  }

  async start(): Promise<void> {
    this.running = true;
    this.ctx.bus.on('governor.policy', this.name, ({ policy }) => {
      this.governed = { rung: policy.precision, threads: policy.threads };
      this.schedule();
    });
    this.ctx.bus.on('frame.received', this.name, (frame) => this.offer(frame));
    const info = () => ({ provider: this.provider(), variant: String(this.status().variant) });
    new Gauge({
      name: 'outpost_execution_provider_info',
      help: 'Execution provider and model variant in use (value 1)',
      labelNames: ['provider', 'variant'],
      registers: [this.ctx.registry],
      collect() {
        this.reset();
        this.set(info(), 1);
      },
    });
    this.buildMissingVariants();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.builds.abort();
    await this.swaps;
  }

  /**
   * An operator's fixed rung (null: follow the governor again), and what each pipeline will run at it. Refused
   * (nothing changes) when no model of any pipeline has a variant of that rung: answering "int8" while fp32 runs
   * would be a lie.
   */
  fix(rung: Rung | null): PrecisionChoice {
    const at = rung ?? this.governed.rung;
    const choices = [...this.set.pipelines.keys()].map((name) => ({ name, ...this.set.choose(name, at) }));
    const fp32Models = [...new Set(choices.flatMap((c) => c.unfilled))];
    const models = new Set(choices.flatMap((c) => this.set.modelsOf(c.name)));
    if (rung !== null && choices.length === 0) return { ok: false, reason: 'no pipeline runs on this node' };
    if (rung !== null && fp32Models.length > 0 && fp32Models.length === models.size)
      return { ok: false, reason: `no model here has a ${rung} variant (${fp32Models.join(', ')} would run fp32); build one with outpost optimize` };
    this.fixed = rung;
    this.schedule();
    return { ok: true, runs: Object.fromEntries(choices.map((c) => [c.name, c.label])), fp32Models };
  }

  /** A model's variants were re-timed (autotune.json rewritten): pick again at the current rung. */
  retuned(model: string, dir: string): void {
    this.set.setVariants(model, dir);
    this.schedule();
  }

  get rung(): Rung {
    return this.fixed ?? this.governed.rung;
  }

  status(): Record<string, unknown> {
    const pipelines = Object.fromEntries([...this.set.pipelines].map(([n, p]) => [n, p.variant]));
    const variants = Object.fromEntries(
      [...this.set.variants].map(([m, v]) => [m, v ? v.manifest.variants.filter((x) => x.accepted).map((x) => x.precision) : []]),
    );
    return { variant: Object.values(pipelines)[0] ?? 'fp32', precision: { rung: this.rung, fixed: this.fixed !== null, pipelines, variants } };
  }

  /** Queues a swap to the current rung; each runs after the one before, so the last request is what stays. */
  private schedule(): void {
    const rung = this.rung;
    const threads = this.governed.threads;
    this.swaps = this.swaps.then(() => this.swapTo(rung, threads)).catch(logRejection(this.ctx.log, 'a precision swap'));
  }

  private async swapTo(rung: Rung, threads?: number): Promise<void> {
    if (!this.running) return;
    for (const [name, pipeline] of this.set.pipelines) {
      const { label, stages, unfilled } = this.set.choose(name, rung);
      for (const model of unfilled.filter((m) => !this.warned.has(`${m}@${rung}`))) {
        this.warned.add(`${model}@${rung}`);
        this.ctx.log.warn({ model, rung }, `model ${model} has no ${rung} variant; it runs fp32 at this rung`);
      }
      try {
        await pipeline.useVariant(label, stages, threads);
        const perStage = threads ?? Object.values(stages).map((c) => c.threads ?? this.config.runtime.threads);
        this.ctx.log.info({ pipeline: name, rung, variant: label, threads: perStage }, 'pipeline precision set');
      } catch (err) {
        this.ctx.log.error({ pipeline: name, rung, err: errorMessage(err) }, 'could not switch precision; keeping the current variant');
      }
    }
  }

  private offer(frame: Frame): void {
    for (const r of this.recorders.get(frame.camera) ?? []) r.offer(frame);
  }

  private buildMissingVariants(): void {
    const cfg = this.config;
    for (const [name, m] of Object.entries(cfg.models)) {
      if (!m.optimize.enabled || this.set.variants.get(name)) continue;
      const dir = variantsDir(m.file, cfg.node.stateDir);
      const log = this.ctx.log.child({ model: name });
      const build = (calibration?: string) => {
        buildInBackground(this.cli, m, dir, log, this.builds.signal, calibration)
          .then((ok) => {
            if (!ok || this.builds.signal.aborted) return;
            this.set.setVariants(name, dir);
            this.schedule();
          })
          .catch(logRejection(log, 'building model variants'));
      };
      const feeding = cfg.cameras.filter((c) => c.enabled && cfg.pipelines[c.pipeline].stages[0].model === name);
      if (m.optimize.calibration || feeding.length === 0) {
        build();
        continue;
      }
      const frames = m.optimize.calibrationFrames + m.optimize.heldOut;
      const recorder = new CalibrationRecorder(join(cfg.node.stateDir, 'calibration', basename(dir)), frames);
      for (const cam of feeding) this.recorders.set(cam.name, [...(this.recorders.get(cam.name) ?? []), recorder]);
      log.info({ cameras: feeding.map((c) => c.name), frames, dir: recorder.dir }, 'recording calibration frames from the cameras');
      void recorder.full
        .then(() => {
          for (const cam of feeding)
            this.recorders.set(
              cam.name,
              (this.recorders.get(cam.name) ?? []).filter((r) => r !== recorder),
            );
          build(recorder.dir);
        })
        .catch(logRejection(log, 'recording calibration frames'));
    }
  }
}
