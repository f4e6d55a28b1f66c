import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderDemoFrames } from '../../camera/index.js';
import type { ComponentContext } from '../../component.js';
import { OutpostError } from '../../errors.js';
import { PipelineSet } from '../../pipeline/index.js';
import { InferenceEngine, type TensorMap } from '../../runtime/index.js';
import { runComponents } from '../common.js';
import { encodeFeeds } from './memoryFeeds.js';
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function rssOf(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null; // gone, or not Linux
  }
}

async function statusOf(port: number): Promise<Status | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(3000) });
    return r.ok ? ((await r.json()) as Status) : null;
  } catch {
    return null;
  }
}

/** The feeds each stage's session got for a few demo frames, for the reference processes to replay. */
async function recordFeeds(ctx: ComponentContext, name: string, file: string): Promise<void> {
  const engine = new InferenceEngine({ ...ctx.config.runtime, stateDir: ctx.stateDir, cacheOptimizedGraphs: false }, ctx.log);
  const runs: [string, TensorMap][] = [];
  const tap = (key: string, feeds: TensorMap) =>
    runs.push([key, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { ...t, data: t.data.slice() }]))]);
  const set = new PipelineSet(ctx, engine, { names: [name], tap });
  await runComponents(ctx, [engine, set], async () => {
    for (const f of await renderDemoFrames(3, 5)) await set.get(name).process(f);
  });
  writeFileSync(file, encodeFeeds(runs));
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

/** Runs the daemon on the config (its own state folder and status port) and reads its memory at each mark. */
async function watchDaemon(
  configFile: string,
  marksS: number[],
  malloc: Record<string, string>,
  log: (line: string) => void,
): Promise<{ marks: Mark[]; status: Status | null; exitCode: number | null }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'outpost-bench-memory-'));
  const port = await freePort();
  const env = {
    ...process.env,
    ...malloc,
    OUTPOST_NODE_STATE_DIR: stateDir,
    OUTPOST_STATUS_PORT: String(port),
    OUTPOST_STATUS_HOST: '127.0.0.1',
    OUTPOST_LOGGING_LEVEL: 'warn',
  };
  const child = spawn(process.execPath, [script('../cli.js'), 'run', '--config', configFile], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = performance.now();
  const marks: Mark[] = [];
  let status: Status | null = null;
  try {
    for (const at of marksS) {
      await Promise.race([sleep(Math.max(0, at * 1000 - (performance.now() - started))), exited]);
      if (child.exitCode !== null)
        throw new OutpostError(
          'OUTPOST_E_INTERNAL',
          `the daemon exited (code ${child.exitCode}) after ${Math.round((performance.now() - started) / 1000)} s: ${stderr.trim()}`,
        );
      status = await statusOf(port);
      const fps = Object.values(status?.cameras ?? {}).reduce((a, c) => a + (c.fps ?? 0), 0);
      marks.push({ atSeconds: at, rssMiB: mib(rssOf(child.pid!)), fps: status ? Math.round(fps * 100) / 100 : null });
      log(`  ${at} s: RSS ${marks.at(-1)!.rssMiB} MiB, ${marks.at(-1)!.fps} frames/s`);
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(stateDir, { recursive: true, force: true });
  }
  return { marks, status, exitCode: child.exitCode };
}

/**
 * `outpost bench --memory`: the config's daemon in a child process, its RSS at 10, 30 and 60 s, and where it
 * goes: the V8 heaps of the main and inference threads, what the ORT sessions take (a plain Node process
 * replaying the same feeds, with and without ORT's CPU arena), libvips' cache, and the native rest. The daemon
 * runs with the unit's allocator settings, then with glibc's defaults for comparison.
 */
export async function benchMemory(ctx: ComponentContext, configFile: string, name: string, durationS: number, log: (line: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-memory-'));
  const malloc = unitMallocEnv();
  const marks = marksUpTo(durationS);
  try {
    const feedsFile = join(dir, 'feeds.json');
    log('recording the pipeline feeds of 3 demo frames');
    await recordFeeds(ctx, name, feedsFile);
    const models = Object.fromEntries(ctx.config.pipelines[name].stages.map((s) => [s.name, ctx.config.models[s.model].file]));
    const threads = ctx.config.runtime.threads;
    log('reference processes: Node with the ORT library, Node with the sessions (CPU arena on, off)');
    const bare = await probe({ models: {}, cpuArena: false, threads }, malloc);
    const arenaOn = await probe({ models, feedsFile, cpuArena: true, threads }, malloc);
    const arenaOff = await probe({ models, feedsFile, cpuArena: false, threads }, malloc);
    log(`the daemon on ${configFile} with the unit's allocator settings (${JSON.stringify(malloc)})`);
    const daemon = await watchDaemon(configFile, marks, malloc, log);
    log("the daemon with glibc's default allocator settings");
    const defaults = await watchDaemon(configFile, marks, {}, log);
    const m = daemon.status?.memory ?? {};
    const rss = m.rssBytes ?? 0;
    // each part once: the probes' own heaps and buffers are left out of what Node and the sessions take
    const base = native(bare);
    const sessions = native(arenaOff) - base;
    const heaps = (m.mainHeapBytes ?? 0) + (m.workerHeapBytes ?? 0);
    const imageCache = daemon.status?.imageCacheBytes ?? 0;
    return {
      kind: 'outpost-bench-memory',
      pipeline: name,
      provider: daemon.status?.provider ?? 'unknown',
      allocator: malloc,
      daemon: { marks: daemon.marks, steadyRssMiB: daemon.marks.at(-1)?.rssMiB ?? null },
      daemonWithGlibcDefaults: { marks: defaults.marks, steadyRssMiB: defaults.marks.at(-1)?.rssMiB ?? null },
      breakdownMiB: {
        rss: mib(rss),
        nodeAndOrtLibrary: mib(base),
        mainV8Heap: mib(m.mainHeapBytes),
        workerV8Heap: mib(m.workerHeapBytes),
        buffersOutsideHeaps: mib(m.externalBytes),
        ortSessions: mib(sessions),
        imageCache: mib(imageCache),
        nativeRest: mib(rss - base - heaps - (m.externalBytes ?? 0) - sessions - imageCache),
      },
      referenceMiB: { nodeAndOrtLibrary: mib(bare.rssBytes), nodeWithSessionsArenaOn: mib(arenaOn.rssBytes), nodeWithSessionsArenaOff: mib(arenaOff.rssBytes) },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
