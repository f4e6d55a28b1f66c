import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { tempDir } from './paths.js';
import { waitUntil } from './wait.js';

/**
 * A real unix datagram socket bound where `$NOTIFY_SOCKET` points, as systemd's is: perl's core Socket module
 * (perl-base is Essential on Debian) receives each datagram and prints it with the time it arrived.
 */
export class NotifySocket {
  readonly path: string;
  readonly messages: { at: number; fields: Record<string, string> }[] = [];
  private readonly child: ChildProcess;

  private constructor() {
    this.path = join(tempDir('outpost-notify-'), 'notify.sock');
    const script = String.raw`
      use Socket; use Time::HiRes qw(time); $| = 1;
      socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
      bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!";
      print "bound\n";
      while (defined(recv($s, my $buf, 65536, 0))) { $buf =~ s/\n/\t/g; printf "%.0f %s\n", time() * 1000, $buf; }`;
    this.child = spawn('perl', ['-e', script, this.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const m = /^(\d+) (.*)$/.exec(line);
      if (!m) return;
      const fields = Object.fromEntries(m[2].split('\t').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      this.messages.push({ at: Number(m[1]), fields });
    });
  }

  static async bind(): Promise<NotifySocket> {
    const s = new NotifySocket();
    await new Promise<void>((resolve, reject) => {
      s.child.stdout!.once('data', () => resolve());
      s.child.once('exit', (code) => reject(new Error(`the notify socket helper exited (${code})`)));
    });
    return s;
  }

  /** Messages that carry this field. */
  with(field: string): { at: number; fields: Record<string, string> }[] {
    return this.messages.filter((m) => field in m.fields);
  }

  waitFor(field: string, what = field, count = 1): Promise<void> {
    return waitUntil(() => this.with(field).length >= count, `${what} on the notify socket`, 600, 50);
  }

  close(): void {
    this.child.kill();
  }
}
