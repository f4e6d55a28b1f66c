import { execFile, spawn } from 'node:child_process';
import type { Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderDemoFrames } from '../../camera/index.js';
import type { ComponentContext } from '../../core/index.js';
import { OutpostError } from '../../errors.js';
import { exitOnError, freePort, runComponents } from '../common.js';
import { encodeFeeds, FeedRecorder } from './recordedFeeds.js';
import { benchTarget, configOption, durationOption, emitReport, enginePipeline, sleep, statusOf, withReportFlags, type ReportFlags } from './shared.js';
import type { ProbeRequest } from './memoryProbe.js';

/** Seconds after start at which the daemon's RSS is read: start-up is over by the first, steady by the last. */
const MARKS_S = [10, 30, 60];

/** The marks up to `duration` seconds (a short run for a smoke test reads once, at its end). */
function marksUpTo(duration: number): number[] {
  const marks = MARKS_S.filter((m) => m <= duration);
  return marks.length ? marks : [duration];
}

/**
 * The allocator settings the systemd unit runs the daemon with (its `Environment=MALLOC_*`). glibc's defaults
 * cost the daemon a third of its RSS: an arena per thread (ORT's pool, libvips', libuv's), and a mmap
 * threshold that rises to the largest buffer freed, after which every frame's tensors come from arenas that
 * never shrink.
 */
export function unitMallocEnv(): Record<string, string> {
  const units = [fileURLToPath(new URL('../../../systemd/outpost.service', import.meta.url)), '/etc/systemd/system/outpost.service'];
  const unit = units.find((f) => existsSync(f));
  if (!unit) return {}; // no unit to read: glibc's defaults
  const text = readFileSync(unit, 'utf8');
  const pairs = [...text.matchAll(/^Environment=(.*)$/gm)].flatMap((m) => m[1].trim().split(/\s+/));
  return Object.fromEntries(pairs.map((p) => p.split('=', 2) as [string, string]).filter(([k]) => k.startsWith('MALLOC_')));
}
const MiB = 1024 * 1024;
const mib = (bytes: number | null | undefined) => (typeof bytes === 'number' ? Math.round((bytes / MiB) * 10) / 10 : null);

interface Mark {
  atSeconds: number;
  rssMiB: number | null;
  fps: number | null;
}

type Status = { provider?: string; memory?: Record<string, number | null>; imageCacheBytes?: number; cameras?: Record<string, { fps?: number }> };

const script = (name: string) => fileURLToPath(new URL(name, import.meta.url));

function rssOf(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null; // gone, or not Linux
  }
}

/** The feeds each stage's session got for a few demo frames, for the reference processes to replay. */
async function recordFeeds(ctx: ComponentContext, name: string, file: string): Promise<void> {
  const recorder = new FeedRecorder();
  const { engine, set } = enginePipeline(ctx, name, { tap: recorder.tap });
  const runs = await runComponents(ctx, [engine, set], async () => recorder.record(set.get(name), await renderDemoFrames(3, 5)));
  writeFileSync(file, encodeFeeds(runs.flat()));
}

type ProbeMemory = { rssBytes: number; heapBytes: number; externalBytes: number };

/** What a probe holds outside its JS heap and buffers: code and native allocations. */
const native = (p: ProbeMemory) => p.rssBytes - p.heapBytes - p.externalBytes;

