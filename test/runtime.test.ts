import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { probeModel } from '../src/onnx/index.js';
import { InferenceEngine, LocalSession, float32, probeProvider } from '../src/runtime/index.js';
import { tempDir } from './helpers/paths.js';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('ONNX Runtime adapter', () => {
  it('runs a model built in code on the cpu provider', async () => {
    const s = await LocalSession.create(probeModel(), { provider: 'cpu', threads: 1, deviceId: 0, cacheDir: null });
    const out = await s.run({ x: float32(new Float32Array([1, 2, 3, 4]), [1, 4]) });
    expect([...(out.y.data as Float32Array)]).toEqual([4.5, 5.5]);
    await expect(s.run({ wrong: float32(new Float32Array(4), [1, 4]) })).rejects.toThrow(/needs input "x" but got wrong/);
    await s.release();
  });

  it('caches the optimized graph and loads it on the second start with the same results', async () => {
    const cacheDir = tempDir();
    const spec = { provider: 'cpu' as const, threads: 1, deviceId: 0, cacheDir };
    const first = await LocalSession.create(probeModel(), spec);
    const second = await LocalSession.create(probeModel(), spec);
    expect([first.info.fromCache, second.info.fromCache]).toEqual([false, true]);
    const feed = () => ({ x: float32(new Float32Array([0.5, -1, 2, 3]), [1, 4]) });
    expect([...((await second.run(feed())).y.data as Float32Array)]).toEqual([...((await first.run(feed())).y.data as Float32Array)]);
    await Promise.all([first.release(), second.release()]);
  });

  // On a machine where CUDA works these assert the other side: a test must not depend on the hardware being absent.
  it('proves cuda by creating a session: the reason when it cannot, ok when it can', async () => {
    const cuda = await probeProvider('cuda');
    if (cuda.ok) expect(cuda.error).toBeUndefined();
    else expect(cuda.error).toMatch(/cuda|shared library/i);
  });

  it('falls back to cpu with a clear log line when the requested provider is missing', async () => {
    const cudaWorks = (await probeProvider('cuda')).ok;
    const { log, lines } = capturingLogger();
    const engine = new InferenceEngine({ providers: ['cuda'], threads: 1, deviceId: 0, cacheOptimizedGraphs: false, stateDir: tempDir() }, log);
    await engine.start();
    try {
      if (cudaWorks) {
        expect(engine.provider).toBe('cuda');
        return;
      }
      expect(engine.provider).toBe('cpu');
      expect(engine.attempts.map((a) => [a.provider, a.ok])).toEqual([
        ['cuda', false],
        ['cpu', true],
      ]);
      const msgs = lines.map((l) => l.msg);
      expect(msgs).toContain('none of the requested providers (cuda) works here; falling back to cpu');
      const using = lines.find((l) => l.msg === 'using execution provider cpu (cuda unavailable here; outpost doctor says why)');
      expect((using?.unavailable as Record<string, string>).cuda).toMatch(/Failed to load shared library|cuda/i);
    } finally {
      await engine.stop();
    }
  });
});
