import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { optimizeDetector, runCli } from './helpers/daemonProcess.js';
import { tempDir } from './helpers/paths.js';

describe('outpost bench <mode>: a subcommand per mode, each with its own options', () => {
  const MODES = ['pipeline', 'cameras', 'levels', 'models', 'upload', 'offload', 'fleet', 'chaos', 'memory'];

  it('--help lists every mode, and each mode has its own --help', () => {
    const r = runCli(['bench', '--help']);
    expect(r.code, r.stderr).toBe(0);
    const listed = [...r.stdout.matchAll(/^ {2}([a-z]+) (?:\[options\])?/gm)].map((m) => m[1]).filter((n) => n !== 'help');
    expect(listed).toEqual(expect.arrayContaining(MODES)); // and any mode added since (bench collect)
    const fleet = runCli(['bench', 'fleet', '--help']);
    expect(fleet.stdout).toMatch(/--devices <n,\.\.\.>/);
    expect(fleet.stdout).not.toMatch(/--backlog/);
  });

  it.each([
    [
      ['bench', 'fleet', '--devices', '10,abc'],
      /option '--devices <n,\.\.\.>' argument '10,abc' is invalid: expected a whole number of at least 1; see outpost bench fleet --help/,
    ],
    [['bench', 'chaos', '--backlog', '5'], /unknown option '--backlog'; see outpost bench chaos --help/],
    [['bench', 'cameras', '--count', '0'], /option '-n, --count <n>' argument '0' is invalid.*; see outpost bench cameras --help/],
    [['bench', 'models'], /missing required argument 'dir'; see outpost bench models --help/],
  ])('%j is a usage error (exit 64) naming the option and the mode', (args, message) => {
    const r = runCli(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('the flags that chose a mode before still do, and say what they are now', () => {
    const r = runCli(['bench', '--fleet', 'abc', '--interval', '5']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('`bench --fleet` is now `bench fleet`');
    expect(r.stderr).toMatch(/argument 'abc' is invalid.*see outpost bench fleet --help/);
  });
});

describe('outpost bench (machine-readable reports; the numbers themselves belong in the notes)', () => {
  it('pipeline mode: raw session.run vs the whole pipeline on the same frames', () => {
    const out = join(tempDir(), 'bench.json');
    const r = runCli(['bench', 'pipeline', '--config', 'config/outpost.yaml', '--count', '3', '--repeats', '1', '--json', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ kind: 'outpost-bench-pipeline', provider: 'cpu', frames: { count: 3 }, repeats: 1 });
    expect(report.raw.fpsMedian).toBeGreaterThan(0);
    expect(report.wholePipeline.fpsMedian).toBeGreaterThan(0);
    expect(report.ratio).toBeCloseTo(report.wholePipeline.fpsMedian / report.raw.fpsMedian, 1);
    expect(Object.keys(report.startup)).toEqual(['ppocr-det', 'ppocr-rec']);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(report);
  });

  it('memory mode: the daemon in a child process, its RSS, and where it goes', () => {
    const r = runCli(['bench', 'memory', '--config', 'config/outpost.yaml', '--duration', '4', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ kind: 'outpost-bench-memory', pipeline: 'text', allocator: { MALLOC_ARENA_MAX: '2' } });
    for (const run of [report.daemon, report.daemonWithGlibcDefaults]) {
      expect(run.marks.map((m: { atSeconds: number }) => m.atSeconds)).toEqual([4]);
      expect(run.steadyRssMiB).toBeGreaterThan(0);
    }
    for (const part of ['nodeAndOrtLibrary', 'mainV8Heap', 'workerV8Heap', 'buffersOutsideHeaps', 'ortSessions', 'imageCache', 'nativeRest'])
      expect(typeof report.breakdownMiB[part], part).toBe('number');
    expect(report.referenceMiB.nodeWithSessionsArenaOff).toBeGreaterThan(report.referenceMiB.nodeAndOrtLibrary);
  });

  it('model mode: times the accepted variants of an optimize folder and writes autotune.json', () => {
    const dir = join(tempDir(), 'det');
    const built = optimizeDetector(dir);
    expect(built.code, built.stderr).toBe(0);
    const r = runCli(['bench', 'models', dir, '--repeats', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const tune = JSON.parse(readFileSync(join(dir, 'autotune.json'), 'utf8'));
    expect([...new Set(tune.variants.map((v: { precision: string }) => v.precision))].sort()).toEqual(['fp32', 'int8-static']);
    expect([...new Set(tune.variants.map((v: { threads: number }) => v.threads))].sort()).toEqual(
      [...new Set([1, availableParallelism()])].sort((a, b) => a - b),
    );
    expect(tune.levels.nominal.threads).toBeGreaterThanOrEqual(1);
    expect(Object.keys(tune.levels)).toEqual(['nominal', 'warm', 'hot', 'critical']);
    expect(tune.levels.nominal.precision).toBe('fp32');
    expect(['fp32', 'int8-static']).toContain(tune.rungs.int8.precision);
    expect(existsSync(join(dir, 'manifest.json'))).toBe(true);
  });

  it('offload mode: two real agents, one core each where there are two, alone and with the other as peer', () => {
    const r = runCli(['bench', 'offload', '--repeats', '1', '--duration', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ kind: 'outpost-bench-offload', frame: { width: 640, height: 480 } });
    expect(report.runs).toHaveLength(1);
    expect(report.runs[0].localFps).toBeGreaterThan(0);
    expect(report.runs[0].shareOnPeer).toBeGreaterThan(0); // frames went to the peer
    expect(report.latency.addedMsMedian).toBeGreaterThan(0);
    expect(report.sealing.sealAndOpenMsMedian).toBeGreaterThan(0);
    expect(Object.keys(report.goals)).toEqual(['fpsRatioAtLeast1_8', 'addedLatencyAtMost5Ms', 'sealingAtMost2PercentOfInference']);
  });
});
