import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** What a process's log said that the chaos run must account for. */
export interface LogFindings {
  /** lines that say an error escaped: unhandled rejections, uncaught exceptions, crashes with a stack */
  unhandled: string[];
  /** error-level lines (pino level 50+) */
  errors: number;
}

const UNHANDLED = /unhandled|uncaught|OUTPOST_E_INTERNAL|MaxListenersExceeded|^\s+at .+\(.*:\d+:\d+\)$/i;

/**
 * One process of the chaos run (broker, collector, agent) that faults are injected into: killed, stopped and
 * continued, restarted on the same command line. Its stderr is scanned line by line for escaped errors, across
 * every incarnation.
 */
export class ManagedProcess {
  private child: ChildProcess | null = null;
  private stoppedAt: number | null = null;
  readonly findings: LogFindings = { unhandled: [], errors: 0 };
  starts = 0;
  /** exits nobody asked for (a crash), with how it ended */
  readonly crashes: string[] = [];
  private expectingExit = false;
  private tail = '';

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: readonly string[],
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  get pid(): number | null {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? (this.child.pid ?? null) : null;
  }

  get running(): boolean {
    return this.pid !== null;
  }

  get paused(): boolean {
    return this.stoppedAt !== null;
  }

  get logTail(): string {
    return this.tail;
  }

  start(): void {
    if (this.running) return;
    const child = spawn(this.command, this.args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.starts++;
    this.stoppedAt = null;
    this.expectingExit = false;
    child.on('exit', (code, signal) => {
      if (!this.expectingExit) this.crashes.push(`${this.name} exited by itself (code ${code}, signal ${signal}):\n${this.tail.slice(-1500)}`);
    });
    child.on('error', (err) => this.findings.unhandled.push(`${this.name}: cannot start: ${err.message}`));
    createInterface({ input: child.stderr! }).on('line', (line) => this.scan(line));
  }

  signal(sig: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === null) return;
    process.kill(pid, sig);
    if (sig === 'SIGSTOP') this.stoppedAt = Date.now();
    if (sig === 'SIGCONT') this.stoppedAt = null;
  }

  /** SIGTERM (after SIGCONT, so a stopped process can act on it), then SIGKILL past `graceMs`. */
  async stop(graceMs = 15_000): Promise<{ code: number | null; signal: string | null }> {
    const child = this.child;
    if (!child || !this.running) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null };
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    this.expectingExit = true;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const result = await exited;
    clearTimeout(timer);
    return result;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    this.expectingExit = true;
    this.signal('SIGKILL');
    await exited;
    this.stoppedAt = null;
  }

  /** Resident memory (kB) and open file descriptors, read from /proc; null when it is not running. */
  sample(): { rssKb: number; fds: number } | null {
    const pid = this.pid;
    if (pid === null) return null;
    try {
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      return { rssKb: Number(rss ?? 0), fds: readdirSync(`/proc/${pid}/fd`).length };
    } catch {
      return null; // it exited between the check and the read
    }
  }

  private scan(line: string): void {
    this.tail = (this.tail + line + '\n').slice(-4000);
    let level = 0;
    let text = line;
    if (line.startsWith('{')) {
      try {
        const l = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
        level = l.level ?? 0;
        text = `${l.msg ?? ''} ${typeof l.err === 'string' ? l.err : JSON.stringify(l.err ?? '')}`;
      } catch {
        /* not a log line: scanned as text */
      }
    }
    if (level >= 50) this.findings.errors++;
    if (UNHANDLED.test(text) && this.findings.unhandled.length < 50) this.findings.unhandled.push(`${this.name}: ${line.slice(0, 300)}`);
  }
}
