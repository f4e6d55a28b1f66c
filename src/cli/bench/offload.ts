import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Command } from 'commander';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, rounded } from '../../benchMath.js';
import { renderDemoFrames } from '../../camera/index.js';
import { configSchema, offloadSchema, resolveBuiltin } from '../../config/index.js';
import nacl from 'tweetnacl';
import { Keyring, readKeys, SealedEnvelope } from '../../crypto/index.js';
import { OutpostError } from '../../errors.js';
import { OffloadClient, PeerTable, sha256File, stageSpec } from '../../offload/index.js';
import type { Frame } from '../../types.js';
import { exitOnError } from '../common.js';
import { Progress } from '../progress.js';
import { agentConfig, keyringEntry, makeAgent, type BenchAgent } from './benchAgent.js';
import { durationOption, emitReport, percentile, repeatsOption, sleep, withReportFlags, type ReportFlags } from './shared.js';
import { childEnv } from '../../childEnv.js';

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));
const WARM_MS = 4000;
const LATENCY_FRAMES = 40;

/** A real `outpost run` on one core (taskset), its log lines watched for a message. */
class AgentProcess {
  private readonly child: ChildProcess;
  private readonly seen = new Set<string>();
  private readonly waiters: { msg: string; resolve: () => void }[] = [];
  private tail = '';

  constructor(agent: BenchAgent, config: string, core: number | null) {
    const file = join(agent.dir, `outpost-${Date.now()}.yaml`);
    writeFileSync(file, config);
    const cmd = core === null ? [process.execPath, CLI] : ['taskset', '-c', String(core), process.execPath, CLI];
    this.child = spawn(cmd[0], [...cmd.slice(1), 'run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv() });
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.tail = (this.tail + line + '\n').slice(-2000);
      const msg = line.startsWith('{') ? (JSON.parse(line) as { msg?: string }).msg : undefined;
      if (!msg) return;
      this.seen.add(msg);
      for (const w of this.waiters.filter((x) => x.msg === msg)) w.resolve();
    });
  }