function probe(request: ProbeRequest, env: Record<string, string>): Promise<ProbeMemory> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', script('./memoryProbe.js'), JSON.stringify(request)],
      { timeout: 300_000, maxBuffer: 1 << 20, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        if (err) return reject(new OutpostError('OUTPOST_E_INTERNAL', `the memory probe failed: ${stderr.trim() || err.message}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ProbeMemory);
      },
    );
  });
}

/** The daemon on the config in a child process, with its own state folder and status port. */
function startDaemon(configFile: string, stateDir: string, port: number, malloc: Record<string, string>) {
  const env = {
    ...process.env,
    ...malloc,
    OUTPOST_NODE_STATE_DIR: stateDir,
    OUTPOST_STATUS_PORT: String(port),
    OUTPOST_STATUS_HOST: '127.0.0.1',
    OUTPOST_LOGGING_LEVEL: 'warn',
  };
  const child = spawn(process.execPath, [script('../../cli.js'), 'run', '--config', configFile], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const daemon = { child, stderr: '', exited: new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))) };
  child.stderr.on('data', (d: Buffer) => (daemon.stderr = (daemon.stderr + d.toString()).slice(-4000)));
  return daemon;
}

/** Runs the daemon on the config and reads its memory at each mark. */
async function watchDaemon(
  configFile: string,
  marksS: number[],
  malloc: Record<string, string>,
  log: (line: string) => void,
): Promise<{ marks: Mark[]; status: Status | null; exitCode: number | null }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'outpost-bench-memory-'));
  const port = await freePort();
  const daemon = startDaemon(configFile, stateDir, port, malloc);
  const started = performance.now();
  const marks: Mark[] = [];
  let status: Status | null = null;
  try {
    for (const at of marksS) {
      await Promise.race([sleep(Math.max(0, at * 1000 - (performance.now() - started))), daemon.exited]);
      if (daemon.child.exitCode !== null)
        throw new OutpostError(
          'OUTPOST_E_INTERNAL',
          `the daemon exited (code ${daemon.child.exitCode}) after ${Math.round((performance.now() - started) / 1000)} s: ${daemon.stderr.trim()}`,
        );
      status = await statusOf<Status>(port, 3000);
      const fps = Object.values(status?.cameras ?? {}).reduce((a, c) => a + (c.fps ?? 0), 0);
      marks.push({ atSeconds: at, rssMiB: mib(rssOf(daemon.child.pid!)), fps: status ? Math.round(fps * 100) / 100 : null });
      log(`  ${at} s: RSS ${marks.at(-1)!.rssMiB} MiB, ${marks.at(-1)!.fps} frames/s`);
    }
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    rmSync(stateDir, { recursive: true, force: true });
  }
  return { marks, status, exitCode: daemon.child.exitCode };
}

export interface MemoryBenchOptions extends ReportFlags {
  config?: string;
  duration: number;
}

/** `outpost bench memory`: the config's daemon in a child process, its steady RSS and where it goes. */
export function memoryMode(bench: Command): Command {
  const cmd = bench
    .command('memory')
    .description(
      "the config's daemon in a child process: RSS at 10, 30 and 60 s, V8 heaps (main, inference worker), ORT sessions with and without the CPU arena, libvips' cache, the native rest",
    )
    .addOption(configOption())
    .addOption(durationOption(60, 'RSS is read at 10, 30 and 60 s up to this (a shorter run reads once, at its end)'));
  return withReportFlags(cmd).action((o: MemoryBenchOptions) => benchMemory(o).catch(exitOnError));
}

async function benchMemory(o: MemoryBenchOptions): Promise<void> {
  const { ctx, file, pipeline } = benchTarget(o.config);
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const report = await measureMemory(ctx, file, pipeline, o.duration, log);
  emitReport(o, { ...report, createdAt: new Date().toISOString() });
}

/**
 * The config's daemon in a child process, its RSS at 10, 30 and 60 s, and where it goes: the V8 heaps of the
 * main and inference threads, what the ORT sessions take (a plain Node process replaying the same feeds, with
 * and without ORT's CPU arena), libvips' cache, and the native rest. The daemon runs with the unit's allocator
 * settings, then with glibc's defaults for comparison.
 */
async function measureMemory(ctx: ComponentContext, configFile: string, name: string, durationS: number, log: (line: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-memory-'));
  const malloc = unitMallocEnv();
  try {
    const probes = await referenceProbes(ctx, name, join(dir, 'feeds.json'), malloc, log);
    log(`the daemon on ${configFile} with the unit's allocator settings (${JSON.stringify(malloc)})`);
    const daemon = await watchDaemon(configFile, marksUpTo(durationS), malloc, log);
    log("the daemon with glibc's default allocator settings");
    const defaults = await watchDaemon(configFile, marksUpTo(durationS), {}, log);
    return {
      kind: 'outpost-bench-memory',
      pipeline: name,
      provider: daemon.status?.provider ?? 'unknown',
      allocator: malloc,
      daemon: { marks: daemon.marks, steadyRssMiB: daemon.marks.at(-1)?.rssMiB ?? null },
      daemonWithGlibcDefaults: { marks: defaults.marks, steadyRssMiB: defaults.marks.at(-1)?.rssMiB ?? null },
      breakdownMiB: breakdown(daemon.status, probes),
      referenceMiB: {
        nodeAndOrtLibrary: mib(probes.bare.rssBytes),
        nodeWithSessionsArenaOn: mib(probes.arenaOn.rssBytes),
        nodeWithSessionsArenaOff: mib(probes.arenaOff.rssBytes),
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Probes = Record<'bare' | 'arenaOn' | 'arenaOff', ProbeMemory>;

/** Plain Node with the ORT library, and Node with the pipeline's sessions replaying its feeds (CPU arena on, off). */
async function referenceProbes(
  ctx: ComponentContext,
  name: string,
  feedsFile: string,
  malloc: Record<string, string>,
  log: (line: string) => void,
): Promise<Probes> {
  log('recording the pipeline feeds of 3 demo frames');
  await recordFeeds(ctx, name, feedsFile);
  const models = Object.fromEntries(ctx.config.pipelines[name].stages.map((s) => [s.name, ctx.config.models[s.model].file]));
  const threads = ctx.config.runtime.threads;
  log('reference processes: Node with the ORT library, Node with the sessions (CPU arena on, off)');
  return {
    bare: await probe({ models: {}, cpuArena: false, threads }, malloc),
    arenaOn: await probe({ models, feedsFile, cpuArena: true, threads }, malloc),
    arenaOff: await probe({ models, feedsFile, cpuArena: false, threads }, malloc),
  };
}

/** The daemon's RSS in parts, each once: the probes' own heaps and buffers are left out of what Node and the sessions take. */
function breakdown(status: Status | null, probes: Probes) {
  const m = status?.memory ?? {};
  const rss = m.rssBytes ?? 0;
  const base = native(probes.bare);
  const sessions = native(probes.arenaOff) - base;
  const heaps = (m.mainHeapBytes ?? 0) + (m.workerHeapBytes ?? 0);
  const imageCache = status?.imageCacheBytes ?? 0;
  return {
    rss: mib(rss),
    nodeAndOrtLibrary: mib(base),
    mainV8Heap: mib(m.mainHeapBytes),
    workerV8Heap: mib(m.workerHeapBytes),
    buffersOutsideHeaps: mib(m.externalBytes),
    ortSessions: mib(sessions),
    imageCache: mib(imageCache),
    nativeRest: mib(rss - base - heaps - (m.externalBytes ?? 0) - sessions - imageCache),
  };
}
