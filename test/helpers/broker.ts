import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './daemonProcess.js';
import { tempDir } from './paths.js';

/** A real Mosquitto on a free loopback port, which a test can stop and start again on the same port. */
export class Mosquitto {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private readonly conf: string,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** With `passwordFile` (made by mosquitto_passwd), only its users may connect. */
  static async start(opts: { passwordFile?: string } = {}): Promise<Mosquitto> {
    const port = await freePort();
    const conf = join(tempDir('outpost-mosquitto-'), 'mosquitto.conf');
    const auth = opts.passwordFile ? `allow_anonymous false\npassword_file ${opts.passwordFile}` : 'allow_anonymous true';
    writeFileSync(conf, `listener ${port} 127.0.0.1\n${auth}\npersistence false\nlog_dest stderr\nlog_type error\n`);
    const broker = new Mosquitto(port, conf);
    await broker.up();
    return broker;
  }

  async up(): Promise<void> {
    this.child = spawn('mosquitto', ['-c', this.conf], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const open = await new Promise<boolean>((resolve) => {
        const socket = connect(this.port, '127.0.0.1');
        socket.once('connect', () => (socket.end(), resolve(true)));
        socket.once('error', () => resolve(false));
      });
      if (open) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not start on port ${this.port}`);
  }

  async down(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  /** SIGSTOP / SIGCONT: a broker that is there but answers nothing (a hung host, a dead link not noticed yet). */
  freeze(frozen: boolean): void {
    this.child?.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /** What mosquitto_sub reads on a topic filter within `seconds` (retained messages arrive at once). */
  sub(filter: string, seconds = 2, count?: number): { topic: string; payload: string }[] {
    const args = ['-h', '127.0.0.1', '-p', String(this.port), '-t', filter, '-v', '-W', String(seconds), ...(count ? ['-C', String(count)] : [])];
    const out = spawnSync('mosquitto_sub', args, { encoding: 'utf8' }).stdout;
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => ({ topic: line.slice(0, line.indexOf(' ')), payload: line.slice(line.indexOf(' ') + 1) }));
  }

  pub(topic: string, payload: string, retain = false): void {
    const r = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(this.port), '-t', topic, '-m', payload, ...(retain ? ['-r'] : []), '-q', '1']);
    if (r.status !== 0) throw new Error(`mosquitto_pub failed: ${r.stderr}`);
  }
}
