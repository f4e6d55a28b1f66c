import type { Component, ComponentContext } from '../core/index.js';
import type { OutpostConfig } from '../config/index.js';
import { summariseOutput } from '../resultSummary.js';

/** Logs every result at info level while `logging.results` is on (live on reload). */
export class ResultLog implements Component {
  readonly name = 'result-log';
  private enabled: boolean;

  constructor(private readonly ctx: ComponentContext) {
    this.enabled = ctx.config.logging.results;
  }

  async start(): Promise<void> {
    this.ctx.bus.on('result', this.name, ({ result: r }) => {
      if (!this.enabled) return;
      this.ctx.log.info(
        { camera: r.camera, frame: r.frameId, text: summariseOutput(r.output), truth: r.truth, ms: Math.round(r.timings.totalMs), placement: r.placement },
        'result',
      );
    });
  }

  async stop(): Promise<void> {}

  reload(config: Readonly<OutpostConfig>): void {
    this.enabled = config.logging.results;
  }
}
