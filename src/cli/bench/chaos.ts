import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutpostError } from '../../errors.js';
import { ChaosRun, type ChaosOptions } from './chaos/chaosRun.js';
import { ChaosTopology } from './chaos/chaosTopology.js';
import { Progress } from '../progress.js';

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ChaosReport {
  durationSeconds: number;
  faults: { total: number; byKind: Record<string, number> };
  commands: { ok: number; failed: number };
  crashes: string[];
  unhandled: string[];
  drained: boolean;
  stopCodes: Record<string, number | null>;
  verify: { exitCode: number | null; items: number; devices: unknown };
  growth: ReturnType<ChaosRun['growth']>;
  problems: string[];
  passed: boolean;
}

/**
 * `outpost bench --chaos`: the fleet of chaosTopology on loopback for `durationSeconds` with a fault every 5–20 s
 * (SIGKILL, SIGSTOP+CONT, restart of the broker, a collector, the peer or an agent), then a drain and the checks:
 * every agent alive, no error escaped in any log, `collect --verify` with no gap and no conflict, RSS and fds of
 * each process's last life within 10 % after warm-up.
 */
export async function benchChaos(opts: Partial<ChaosOptions> & { durationSeconds: number; keep?: boolean }): Promise<ChaosReport> {
  for (const tool of ['mosquitto']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      throw new OutpostError('OUTPOST_E_USAGE', `bench --chaos needs ${tool} (apt-get install ${tool})`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'outpost-chaos-'));
  const progress = new Progress('chaos');
  const t = await ChaosTopology.create(dir, { fps: 2 });
  const run = new ChaosRun(t, { minGapMs: 5000, maxGapMs: 20_000, seed: 1, ...opts });
  try {
    for (const p of t.processes) run.startProcess(p);
    await waitForAgents(t);
    await run.run(progress);
    progress.done();
    return await finish(t, run, opts.durationSeconds);
  } finally {
    await Promise.all(t.processes.map((p) => p.stop()));
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

async function statusOf(port: number): Promise<Record<string, unknown> | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(2000) });
    return (await r.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

async function waitForAgents(t: ChaosTopology, seconds = 180): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    const up = await Promise.all(t.agents.map((a) => statusOf(a.statusPort)));
    if (up.every((s) => s !== null)) return;
    const crashed = t.agents.find((a) => a.process.crashes.length > 0);
    if (crashed) throw new OutpostError('OUTPOST_E_INTERNAL', `chaos agent ${crashed.name} could not start: ${crashed.process.crashes[0]}`);
    await sleep(500);
  }
  throw new OutpostError('OUTPOST_E_UNREACHABLE', `the chaos agents did not answer /status within ${seconds} s`);
}

/** Every uploading agent's outbox empty (nothing pending or being prepared), within `seconds`. */
async function drain(t: ChaosTopology, seconds: number): Promise<boolean> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    const states = await Promise.all(t.agents.filter((a) => a.uploads).map((a) => statusOf(a.statusPort)));
    const empty = states.every((s) => {
      const u = (s?.upload ?? null) as { pending?: number; preparing?: number } | null;
      return u !== null && u.pending === 0 && (u.preparing ?? 0) === 0;
    });
    if (empty) return true;
    await sleep(1000);
  }
  return false;
}

async function finish(t: ChaosTopology, run: ChaosRun, durationSeconds: number): Promise<ChaosReport> {
  const problems: string[] = [];
  for (const p of t.processes) {
    p.signal('SIGCONT');
    if (!p.running) run.startProcess(p);
  }
  await waitForAgents(t);
  const growth = run.growth(30_000);
  // the camera agents stop producing first, so that what is left can drain
  const stopCodes: Record<string, number | null> = {};
  const drained = await drain(t, 120);
  if (!drained) problems.push('the outboxes did not drain within 120 s');
  for (const a of t.agents) {
    const r = await a.process.stop();
    stopCodes[a.name] = r.code;
    if (r.code !== 0) problems.push(`${a.name} stopped with code ${r.code} (signal ${r.signal})`);
  }
  await sleep(1000);
  for (const p of t.processes) await p.stop();
  const v = spawnSync(process.execPath, [CLI, 'collect', '--verify', '--out', t.out, '--json'], { encoding: 'utf8' });
  let devices: unknown = null;
  try {
    devices = (JSON.parse(v.stdout) as { devices: unknown }).devices;
  } catch {
    problems.push(`collect --verify printed no JSON: ${v.stderr.slice(0, 500)}`);
  }
  if (v.status !== 0) problems.push(`collect --verify exited ${v.status}: ${v.stdout.slice(0, 1500)}`);
  const crashes = t.processes.flatMap((p) => p.crashes);
  const unhandled = t.processes.flatMap((p) => p.findings.unhandled);
  if (crashes.length) problems.push(`${crashes.length} process(es) exited by themselves`);
  if (unhandled.length) problems.push(`${unhandled.length} escaped error line(s) in the logs`);
  for (const [name, g] of Object.entries(growth)) {
    if (!g.judged) continue;
    if (g.rssKb[1] > g.rssKb[0] * 1.1) problems.push(`${name}: RSS ${g.rssKb[0]} → ${g.rssKb[1]} kB (more than 10 %)`);
    if (g.fds[1] > g.fds[0] * 1.1) problems.push(`${name}: fds ${g.fds[0]} → ${g.fds[1]} (more than 10 %)`);
  }
  const byKind = run.faults;
  return {
    durationSeconds,
    faults: { total: Object.values(byKind).reduce((a, b) => a + b, 0), byKind },
    commands: run.commands,
    crashes,
    unhandled,
    drained,
    stopCodes,
    verify: { exitCode: v.status, items: countItems(devices), devices },
    growth,
    problems,
    passed: problems.length === 0,
  };
}

/** Items the collectors stored, from `--verify --json`'s per device and epoch reports. */
function countItems(devices: unknown): number {
  if (!Array.isArray(devices)) return 0;
  const epochs = (devices as { epochs?: { items?: number }[] }[]).flatMap((d) => d.epochs ?? []);
  return epochs.reduce((n, e) => n + (e.items ?? 0), 0);
}