  waitFor(msg: string, seconds = 120): Promise<void> {
    if (this.seen.has(msg)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new OutpostError('OUTPOST_E_INTERNAL', `the bench agent never logged "${msg}"`)), seconds * 1000);
      this.waiters.push({ msg, resolve: () => (clearTimeout(t), resolve()) });
      this.child.once('exit', (code) => reject(new OutpostError('OUTPOST_E_INTERNAL', `the bench agent exited (${code}) before "${msg}":\n${this.tail}`)));
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** The requester (a 30 fps folder camera, `peers` to ask) or the helper (serving): the detector at 640 px. */
function offloadAgent(a: BenchAgent, trusts: BenchAgent, o: { frames?: string; peers?: BenchAgent[]; serve?: boolean }): string {
  return agentConfig(a, {
    keyring: [keyringEntry(trusts.name, trusts.keys, 'peer')],
    camera: o.frames ? { type: 'directory', path: o.frames, fps: 30, loop: true } : undefined,
    maxSide: 640,
    inflightFrames: 2,
    serve: o.serve ?? false,
    peers: o.peers ?? [],
  });
}

/** Frames answered per second by the requester's camera, after a warm-up. */
async function measureFps(statusPort: number, seconds: number, progress: Progress, label: string): Promise<{ fps: number; onPeer: number }> {
  const read = async () => {
    const s = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as {
      cameras: Record<string, { processed: number }>;
      offload?: { peers: Record<string, { ok: number }> };
    };
    return { processed: s.cameras.door?.processed ?? 0, onPeer: Object.values(s.offload?.peers ?? {}).reduce((n, p) => n + p.ok, 0) };
  };
  await sleep(WARM_MS);
  const a = await read();
  const t0 = performance.now();
  for (let s = 0; s < seconds; s++) {
    progress.update(s, seconds, label);
    await sleep(1000);
  }
  const b = await read();
  const wall = (performance.now() - t0) / 1000;
  return { fps: (b.processed - a.processed) / wall, onPeer: (b.onPeer - a.onPeer) / Math.max(1, b.processed - a.processed) };
}

/** Serial requests from this process to the helper: what offloading adds beyond the peer's own work on the frame. */
async function latency(requester: BenchAgent, helper: BenchAgent, frame: Frame) {
  const peer = new PeerTable(
    new Keyring(configSchema.parse({ keyring: [keyringEntry(helper.name, helper.keys, 'peer')] }).keyring),
    offloadSchema.parse({ peers: [{ name: helper.name, url: `http://127.0.0.1:${helper.offloadPort}` }] }),
  ).get(helper.name)!;
  const client = new OffloadClient(
    requester.name,
    () => readKeys(join(requester.dir, 'state', 'keys')),
    () => 10_000,
  );
  const specs = [detectorSpec()];
  const added: number[] = [];
  const process: number[] = [];
  const infer: number[] = [];
  try {
    for (let i = 0; i < LATENCY_FRAMES + 3; i++) {
      const r = await client.run(peer, 'text', specs, frame, null);
      if (i < 3) continue; // the helper's first frames warm its session
      added.push(r.totalMs - r.processMs);
      process.push(r.processMs);
      infer.push(r.inferMs);
    }
  } finally {
    client.close();
  }
  const p95 = percentile(
    [...added].sort((x, y) => x - y),
    95,
  )!;
  return {
    addedMsMedian: rounded(median(added), 2),
    addedMsP95: rounded(p95, 2),
    peerProcessMsMedian: rounded(median(process), 1),
    peerInferMsMedian: median(infer),
  };
}

/** The agents' one stage as an offload request names it (model by sha256). */
function detectorSpec() {
  const det = resolveBuiltin('builtin:ppocrv4-det')!;
  const stage = configSchema.parse({ pipelines: { t: { stages: [{ name: 'detect', model: 'det', decoder: { type: 'db', maxSide: 640 } }] } } }).pipelines.t
    .stages[0];
  return stageSpec(stage, sha256File(det), sha256File);
}

/** Sealing a 640×480 JPEG to the peer and opening it there, and the small answer back (ms, median). */
function sealing(frame: Frame): number {
  const [a, b] = [nacl.box.keyPair(), nacl.box.keyPair()];
  const [mine, theirs] = [new SealedEnvelope(a), new SealedEnvelope(b)];
  const answer = Buffer.alloc(600);
  const times: number[] = [];
  for (let i = 0; i < 70; i++) {
    const t = performance.now();
    theirs.open(mine.seal({ purpose: 'offload-run', i }, frame.data, b.publicKey));
    mine.open(theirs.seal({ purpose: 'offload-result', i }, answer, a.publicKey));
    if (i >= 10) times.push(performance.now() - t);
  }
  return median(times);
}

const pinnable = () => availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;

export interface OffloadBenchOptions extends ReportFlags {
  repeats: number;
  duration: number;
}

/** `outpost bench offload`: two agents on one core each, with the helper as peer against without. */
export function offloadMode(bench: Command): Command {
  const cmd = bench
    .command('offload')
    .description('two agents on one core each: frames/s with the helper as peer vs without, the latency offloading adds, sealing vs inference')
    .addOption(repeatsOption(5))
    .addOption(durationOption(30, 'seconds measured per run, alone and with the helper'));
  return withReportFlags(cmd).action((o: OffloadBenchOptions) => benchOffload(o).catch(exitOnError));
}

async function benchOffload(o: OffloadBenchOptions): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'outpost-bench-offload-'));
  try {
    emitReport(o, await measureOffload(root, o));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** 48 demo frames as JPEG files in `root`/frames: the requester's camera. */
async function writeFrames(root: string): Promise<{ dir: string; first: Frame }> {
  const dir = join(root, 'frames');
  mkdirSync(dir);
  const rendered = await renderDemoFrames(48, 11, 640, 480);
  rendered.forEach((f, i) => writeFileSync(join(dir, `${String(i).padStart(3, '0')}.jpg`), f.data));
  return { dir, first: rendered[0] };
}

type Run = { localFps: number; offloadFps: number; ratio: number; shareOnPeer: number };

/**
 * Two real agents, each on one core (taskset), the requester's camera asking for 30 fps of 640×480 frames,
 * more than one core detects. Frames per second with the helper as its peer against without, interleaved
 * `repeats` times (the ratio's ceiling is 2×); the latency offloading adds beyond the peer's own work on a
 * frame, on loopback; sealing's cost against the frame's inference.
 */
async function measureOffload(root: string, o: OffloadBenchOptions) {
  const progress = new Progress('bench offload');
  const frames = await writeFrames(root);
  const [requester, helper] = [await makeAgent(root, 'requester'), await makeAgent(root, 'helper')];
  const pinned = pinnable();
  const helperProcess = new AgentProcess(helper, offloadAgent(helper, requester, { serve: true }), pinned ? 1 : null);
  try {
    await helperProcess.waitFor('serving frames for peers');
    const runs: Run[] = [];
    for (let r = 0; r < o.repeats; r++)
      runs.push(await aloneAndHelped({ requester, helper, frames: frames.dir, pinned, seconds: o.duration }, `run ${r + 1}/${o.repeats}`, progress));
    progress.update(o.repeats, o.repeats, 'latency on loopback');
    if (pinned) spawnSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' }); // this thread asks from the requester's core
    const lat = await latency(requester, helper, frames.first);
    const sealMs = sealing(frames.first);
    progress.done();
    return offloadReport(runs, lat, sealMs, { pinned, jpegBytes: frames.first.data.length });
  } finally {
    await helperProcess.stop();
  }
}

/** One run: the requester alone, then asking the helper, for `seconds` each. */
async function aloneAndHelped(
  s: { requester: BenchAgent; helper: BenchAgent; frames: string; pinned: boolean; seconds: number },
  label: string,
  progress: Progress,
): Promise<Run> {
  const core = s.pinned ? 0 : null;
  const local = new AgentProcess(s.requester, offloadAgent(s.requester, s.helper, { frames: s.frames }), core);
  await local.waitFor('outpost running');
  const alone = await measureFps(s.requester.statusPort, s.seconds, progress, `${label}: alone`);
  await local.stop();
  const asking = new AgentProcess(s.requester, offloadAgent(s.requester, s.helper, { frames: s.frames, peers: [s.helper] }), core);
  await asking.waitFor('peer passed its known-answer probe');
  const helped = await measureFps(s.requester.statusPort, s.seconds, progress, `${label}: with the helper`);
  await asking.stop();
  return {
    localFps: rounded(alone.fps, 2),
    offloadFps: rounded(helped.fps, 2),
    ratio: rounded(helped.fps / alone.fps, 3),
    shareOnPeer: rounded(helped.onPeer, 3),
  };
}

function offloadReport(runs: Run[], lat: Awaited<ReturnType<typeof latency>>, sealMs: number, m: { pinned: boolean; jpegBytes: number }) {
  const ratio = median(runs.map((x) => x.ratio));
  const sealPercent = (sealMs / lat.peerInferMsMedian) * 100;
  return {
    kind: 'outpost-bench-offload',
    createdAt: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
    pinned: m.pinned ? 'requester on core 0, helper on core 1 (taskset)' : 'not pinned (taskset missing or one core)',
    model: 'builtin:ppocrv4-det (DB, maxSide 640), one intra-op thread per agent',
    frame: { width: 640, height: 480, jpegBytes: m.jpegBytes },
    runs,
    fpsRatioMedian: ratio,
    latency: { ...lat, peerInferMsMedian: rounded(lat.peerInferMsMedian, 1) },
    sealing: { sealAndOpenMsMedian: rounded(sealMs, 3), percentOfInference: rounded(sealPercent, 2) },
    goals: { fpsRatioAtLeast1_8: ratio >= 1.8, addedLatencyAtMost5Ms: lat.addedMsMedian <= 5, sealingAtMost2PercentOfInference: sealPercent <= 2 },
  };
}
