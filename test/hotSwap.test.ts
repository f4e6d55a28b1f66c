import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectorySource, renderDemoFrames } from '../src/camera/index.js';
import { loadConfig } from '../src/config/index.js';
import { EventBus } from '../src/core/index.js';
import { FrameScheduler, type StagedPipeline } from '../src/pipeline/index.js';
import { startPipelineSet } from './helpers/context.js';
import { InferenceEngine, LocalSession } from '../src/runtime/index.js';
import type { Result } from '../src/types.js';
import { ROOT, tempDir } from './helpers/paths.js';

/**
 * Two real variants of each PP-OCR model: the npm file and ORT's optimized graph of it (a different file
 * with the same function), swapped under load and then 200 times.
 */
const choices = (files: Record<string, string>) => Object.fromEntries(Object.entries(files).map(([stage, file]) => [stage, { file }]));

describe('hot swap between model variants', () => {
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, done) => (logs.push(JSON.parse(String(c))), done()) }));
  let engine: InferenceEngine;
  let pipeline: StagedPipeline;
  let stopAll: () => Promise<void>;
  let original: Record<string, string>;
  let optimized: Record<string, string>;
  const frames = tempDir();

  beforeAll(async () => {
    const { config } = loadConfig(`${ROOT}/config/outpost.yaml`, {});
    const started = await startPipelineSet(config, ['text'], log);
    [engine, pipeline, stopAll] = [started.engine, started.set.get('text'), started.stop];
    original = { detect: config.models['ppocr-det'].file, recognise: config.models['ppocr-rec'].file };
    optimized = {};
    for (const [stage, file] of Object.entries(original)) {
      const dir = tempDir();
      await (await LocalSession.create(file, { provider: 'cpu', threads: 1, deviceId: 0, cacheDir: dir })).release();
      optimized[stage] = join(dir, readdirSync(dir)[0]);
    }
    (await renderDemoFrames(4, 9)).forEach((f, n) => writeFileSync(join(frames, `${n}.jpg`), f.data));
  });

  afterAll(async () => {
    await stopAll();
  });

  it('swaps under a steady frame load with no frame lost or processed twice', async () => {
    const bus = new EventBus(log);
    const results: Result[] = [];
    let received = 0;
    let dropped = 0;
    let failed = 0;
    bus.on('result', 't', ({ result }) => results.push(result));
    bus.on('frame.received', 't', () => received++);
    bus.on('frame.dropped', 't', () => dropped++);
    bus.on('frame.failed', 't', () => failed++);
    const scheduler = new FrameScheduler([{ source: new DirectorySource('cam', { path: frames, fps: 30, loop: true, watch: false }), pipeline }], {
      bus,
      log,
      provider: engine.provider,
      inflight: 2,
    });
    scheduler.start();
    for (let i = 0; i < 30; i++) {
      await pipeline.useVariant(i % 2 ? 'fp32' : 'fp32-ort-optimized', choices(i % 2 ? original : optimized));
      await new Promise((r) => setTimeout(r, 60));
    }
    await scheduler.stop();
    const ids = results.map((r) => r.frameId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(failed).toBe(0);
    expect(received - results.length - dropped).toBeLessThanOrEqual(1);
    expect(new Set(results.map((r) => r.variant))).toEqual(new Set(['fp32', 'fp32-ort-optimized']));
    // both variants read the same text from the same pictures
    const byPicture = new Map<number, Set<string>>(); // frame seq % 4 is the picture the folder holds
    for (const r of results) {
      const picture = Number(r.frameId.slice('cam-'.length)) % 4;
      byPicture.set(picture, (byPicture.get(picture) ?? new Set()).add(r.output.lines!.map((l) => l.text).join('|')));
    }
    for (const texts of byPicture.values()) expect(texts.size).toBe(1);
  });

  it('reuses sessions across 200 swaps: no new session, RSS stable', async () => {
    const loadsBefore = logs.filter((l) => l.msg === 'model loaded').length;
    await pipeline.useVariant('a', choices(optimized));
    await pipeline.useVariant('b', choices(original));
    const rssBefore = process.memoryUsage.rss();
    for (let i = 0; i < 200; i++) await pipeline.useVariant(i % 2 ? 'a' : 'b', choices(i % 2 ? optimized : original));
    const rssAfter = process.memoryUsage.rss();
    expect(logs.filter((l) => l.msg === 'model loaded').length).toBe(loadsBefore);
    expect(rssAfter / rssBefore).toBeLessThan(1.05);
  });
});
