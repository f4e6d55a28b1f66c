import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from '../../../benchMath.js';
import type { Progress } from '../../progress.js';
import type { ChaosTopology } from './chaosTopology.js';
import type { ManagedProcess } from './managedProcess.js';

const CLI = fileURLToPath(new URL('../../../cli.js', import.meta.url));
export const FAULT_KINDS = ['sigkill', 'sigstop', 'restart'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  durationSeconds: number;
  /** faults come every minGapMs…maxGapMs */
  minGapMs: number;
  maxGapMs: number;
  seed: number;
}

interface Sample {
  at: number;
  start: number;
  rssKb: number;
  fds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: the same seed injects the same faults in the same order. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Injects faults into a running topology for the duration, sends signed commands meanwhile, samples RSS and fds. */
export class ChaosRun {
  readonly faults: Record<string, number> = {};
  readonly commands = { ok: 0, failed: 0 };
  readonly samples = new Map<string, Sample[]>();
  private readonly rand: () => number;
  private readonly starts = new Map<string, number>();

  constructor(
    private readonly t: ChaosTopology,
    private readonly opts: ChaosOptions,
  ) {
    this.rand = prng(opts.seed);
  }

  async run(progress: Progress): Promise<void> {
    const until = Date.now() + this.opts.durationSeconds * 1000;
    const sampler = setInterval(() => this.sample(), 5000);
    const commander = this.commandLoop(until);
    try {
      while (Date.now() < until) {
        const gap = this.opts.minGapMs + this.rand() * (this.opts.maxGapMs - this.opts.minGapMs);
        await this.watch(Math.min(gap, until - Date.now()));
        if (Date.now() >= until) break;
        await this.inject();
        progress.update(Math.round((this.opts.durationSeconds * 1000 - (until - Date.now())) / 1000), this.opts.durationSeconds, this.faultLine());
      }
    } finally {
      clearInterval(sampler);
      await commander;
    }
  }

  /** Waits `ms`, restarting whatever died by itself meanwhile (systemd's Restart=on-failure); the crash stays counted. */
  private async watch(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      for (const p of this.t.processes) if (!p.running) this.startProcess(p);
      await sleep(Math.min(500, Math.max(0, end - Date.now())));
    }
  }

  startProcess(p: ManagedProcess): void {
    p.start();
    this.starts.set(p.name, Date.now());
  }

  private async inject(): Promise<void> {
    const target = this.t.processes[Math.floor(this.rand() * this.t.processes.length)];
    const kind = FAULT_KINDS[Math.floor(this.rand() * FAULT_KINDS.length)];
    const key = `${kind} ${target.name}`;
    this.faults[key] = (this.faults[key] ?? 0) + 1;
    if (kind === 'sigkill') {
      await target.kill();
      await sleep(1000 + this.rand() * 2000);
      this.startProcess(target);
    } else if (kind === 'sigstop') {
      target.signal('SIGSTOP');
      await sleep(2000 + this.rand() * 4000);
      target.signal('SIGCONT');
    } else {
      await target.stop();
      this.startProcess(target);
    }
  }

  private async commandLoop(until: number): Promise<void> {
    for (let i = 0; Date.now() < until; i++) {
      await sleep(8000);
      const agent = this.t.agents[i % this.t.agents.length];
      const code = await this.command(agent.name, 'status');
      if (code === 0) this.commands.ok++;
      else this.commands.failed++;
    }
  }

  /** `outpost command DEVICE ACTION` with the operator key; its exit code. */
  command(device: string, action: string): Promise<number | null> {
    const args = [
      CLI,
      'command',
      device,
      action,
      '--broker',
      this.t.brokerUrl,
      '--key',
      this.t.operatorKeys,
      '--trust',
      this.t.trust,
      '--timeout',
      '5',
      '--json',
    ];
    return new Promise((resolve) => {
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      child.on('exit', (code) => resolve(code));
      child.on('error', () => resolve(null));
    });
  }

  private sample(): void {
    for (const p of this.t.processes) {
      const s = p.sample();
      if (!s || p.paused) continue;
      const list = this.samples.get(p.name) ?? [];
      list.push({ at: Date.now(), start: this.starts.get(p.name) ?? 0, ...s });
      this.samples.set(p.name, list);
    }
  }

  /**
   * RSS and fds of each process's last incarnation: the median of its first samples after `warmupMs` against the
   * median of its last three. Incarnations judged over less than two minutes are reported, not judged (a short run only warms up).
   */
  growth(warmupMs: number): Record<string, { rssKb: [number, number]; fds: [number, number]; judged: boolean }> {
    const out: Record<string, { rssKb: [number, number]; fds: [number, number]; judged: boolean }> = {};
    for (const [name, all] of this.samples) {
      const last = all[all.length - 1];
      const life = all.filter((s) => s.start === last.start && s.at - s.start >= warmupMs);
      if (life.length < 2) continue;
      const head = life.slice(0, Math.min(6, Math.max(1, life.length - 3)));
      const tail = life.slice(-3);
      out[name] = {
        rssKb: [median(head.map((s) => s.rssKb)), median(tail.map((s) => s.rssKb))],
        fds: [median(head.map((s) => s.fds)), median(tail.map((s) => s.fds))],
        judged: last.at - life[0].at >= 120_000,
      };
    }
    return out;
  }

  private faultLine(): string {
    return `${Object.values(this.faults).reduce((a, b) => a + b, 0)} faults`;
  }
}
