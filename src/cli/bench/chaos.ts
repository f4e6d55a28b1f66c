import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutpostError } from '../../errors.js';
import { ChaosRun, type ChaosOptions } from './chaos/chaosRun.js';
import { ChaosTopology } from './chaos/chaosTopology.js';
import { exitOnError } from '../common.js';
import { Progress } from '../progress.js';
import { durationOption, emitReport, sleep, statusOf, withReportFlags, type ReportFlags } from './shared.js';

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));

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

export interface ChaosBenchOptions extends ReportFlags {
  duration: number;
}

/** `outpost bench chaos`: a fleet on loopback with faults injected, then drained and verified. */
export function chaosMode(bench: Command): Command {
  const cmd = bench
    .command('chaos')
    .description(
      'a broker, an HTTP and an MQTT collector and three agents on loopback with a fault every 5-20 s, then drain and verify (exit 1 on a loss, a crash or growth)',
    )
    .addOption(durationOption(30, 'seconds of faults'));
  return withReportFlags(cmd).action((o: ChaosBenchOptions) => benchChaos(o).catch(exitOnError));
}

async function benchChaos(o: ChaosBenchOptions): Promise<void> {
  const report = await runChaos({ durationSeconds: o.duration });
  emitReport(o, report);
  if (!report.passed) process.exitCode = 1;
}

/**
 * `outpost bench chaos`: the fleet of chaosTopology on loopback for `durationSeconds` with a fault every 5–20 s
 * (SIGKILL, SIGSTOP+CONT, restart of the broker, a collector, the peer or an agent), then a drain and the checks:
 * every agent alive, no error escaped in any log, `collect --verify` with no gap and no conflict, RSS and fds of
 * each process's last life within 10 % after warm-up.
 */
async function runChaos(opts: Partial<ChaosOptions> & { durationSeconds: number; keep?: boolean }): Promise<ChaosReport> {
  for (const tool of ['mosquitto']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      throw new OutpostError('OUTPOST_E_USAGE', `bench chaos needs ${tool} (apt-get install ${tool})`);
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
  for (const p of t.processes) {
    p.signal('SIGCONT');
    if (!p.running) run.startProcess(p);
  }
  await waitForAgents(t);
  const growth = run.growth(30_000);
  // the camera agents stop producing first, so that what is left can drain
  const drained = await drain(t, 120);
  const stopCodes: Record<string, number | null> = {};
  const problems = drained ? [] : ['the outboxes did not drain within 120 s'];
  for (const a of t.agents) {
    const r = await a.process.stop();
    stopCodes[a.name] = r.code;
    if (r.code !== 0) problems.push(`${a.name} stopped with code ${r.code} (signal ${r.signal})`);
  }
  await sleep(1000);
  for (const p of t.processes) await p.stop();
  const verify = verifyStore(t.out, problems);
  const crashes = t.processes.flatMap((p) => p.crashes);
  const unhandled = t.processes.flatMap((p) => p.findings.unhandled);
  if (crashes.length) problems.push(`${crashes.length} process(es) exited by themselves`);
  if (unhandled.length) problems.push(`${unhandled.length} escaped error line(s) in the logs`);
  problems.push(...growthProblems(growth));
  const byKind = run.faults;
  const faults = { total: Object.values(byKind).reduce((a, b) => a + b, 0), byKind };
  return { durationSeconds, faults, commands: run.commands, crashes, unhandled, drained, stopCodes, verify, growth, problems, passed: problems.length === 0 };
}

/** `collect --verify` on the collectors' store; what it found wrong goes to `problems`. */
function verifyStore(out: string, problems: string[]): ChaosReport['verify'] {
  const v = spawnSync(process.execPath, [CLI, 'collect', '--verify', '--out', out, '--json'], { encoding: 'utf8' });
  let devices: unknown = null;
  try {
    devices = (JSON.parse(v.stdout) as { devices: unknown }).devices;
  } catch {
    problems.push(`collect --verify printed no JSON: ${v.stderr.slice(0, 500)}`);
  }
  if (v.status !== 0) problems.push(`collect --verify exited ${v.status}: ${v.stdout.slice(0, 1500)}`);
  return { exitCode: v.status, items: countItems(devices), devices };
}

/** RSS or fds of a process's last life that grew more than 10 % after warm-up (judged runs only). */
function growthProblems(growth: ChaosReport['growth']): string[] {
  return Object.entries(growth).flatMap(([name, g]) => [
    ...(g.judged && g.rssKb[1] > g.rssKb[0] * 1.1 ? [`${name}: RSS ${g.rssKb[0]} → ${g.rssKb[1]} kB (more than 10 %)`] : []),
    ...(g.judged && g.fds[1] > g.fds[0] * 1.1 ? [`${name}: fds ${g.fds[0]} → ${g.fds[1]} (more than 10 %)`] : []),
  ]);
}

/** Items the collectors stored, from `--verify --json`'s per device and epoch reports. */
function countItems(devices: unknown): number {
  if (!Array.isArray(devices)) return 0;
  const epochs = (devices as { epochs?: { items?: number }[] }[]).flatMap((d) => d.epochs ?? []);
  return epochs.reduce((n, e) => n + (e.items ?? 0), 0);
}
