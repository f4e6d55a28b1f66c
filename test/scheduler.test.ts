import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectorySource, renderDemoFrames } from '../src/camera/index.js';
import { loadConfig } from '../src/config/index.js';
import { EventBus } from '../src/core/index.js';
import { FrameScheduler, type StagedPipeline } from '../src/pipeline/index.js';
import { startPipelineSet } from './helpers/context.js';
import { InferenceEngine } from '../src/runtime/index.js';
import { ROOT, tempDir } from './helpers/paths.js';

const log = pino({ level: 'silent' });

/**
 * Cameras (folders of real demo frames) offering more than the real PP-OCR pipeline takes: at 60 fps, or faster
 * where the engine is (a fast accelerator), so that the engine, not the cameras, is what the cameras share.
 */
describe('scheduling several cameras on one engine', () => {
  let engine: InferenceEngine;
  let pipeline: StagedPipeline;
  let stopAll: () => Promise<void>;
  let cameraFps = 60;
  const frames = tempDir();

  beforeAll(async () => {
    // small frames: the scheduling is what is under test, and it needs many results
    const demo = await renderDemoFrames(4, 5, 320, 240);
    demo.forEach((f, n) => writeFileSync(join(frames, `${n}.jpg`), f.data));
    const { config } = loadConfig(`${ROOT}/config/outpost.yaml`, {});
    const started = await startPipelineSet(config, ['text'], log);
    [engine, pipeline, stopAll] = [started.engine, started.set.get('text'), started.stop];
    // how fast this engine is, to set the cameras well above it (a setup figure, asserted nowhere)
    await pipeline.process(demo[0]);
    const t0 = performance.now();
    for (const f of demo.slice(1)) await pipeline.process(f);
    cameraFps = Math.max(60, Math.ceil((8 * 1000 * (demo.length - 1)) / (performance.now() - t0)));
  });

  afterAll(async () => {
    await stopAll();
  });

  async function run(weights: number[], totalResults: number) {
    const bus = new EventBus(log);
    const counts = weights.map(() => ({ received: 0, processed: 0, dropped: 0, failed: 0 }));
    const idx = (camera: string) => Number(camera.slice(3));
    bus.on('frame.received', 't', (f) => counts[idx(f.camera)].received++);
    bus.on('frame.dropped', 't', (f) => counts[idx(f.camera)].dropped++);
    bus.on('frame.failed', 't', (f) => counts[idx(f.camera)].failed++);
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    let total = 0;
    bus.on('result', 't', ({ result: r }) => {
      counts[idx(r.camera)].processed++;
      if (++total === totalResults) done();
    });
    const scheduler = new FrameScheduler(
      weights.map((weight, i) => ({ source: new DirectorySource(`cam${i}`, { path: frames, fps: cameraFps, loop: true, watch: false }), pipeline, weight })),
      { bus, log, provider: engine.provider, inflight: 2 },
    );
    scheduler.start();
    await finished;
    await scheduler.stop();
    return counts;
  }

  for (const cameras of [2, 4]) {
    it(`gives ${cameras} equal cameras each their share (within 20%) and keeps at most one frame waiting per camera`, async () => {
      const counts = await run(Array(cameras).fill(1), cameras * 12);
      const total = counts.reduce((a, c) => a + c.processed, 0);
      for (const c of counts) {
        expect(c.processed).toBeGreaterThanOrEqual(0.8 * (total / cameras));
        expect(c.processed).toBeLessThanOrEqual(1.2 * (total / cameras));
        expect(c.dropped).toBeGreaterThan(0); // the cameras outpace the engine: older frames were replaced
        // bounded: every frame received is accounted for but for the one in the slot (stop() lets in-flight ones finish)
        expect(c.received - c.processed - c.dropped - c.failed).toBeLessThanOrEqual(1);
      }
    });
  }

  it('shares the engine by weight', async () => {
    const [heavy, light] = await run([2, 1], 36);
    const ratio = heavy.processed / light.processed;
    expect(ratio).toBeGreaterThan(2 * 0.8);
    expect(ratio).toBeLessThan(2 * 1.2);
  });
});
